"""`CommitSensor`: wait for a new commit on a branch, optionally one touching a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from spark_lakeversion.airflow import DEFAULT_CONN_ID
from spark_lakeversion.airflow.hooks import LakeVersionHook


class CommitSensor(BaseSensorOperator):
    """Done when `branch` has a commit (touching `table`, if given) that `since` does not
    reach; XCom: that commit's id.

    `since` is a ref expression (a commit id from XCom, a tag...); without it, the
    branch's head at the first poke (so use ``mode="poke"``: a rescheduled sensor starts
    over).
    """

    template_fields: Sequence[str] = ("branch", "table", "since")

    def __init__(self, *, branch: str = "main", table: str | None = None,
                 since: str | None = None, lakeversion_conn_id: str = DEFAULT_CONN_ID,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.table = table
        self.since = since
        self.lakeversion_conn_id = lakeversion_conn_id
        self._baseline: str | None = None

    def poke(self, context: Any) -> PokeReturnValue | bool:
        hook = LakeVersionHook(self.lakeversion_conn_id)
        try:
            catalog = hook.get_conn()
            branch = catalog.branch(self.branch)
            if self._baseline is None:
                self._baseline = catalog.ref(self.since).resolve().commit_id \
                    if self.since else branch.get_ref().head
            newest = next(iter(branch.log(table=self.table, limit=1)), None)
            if newest is None or newest.id == self._baseline:
                return False
            # new only if the baseline does not reach it (not an older commit of the table)
            if catalog.store.merge_base(newest.id, self._baseline) == newest.id:
                return False
            self.log.info("new commit %s on %s: %s", newest.id, self.branch, newest.message)
            return PokeReturnValue(is_done=True, xcom_value=newest.id)
        finally:
            hook.close()
