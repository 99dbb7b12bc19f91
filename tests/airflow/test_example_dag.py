"""`examples/airflow_dag.py` with `dag.test()` against a real `lakeversion serve` and a real
spark-submit: a good run publishes; a run whose data fails main's SQL check leaves main
untouched, fails the merge task and keeps its branch readable."""

from __future__ import annotations

from typing import Any

import pytest
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.airflow.metadata import DAG_ID, RUN_ID, TASK_ID
from spark_lakeversion.api import connect
from tests.airflow.helpers import load_dag, states, xcom

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture
def example(connection: str) -> Any:
    main = connect(connection).branch("main")
    if "no_negative_amounts" not in {c.name for c in main.checks()}:
        main.add_check("no_negative_amounts", sql="SELECT * FROM db.orders WHERE amount < 0",
                       tables=["db.orders"], allow_missing=True)
    return load_dag("airflow_dag.py", "lakeversion_pipeline")


def amounts(url: str, ref: str) -> list[float]:
    """`db.orders`' amounts at `ref`, sorted (none if the table is not there yet)."""
    if connect(url).ref(ref).store.get_content(ref, "db.orders") is None:
        return []
    table = RestCatalog("r", uri=url + "/iceberg", warehouse=ref).load_table("db.orders")
    return sorted(table.scan().to_arrow().column("amount").to_pylist())


def run_branch(dag: Any, run: Any) -> str:
    return "etl/" + dag.user_defined_filters["ref_safe"](run.run_id)


def test_good_run_publishes(example: Any, connection: str) -> None:
    catalog = connect(connection)
    before = len(amounts(connection, "main"))
    run = example.test(run_conf={"rows": 3, "bad": False})
    assert set(states(run).values()) == {"success"}
    assert len(amounts(connection, "main")) == before + 3
    assert not catalog.branch(run_branch(example, run)).exists()
    merge = catalog.store.get_commit(xcom(run, "merge", "commit_id"))
    assert merge.properties[DAG_ID] == "lakeversion_pipeline"
    assert merge.properties[TASK_ID] == "merge"
    assert merge.properties["lakeversion.checks"] == "passed: no_negative_amounts"
    # the Spark job's own commit names the DAG run and the spark_submit task
    append = catalog.store.get_commit(merge.parents[1])
    assert append.properties[TASK_ID] == "spark_submit"
    assert append.properties[RUN_ID] == run.run_id
    assert append.properties["spark.app.name"] == "spark_submit"


def test_run_failing_the_check_keeps_main_and_the_branch(example: Any,
                                                         connection: str) -> None:
    catalog = connect(connection)
    before = catalog.branch("main").head.id
    run = example.test(run_conf={"rows": 2, "bad": True})
    assert states(run) == {"create_branch": "success", "spark_submit": "success",
                           "merge": "failed", "delete_branch": "upstream_failed"}
    assert catalog.branch("main").head.id == before
    branch = run_branch(example, run)
    kept = amounts(connection, branch)
    assert kept[0] == -99.0 and len(kept) >= 3  # the bad row is there to debug
    assert all(a >= 0 for a in amounts(connection, "main"))
