"""Each operator in a real DAG run (`dag.test()`) against a real `lakeversion serve`: the
XCom values, the rendered templates, and the properties stamped on commits."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.airflow.metadata import DAG_ID, LOGICAL_DATE, RUN_ID, TASK_ID
from spark_lakeversion.api import Catalog, connect
from tests.airflow.helpers import load_dag, states, xcom
from tests.helpers import fake_spark_home

DAGS = "lv_test_dags.py"


@pytest.fixture(scope="module")
def table_on_main(lv_server: str) -> str:
    """`db.t (id int)` with row 1 on the shared server's main, once."""
    rest = RestCatalog("setup", uri=lv_server + "/iceberg")
    if not rest.table_exists("db.t"):
        rest.create_namespace_if_not_exists("db")
        table = rest.create_table("db.t", pa.schema([("id", pa.int32())]))
        table.append(pa.table({"id": pa.array([1], pa.int32())}))
    return lv_server


@pytest.fixture
def prefix(table_on_main: str, connection: str) -> str:
    """A fresh name prefix with its own target branch `<prefix>_target` made from main."""
    name = f"p{uuid.uuid4().hex[:8]}"
    connect(table_on_main).branch(f"{name}_target").create(from_="main")
    return name


def rows(url: str, ref: str) -> list[int]:
    table = RestCatalog("r", uri=url + "/iceberg", warehouse=ref).load_table("db.t")
    return sorted(table.scan().to_arrow().column("id").to_pylist())


def test_operators_xcom_templates_and_properties(prefix: str, connection: str) -> None:
    catalog = connect(connection)
    target = catalog.branch(f"{prefix}_target")
    before = target.head.id
    run = load_dag(DAGS, "lv_operators").test(run_conf={"prefix": prefix})
    assert states(run) == dict.fromkeys(
        ["create_branch", "append", "merge", "tag", "delete_branch", "rollback", "sense"],
        "success")
    # create_branch: the branch's head, i.e. the target's pre-run head
    assert xcom(run, "create_branch") == before
    # merge: the result and the new head; the merge commit names the DAG run and task
    result = xcom(run, "merge")
    merged = xcom(run, "merge", "commit_id")
    assert result["source"] == f"{prefix}_work" and result["target"] == f"{prefix}_target"
    assert result["new_head"] == merged and result["target_head_before"] == before
    merge_commit = catalog.store.get_commit(merged)
    assert merge_commit.message == f"publish {prefix}"  # templated message
    assert merge_commit.properties[DAG_ID] == "lv_operators"
    assert merge_commit.properties[RUN_ID] == run.run_id
    assert merge_commit.properties[TASK_ID] == "merge"
    assert merge_commit.properties[LOGICAL_DATE].startswith(str(run.logical_date.date()))
    # tag: templated from the merge's XCom
    assert xcom(run, "tag") == merged
    assert catalog.tag(f"{prefix}_v1").head.id == merged
    # delete_branch: the head it deleted (the append, which carried no airflow ids: it was
    # a plain pyiceberg write)
    assert not catalog.branch(f"{prefix}_work").exists()
    assert catalog.store.get_commit(xcom(run, "delete_branch")).message.startswith("append")
    # rollback: db.t back to the pre-run state, one commit, naming the run
    [rollback_commit] = xcom(run, "rollback")
    assert target.head.id == rollback_commit
    assert rows(connection, target.name) == [1]
    assert rows(connection, f"{prefix}_v1") == [1, len(prefix)]
    rollback = catalog.store.get_commit(rollback_commit)
    assert run.run_id in rollback.message
    assert rollback.properties[DAG_ID] == "lv_operators"
    assert rollback.properties[RUN_ID] == run.run_id
    assert rollback.properties[TASK_ID] == "rollback"
    assert rollback.properties["lakeversion.rollback.to-commit"] == before
    # sense: the first commit on db.t after the merge is the rollback
    assert xcom(run, "sense") == rollback_commit


