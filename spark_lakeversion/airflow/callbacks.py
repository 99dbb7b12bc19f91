"""`keep_run_branch`: an ``on_failure_callback`` for pipelines on a branch.

A failed run leaves its branch as it was (the isolated snapshot of the inputs and outputs
to debug); the callback says so in the log, with a Spark SQL name to paste for each table
the run wrote (from the branch's diff against the run's base), and, if asked, rolls the
target's tables back to their state before the run (for a failure after the merge, e.g.
in a later check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from spark_lakeversion.airflow import DEFAULT_CONN_ID
from spark_lakeversion.airflow.hooks import LakeVersionHook
from spark_lakeversion.airflow.metadata import airflow_properties
from spark_lakeversion.airflow.operators import changes_a_table, rollback_tables
from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import LakeVersionError

log = logging.getLogger(__name__)


def keep_run_branch(branch: str, *, target: str = "main",
                    create_task_id: str = "create_branch", rollback: bool = False,
                    tables: Sequence[str] | None = None,
                    lakeversion_conn_id: str = DEFAULT_CONN_ID, spark_catalog: str = "lv",
                    ) -> Callable[[Any], None]:
    """The callback. `branch` is the run branch and `target` the branch it merges into
    (both rendered like template fields, so ``"etl_{{ ds_nodash }}"`` works); the
    pre-run head of `target` is the XCom of the `create_task_id` task
    (`CreateBranchOperator` returns it). With `rollback`, the target's tables (or
    `tables`) that changed since are set back to it. `spark_catalog` is the catalog name
    in the Spark SQL names it logs."""

    def callback(context: Any) -> None:
        name = _render(branch, context)
        target_branch = _render(target, context)
        pre_run = context["ti"].xcom_pull(task_ids=create_task_id)
        hook = LakeVersionHook(lakeversion_conn_id)
        try:
            catalog = hook.get_conn()
            for line in describe_kept_branch(catalog, name, pre_run or target_branch,
                                             spark_catalog):
                log.warning("%s", line)
            if not rollback:
                return
            if not pre_run:
                log.error("no pre-run head in the XCom of %r: nothing rolled back",
                          create_task_id)
                return
            commits = rollback_tables(catalog, target_branch, pre_run, tables,
                                      airflow_properties(context), log)
            log.warning("rolled %s back to its pre-run head %s: %d commit(s)",
                        target_branch, pre_run, len(commits))
        finally:
            hook.close()

    return callback


def describe_kept_branch(catalog: Catalog, branch: str, base: str,
                         spark_catalog: str = "lv") -> list[str]:
    """Log lines for a kept run branch: where it is, and each table it changed since
    `base` (the run's pre-run head, or its target: their merge base is used) as a Spark
    SQL name to paste. A branch that is gone or unreadable is said so, in one line."""
    from spark_lakeversion.spark import sql_name

    lines = [f"run failed: branch {branch} is kept for inspection "
             f"(lakeversion show {branch})"]
    try:
        since = catalog.store.merge_base(base, branch) or base
        written = sorted(str(d.key) for d in catalog.ref(since).diff(branch)
                         if changes_a_table(d))
    except LakeVersionError as error:
        return [*lines, f"  (its tables cannot be listed: {error.message})"]
    if not written:
        return [*lines, f"  the run wrote no table on {branch}"]
    return [*lines, *[f"  read {key} as: SELECT * FROM {sql_name(key, branch, spark_catalog)}"
                      for key in written]]


def _render(value: str, context: Any) -> str:
    """Render with the DAG's own Jinja environment (its user-defined filters included)."""
    if "{{" not in value:
        return value
    dag = context.get("dag")
    if dag is not None and hasattr(dag, "get_template_env"):
        return str(dag.get_template_env().from_string(value).render(**context))
    from jinja2 import Template

    return Template(value).render(**context)
