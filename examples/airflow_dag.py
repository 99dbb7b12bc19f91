"""A pipeline on a branch, in Airflow: create_branch -> spark_submit on the branch ->
merge into main (gated by main's checks) -> delete_branch.

Set-up, once (the connection, and the check that gates merges into main)::

    pip install 'spark-lakeversion[airflow]'
    lakeversion serve --store sqlite:///lake/store.db --warehouse lake/warehouse --port 8181
    export AIRFLOW_CONN_LAKEVERSION_DEFAULT='{"conn_type": "lakeversion",
                                              "host": "http://127.0.0.1:8181"}'
    lakeversion --store http://127.0.0.1:8181 check add no_negative_amounts --on main \\
        --sql "SELECT * FROM db.orders WHERE amount < 0" --allow-missing

Every DAG run writes on its own branch ``etl/<run id>``. If the job's data fails the check,
the merge task fails, `main` is untouched and the branch stays for debugging (read it as
``lv.db@etl/<run id>.orders``); `keep_run_branch` logs that (and would roll `main` back to
its pre-run head with ``rollback=True``). Trigger a bad run with the param ``bad=true``.
Commits made by these tasks carry ``airflow.dag_id``, ``airflow.run_id``,
``airflow.task_id`` and ``airflow.logical_date``.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Param

from spark_lakeversion.airflow.callbacks import keep_run_branch
from spark_lakeversion.airflow.operators import (
    CreateBranchOperator,
    DeleteBranchOperator,
    LakeVersionSparkSubmitOperator,
    MergeOperator,
)

JOB = str(Path(__file__).resolve().parent / "airflow_spark_job.py")
BRANCH = "etl/{{ run_id | ref_safe }}"


def ref_safe(text: str) -> str:
    """A run id (``manual__2026-01-01T00:00:00+00:00``) as a branch-name part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")


with DAG(
    dag_id="lakeversion_pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"rows": Param(100, type="integer"), "bad": Param(False, type="boolean")},
    user_defined_filters={"ref_safe": ref_safe},
    default_args={"retries": 0, "on_failure_callback": keep_run_branch(BRANCH)},
    tags=["lakeversion"],
) as dag:
    create_branch = CreateBranchOperator(task_id="create_branch", branch=BRANCH,
                                         source="main")
    spark_submit = LakeVersionSparkSubmitOperator(
        task_id="spark_submit", application=JOB, branch=BRANCH,
        application_args=["{{ params.rows }}", "{{ '--bad' if params.bad else '--good' }}"],
        master="local[1]",
        conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "1"},
        spark_submit_args=["--driver-memory", "512m"])
    merge = MergeOperator(task_id="merge", source=BRANCH, target="main",
                          message="publish {{ run_id }}")
    delete_branch = DeleteBranchOperator(task_id="delete_branch", branch=BRANCH)

    create_branch >> spark_submit >> merge >> delete_branch