def test_failed_checks_fail_the_merge_task_and_keep_the_branch(prefix: str,
                                                               connection: str) -> None:
    from spark_lakeversion.airflow.operators import describe_failure
    from spark_lakeversion.errors import ChecksFailed

    catalog = connect(connection)
    target = catalog.branch(f"{prefix}_target")
    target.add_check("positive_ids", sql="SELECT * FROM db.t WHERE id <= 0")
    before = target.head.id
    run = load_dag(DAGS, "lv_gated").test(run_conf={"prefix": prefix, "value": -7})
    assert states(run) == {"create_branch": "success", "append": "success",
                           "merge": "failed", "delete_branch": "upstream_failed"}
    assert target.head.id == before  # nothing published
    assert rows(connection, f"{prefix}_work") == [-7, 1]  # the run branch, readable
    # what the task log shows for such a refusal: every check's report
    with pytest.raises(ChecksFailed) as refused:
        catalog.ref(f"{prefix}_work").merge_into(target.name)
    lines = describe_failure(refused.value)
    assert lines[0].startswith("ChecksFailed (CHECKS_FAILED)")
    assert any('"name": "positive_ids"' in line and '"violations": 1' in line
               for line in lines)
    # once debugged, the kept branch goes; the same DAG with good data passes the gate
    catalog.branch(f"{prefix}_work").delete(force=True)
    good = load_dag(DAGS, "lv_gated").test(run_conf={"prefix": prefix, "value": 9})
    assert set(states(good).values()) == {"success"}
    assert rows(connection, target.name) == [1, 9]


def test_delete_branch_keeps_unmerged_work_unless_forced(prefix: str, connection: str) -> None:
    """As git's `branch -d` and `-D`: a run branch with commits no other ref holds."""
    from airflow.sdk.exceptions import AirflowFailException

    from spark_lakeversion.airflow.operators import DeleteBranchOperator

    catalog = connect(connection)
    work = catalog.branch(f"{prefix}_work")
    refused = load_dag(DAGS, "lv_delete_unmerged").test(run_conf={"prefix": prefix})
    assert states(refused) == {"create_branch": "success", "append": "success",
                               "delete_branch": "failed"}
    head = work.head.id  # kept, as it was
    assert rows(connection, work.name) == [1, 5]
    assert catalog.store.get_commit(head).message.startswith("append")
    with pytest.raises(AirflowFailException, match="UnmergedBranch: .*force"):  # no retry
        DeleteBranchOperator(task_id="again", branch=work.name).execute({})
    assert work.head.id == head
    work.delete(force=True)
    forced = load_dag(DAGS, "lv_delete_unmerged_forced").test(run_conf={"prefix": prefix})
    assert set(states(forced).values()) == {"success"}
    assert not work.exists()
    assert catalog.store.get_commit(xcom(forced, "delete_branch")).message.startswith("append")
    assert rows(connection, f"{prefix}_target") == [1]


def test_failure_callback_keeps_the_branch_and_rolls_the_target_back(
        prefix: str, connection: str) -> None:
    catalog = connect(connection)
    target = catalog.branch(f"{prefix}_target")
    run = load_dag(DAGS, "lv_rollback_callback").test(run_conf={"prefix": prefix})
    assert states(run) == {"create_branch": "success", "append": "success",
                           "fail": "failed"}
    assert rows(connection, target.name) == [1]  # the bad row was rolled back
    assert catalog.branch(f"{prefix}_work").exists()  # the run branch is kept
    log = list(target.log(limit=3))
    assert log[0].message.startswith("rollback db.t to ")
    assert run.run_id in log[0].message
    assert log[1].message.startswith("append")  # what was rolled back


def test_commit_sensor_pokes(prefix: str, connection: str) -> None:
    from spark_lakeversion.airflow.sensors import CommitSensor

    catalog = connect(connection)
    target = catalog.branch(f"{prefix}_target")
    sensor = CommitSensor(task_id="s", branch=target.name, table="db.t")
    assert sensor.poke({}) is False  # baseline: the head at the first poke
    other = f"{prefix}_other"
    catalog.branch(other).create(from_=target.name)
    rest = RestCatalog("w", uri=connection + "/iceberg", warehouse=target.name)
    rest.create_namespace("other_ns")  # a commit that does not touch db.t
    assert sensor.poke({}) is False
    rest.load_table("db.t").append(pa.table({"id": pa.array([5], pa.int32())}))
    done: Any = sensor.poke({})
    assert done.is_done and done.xcom_value == target.head.id


