"""DAGs the provider's tests run with `dag.test()` (Airflow runs only DAGs of its dags
folder). Branch and table names come from the run's params, so each test has its own."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from spark_lakeversion.airflow.callbacks import keep_run_branch
from spark_lakeversion.airflow.operators import (
    CreateBranchOperator,
    DeleteBranchOperator,
    MergeOperator,
    RollbackOperator,
    TagOperator,
)
from spark_lakeversion.airflow.sensors import CommitSensor

WORK = "{{ params.prefix }}_work"
TARGET = "{{ params.prefix }}_target"
START = datetime(2026, 1, 1)


@task
def append(branch: str, value: str) -> None:
    """Append one row to db.t on `branch`, through the connection's Iceberg REST catalog."""
    import pyarrow as pa
    from pyiceberg.catalog.rest import RestCatalog

    from spark_lakeversion.airflow.hooks import LakeVersionHook

    catalog = RestCatalog("w", uri=LakeVersionHook().server_url + "/iceberg",
                          warehouse=branch)
    catalog.load_table("db.t").append(pa.table({"id": pa.array([int(value)], pa.int32())}))


@task
def fail() -> None:
    raise RuntimeError("a later check of the published data failed")


with DAG("lv_operators", schedule=None, start_date=START, params={"prefix": "x"}) as ops:
    create = CreateBranchOperator(task_id="create_branch", branch=WORK, source=TARGET)
    write = append(WORK, "{{ params.prefix | length }}")
    merge = MergeOperator(task_id="merge", source=WORK, target=TARGET,
                          message="publish {{ params.prefix }}")
    tag = TagOperator(task_id="tag", tag="{{ params.prefix }}_v1",
                      ref="{{ ti.xcom_pull(task_ids='merge', key='commit_id') }}")
    delete = DeleteBranchOperator(task_id="delete_branch", branch=WORK)
    rollback = RollbackOperator(task_id="rollback", branch=TARGET,
                                to="{{ ti.xcom_pull(task_ids='create_branch') }}")
    sense = CommitSensor(task_id="sense", branch=TARGET, table="db.t", mode="poke",
                         since="{{ ti.xcom_pull(task_ids='merge', key='commit_id') }}",
                         poke_interval=1, timeout=60)
    create >> write >> merge >> tag >> delete >> rollback >> sense

with DAG("lv_gated", schedule=None, start_date=START, params={"prefix": "x", "value": 1},
         default_args={"on_failure_callback": keep_run_branch(WORK)}) as gated:
    create = CreateBranchOperator(task_id="create_branch", branch=WORK, source=TARGET)
    write = append(WORK, "{{ params.value }}")
    merge = MergeOperator(task_id="merge", source=WORK, target=TARGET)
    delete = DeleteBranchOperator(task_id="delete_branch", branch=WORK)
    create >> write >> merge >> delete

with DAG("lv_rollback_callback", schedule=None, start_date=START, params={"prefix": "x"},
         default_args={"on_failure_callback": keep_run_branch(
             WORK, target=TARGET, rollback=True)}) as rolled_back:
    create = CreateBranchOperator(task_id="create_branch", branch=WORK, source=TARGET)
    publish_bad = append(TARGET, "-1")  # bad data reached the target...
    check = fail()                      # ...and a later task finds out
    create >> publish_bad >> check


def delete_unmerged(dag_id: str, force: bool) -> DAG:
    """Create the run branch, write to it, delete it unmerged (with or without `force`)."""
    with DAG(dag_id, schedule=None, start_date=START, params={"prefix": "x"}) as dag:
        create = CreateBranchOperator(task_id="create_branch", branch=WORK, source=TARGET)
        write = append(WORK, "5")
        delete = DeleteBranchOperator(task_id="delete_branch", branch=WORK, force=force)
        create >> write >> delete
    return dag


unmerged = delete_unmerged("lv_delete_unmerged", force=False)
unmerged_forced = delete_unmerged("lv_delete_unmerged_forced", force=True)
