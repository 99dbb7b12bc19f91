"""`catalog.run(on=...)` with Spark writing to the run branch: merge on a clean exit, keep
the branch on an exception or when the target's checks refuse the merge."""

from __future__ import annotations

from typing import Any

import pytest

from spark_lakeversion.api import connect
from spark_lakeversion.errors import ChecksFailed
from spark_lakeversion.runs import RUN_BRANCH, RUN_ID
from tests.spark.helpers import SparkLake

pytestmark = [pytest.mark.spark]


def insert(lake: SparkLake, branch: str, *ids: int) -> None:
    values = ", ".join(f"({i}, 'run')" for i in ids)
    lake.sql(f"INSERT INTO {{lv}}.`db@{branch}`.t VALUES {values}")


def test_clean_exit_merges_and_deletes_the_branch(orders: SparkLake) -> None:
    catalog = connect(orders.server.url)
    before = catalog.branch("main").head.id
    with catalog.run(on="main") as run:
        assert run.branch.name.startswith("run/")
        assert run.base_head == before
        insert(orders, run.branch.name, 3)
        assert orders.ids("db.t") == [1, 2]  # nothing visible on main inside the run
    assert orders.ids("db.t") == [1, 2, 3]
    assert run.succeeded and run.error is None
    assert run.merge_result is not None and run.merge_result.target_head_before == before
    head = catalog.branch("main").head
    assert head.id == run.merge_result.new_head
    assert head.properties[RUN_ID] == run.id
    assert head.properties[RUN_BRANCH] == run.branch.name
    assert not run.branch.exists() and run.branch_deleted


def test_exception_keeps_the_branch_and_leaves_main_untouched(orders: SparkLake) -> None:
    catalog = connect(orders.server.url)
    before = catalog.branch("main").head.id
    with pytest.raises(RuntimeError, match="job broke"), \
            catalog.run(on="main", branch="nightly_broken") as run:
        insert(orders, "nightly_broken", 3)
        raise RuntimeError("job broke")
    assert catalog.branch("main").head.id == before
    assert orders.ids("db.t") == [1, 2]
    assert orders.ids("`db@nightly_broken`.t") == [1, 2, 3]  # kept, readable
    assert run.merge_result is None and isinstance(run.error, RuntimeError)
    assert not run.succeeded


def test_failing_checks_keep_the_branch_and_leave_main_untouched(orders: SparkLake) -> None:
    catalog = connect(orders.server.url)
    catalog.branch("main").add_check("no_negative_ids", sql="SELECT * FROM db.t WHERE id < 0")
    before = catalog.branch("main").head.id
    with pytest.raises(ChecksFailed) as refused, catalog.run(on="main") as run:
        insert(orders, run.branch.name, -5)
    assert catalog.branch("main").head.id == before
    assert orders.ids("db.t") == [1, 2]
    assert orders.ids(f"`db@{run.branch.name}`.t") == [-5, 1, 2]
    [report] = refused.value.reports
    assert report["name"] == "no_negative_ids" and report["status"] == "failed"
    assert report["violations"] == 1
    assert run.error is refused.value and run.merge_result is None
    # a good run then passes the same gate
    with catalog.run(on="main", keep_branch=True) as good:
        insert(orders, good.branch.name, 7)
    assert orders.ids("db.t") == [1, 2, 7]
    assert good.branch.exists() and not good.branch_deleted


def test_env_contract_reaches_session_conf(monkeypatch: pytest.MonkeyPatch,
                                          spark: Any) -> None:
    """`configure()` (what `session()` builds on) reads the run's variables."""
    from spark_lakeversion.spark import configure

    class Builder:  # records settings the way SparkSession.Builder.config takes them
        def __init__(self) -> None:
            self._options: dict[str, str] = {}

        def config(self, key: str, value: str) -> Builder:
            self._options[key] = value
            return self

    monkeypatch.setenv("LAKEVERSION_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LAKEVERSION_BRANCH", "run/abc")
    monkeypatch.setenv("LAKEVERSION_RUN_ID", "abc")
    options = configure(Builder())._options
    assert options["spark.lakeversion.branch"] == "run/abc"
    assert options["spark.sql.catalog.lv.ref"] == "run/abc"
    assert options["spark.sql.catalog.lv.uri"] == "http://127.0.0.1:9"
    assert options["spark.lakeversion.property.lakeversion.run.id"] == "abc"
    # an explicit branch still wins
    assert configure(Builder(), branch="dev")._options["spark.lakeversion.branch"] == "dev"


def test_airflow_run_branch_names_read_in_spark_sql(orders: SparkLake) -> None:
    """An Airflow run id becomes a branch Spark SQL reads, unquoted (`lv.db@etl/….t`) and as
    the callback's pasteable name; the old dotted name was a PARSE_SYNTAX_ERROR."""
    from spark_lakeversion.runs import run_branch_name
    from spark_lakeversion.spark import sql_name

    branch = run_branch_name("manual__2026-12-06T06:23:16.267591+00:00", prefix="etl")
    assert branch == "etl/manual__2026-12-06T06-23-16-267591"
    connect(orders.server.url).branch(branch).create()
    insert(orders, branch, 7)
    assert orders.ids(f"db@{branch}.t") == [1, 2, 7]  # unquoted, as a user types it
    pasted = sql_name("db.t", branch, orders.catalog)
    assert pasted == f"{orders.catalog}.`db@{branch}`.t"
    assert [r[0] for r in orders.rows(f"SELECT id FROM {pasted} ORDER BY id")] == [1, 2, 7]
