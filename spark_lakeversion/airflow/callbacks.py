"""`keep_run_branch`: an ``on_failure_callback`` for pipelines on a branch.

A failed run leaves its branch as it was (the isolated snapshot of the inputs and outputs
to debug); the callback says so in the log and, if asked, rolls the target's tables back
to their state before the run (for a failure after the merge, e.g. in a later check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from spark_lakeversion.airflow import DEFAULT_CONN_ID
from spark_lakeversion.airflow.hooks import LakeVersionHook
from spark_lakeversion.airflow.metadata import airflow_properties
from spark_lakeversion.airflow.operators import rollback_tables

log = logging.getLogger(__name__)


def keep_run_branch(branch: str, *, target: str = "main",
                    create_task_id: str = "create_branch", rollback: bool = False,
                    tables: Sequence[str] | None = None,
                    lakeversion_conn_id: str = DEFAULT_CONN_ID
                    ) -> Callable[[Any], None]:
    """The callback. `branch` is the run branch and `target` the branch it merges into
    (both rendered like template fields, so ``"etl_{{ ds_nodash }}"`` works); the
    pre-run head of `target` is the XCom of the `create_task_id` task
    (`CreateBranchOperator` returns it). With `rollback`, the target's tables (or
    `tables`) that changed since are set back to it."""

    def callback(context: Any) -> None:
        name = _render(branch, context)
        log.warning("run failed: branch %s is kept for inspection (read it as lv.db@%s.t "
                    "or `lakeversion show %s`)", name, name, name)
        if not rollback:
            return
        target_branch = _render(target, context)
        pre_run = context["ti"].xcom_pull(task_ids=create_task_id)
        if not pre_run:
            log.error("no pre-run head in the XCom of %r: nothing rolled back",
                      create_task_id)
            return
        hook = LakeVersionHook(lakeversion_conn_id)
        try:
            commits = rollback_tables(hook.get_conn(), target_branch, pre_run, tables,
                                      airflow_properties(context), log)
            log.warning("rolled %s back to its pre-run head %s: %d commit(s)",
                        target_branch, pre_run, len(commits))
        finally:
            hook.close()

    return callback


def _render(value: str, context: Any) -> str:
    """Render with the DAG's own Jinja environment (its user-defined filters included)."""
    if "{{" not in value:
        return value
    dag = context.get("dag")
    if dag is not None and hasattr(dag, "get_template_env"):
        return str(dag.get_template_env().from_string(value).render(**context))
    from jinja2 import Template

    return Template(value).render(**context)