def test_hook_and_spark_conf(connection: str) -> None:
    from spark_lakeversion.airflow.hooks import LakeVersionHook

    hook = LakeVersionHook()
    assert hook.server_url == connection
    assert isinstance(hook.get_conn(), Catalog)
    assert hook.test_connection()[0] is True
    conf = hook.spark_conf("etl", properties={"airflow.dag_id": "d"})
    assert conf["spark.sql.catalog.lv.uri"] == connection
    assert conf["spark.lakeversion.branch"] == "etl"
    assert conf["spark.lakeversion.property.airflow.dag_id"] == "d"


def test_unreachable_server_is_retryable_bad_input_is_not(
        airflow_db: None, monkeypatch: pytest.MonkeyPatch, connection: str) -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from spark_lakeversion.airflow.operators import CreateBranchOperator

    bad_name = CreateBranchOperator(task_id="bad", branch="no spaces allowed")
    with pytest.raises(AirflowFailException, match="InvalidName"):
        bad_name.execute({})
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_LAKEVERSION_DEFAULT",
                       f'{{"conn_type": "lakeversion", "host": "{dead}"}}')
    with pytest.raises(AirflowException, match="ServerError") as away:
        CreateBranchOperator(task_id="away", branch="fine").execute({})
    assert not isinstance(away.value, AirflowFailException)


def test_spark_submit_operator_preflight(prefix: str, connection: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Before Spark starts: a missing branch fails the task for good, an unreachable server
    as retryable; `create_branch` creates it from `source`. Spark never starts on a
    refusal (the fake spark-submit records whether it ran)."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from spark_lakeversion.airflow.operators import LakeVersionSparkSubmitOperator

    home = fake_spark_home(tmp_path)
    monkeypatch.setenv("SPARK_HOME", str(home))
    catalog = connect(connection)
    branch = f"{prefix}_spark"

    def operator(**kwargs: Any) -> LakeVersionSparkSubmitOperator:
        return LakeVersionSparkSubmitOperator(task_id="spark", application="job.py",
                                              branch=branch, **kwargs)

    with pytest.raises(AirflowFailException, match=f"RefNotFound: branch '{branch}'") \
            as missing:
        operator().execute({})
    assert str(missing.value).endswith("or pass create_branch=True")
    assert not (home / "started").exists() and not catalog.branch(branch).exists()
    head = operator(create_branch=True, source=f"{prefix}_target").execute({})
    assert head == catalog.branch(f"{prefix}_target").head.id == catalog.branch(branch).head.id
    args = (home / "started").read_text().splitlines()
    assert "spark.log.level=WARN" in args and args[-1] == "job.py"
    (home / "started").unlink()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_LAKEVERSION_DEFAULT",
                       f'{{"conn_type": "lakeversion", "host": "{dead}"}}')
    with pytest.raises(AirflowException, match="ServerError: cannot reach") as away:
        operator().execute({})
    assert not isinstance(away.value, AirflowFailException)
    assert not (home / "started").exists()


def test_kept_branch_is_described_with_pasteable_names(prefix: str, connection: str) -> None:
    from spark_lakeversion.airflow.callbacks import describe_kept_branch

    catalog = connect(connection)
    target = f"{prefix}_target"
    branch = f"etl/{prefix}-manual__2026-12-06T06-23-16-267591"
    catalog.branch(branch).create(from_=target)
    assert describe_kept_branch(catalog, branch, target)[1] \
        == f"  the run wrote no table on {branch}"
    RestCatalog("w", uri=connection + "/iceberg", warehouse=branch).load_table("db.t") \
        .append(pa.table({"id": pa.array([3], pa.int32())}))
    assert describe_kept_branch(catalog, branch, target, "spark_catalog") == [
        f"run failed: branch {branch} is kept for inspection (lakeversion show {branch})",
        f"  read db.t as: SELECT * FROM spark_catalog.`db@{branch}`.t"]
