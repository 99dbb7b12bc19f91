"""Merge gates from Spark SQL: protection refuses INSERT INTO on main and writes nothing;
MERGE BRANCH goes through the gate and a failed check is a typed `ChecksFailed` error that
lists the reports; SHOW BRANCHES, SHOW CHECKS and SHOW CHECK RUNS; published states
(issue 20): no fast-forward into a protected branch, `NO FF`, rollback only to first-parent
states, a gated REVERT COMMIT, `db@main@{N}`."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_lakeversion.errors import ChecksFailed, ProtectedBranch
from spark_lakeversion.model import CheckKind, CheckSpec
from tests.spark.helpers import SparkLake

pytestmark = pytest.mark.spark

UNIQUE_IDS = "SELECT id, count(*) AS n FROM db.t GROUP BY id HAVING count(*) > 1"
NO_NULL_V = "SELECT * FROM db.t WHERE v IS NULL"


def metadata_files(lake: SparkLake) -> set[Path]:
    return set(Path(lake.server.warehouse.removeprefix("file://")).rglob("*.metadata.json"))


def test_insert_into_protected_main_is_refused(orders: SparkLake) -> None:
    rows = orders.rows("ALTER BRANCH main SET PROTECTED")
    assert [(r.name, r.protected, r.changed) for r in rows] == [("main", True, True)]
    store = orders.server.store
    head, files = store.get_ref("main").head, metadata_files(orders)
    with pytest.raises(ProtectedBranch, match="write to a branch and merge it"):
        orders.sql("INSERT INTO {lv}.db.t VALUES (3, 'c')")
    assert store.get_ref("main").head == head
    assert metadata_files(orders) == files
    assert orders.ids("db.t") == [1, 2]
    orders.sql("CREATE BRANCH dev")
    assert {(r.name, r.protected) for r in orders.rows("SHOW BRANCHES")} == {
        ("dev", False), ("main", True)}
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    orders.sql("MERGE BRANCH dev INTO main")
    assert orders.ids("db.t") == [1, 2, 3]
    orders.sql("ALTER BRANCH main UNSET PROTECTED")
    orders.sql("INSERT INTO {lv}.db.t VALUES (4, 'd')")
    assert orders.ids("db.t") == [1, 2, 3, 4]


def test_protected_branch_requiring_approvals(orders: SparkLake) -> None:
    rows = orders.rows("ALTER BRANCH main SET PROTECTED REQUIRE 1 APPROVALS")
    assert [(r.name, r.protected, r.changed) for r in rows] == [("main", True, True)]
    store = orders.server.store
    assert store.required_approvals() == {"main": 1}
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    with pytest.raises(ProtectedBranch, match="needs 1 approval"):
        orders.sql("MERGE BRANCH dev INTO main")
    assert orders.ids("db.t") == [1, 2]
    orders.sql("ALTER BRANCH main UNSET PROTECTED")
    assert store.required_approvals() == {}


def test_merge_branch_goes_through_the_gate(orders: SparkLake) -> None:
    store = orders.server.store
    store.add_check(CheckSpec("main", "unique_ids", CheckKind.SQL, UNIQUE_IDS))
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (2, 'dup')")
    head = store.get_ref("main").head
    with pytest.raises(ChecksFailed) as caught:
        orders.sql("MERGE BRANCH dev INTO main")
    error = caught.value
    assert error.reports[0]["name"] == "unique_ids"
    assert error.reports[0]["samples"] == [{"id": 2, "n": 2}]
    assert "failed unique_ids: violations=1" in error.message
    assert '{"id":2,"n":2}' in error.message
    assert store.get_ref("main").head == head
    assert orders.ids("db.t") == [1, 2]
    # the preview is readable from Spark for debugging
    assert error.preview is not None
    assert orders.ids(f"db@{error.preview}.t") == [1, 2, 2]
    [check] = orders.rows("SHOW CHECKS ON BRANCH main")
    assert (check.name, check.kind, check.spec) == ("unique_ids", "sql", UNIQUE_IDS)
    [run] = orders.rows("SHOW CHECK RUNS ON BRANCH main LIMIT 5")
    assert (run.check, run.status, run.violations, run.preview) == (
        "unique_ids", "failed", 1, error.preview)
    orders.sql("DELETE FROM {lv}.db@dev.t WHERE v = 'dup'")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    orders.sql("MERGE BRANCH dev INTO main")
    assert orders.ids("db.t") == [1, 2, 3]
    assert [r.status for r in orders.rows("SHOW CHECK RUNS")] == ["passed", "failed"]


def test_rollback_on_protected_main_restores_only_published_states(orders: SparkLake) -> None:
    """Issue 20's reproduction: the fixed row merged through the gate; the NULL row it
    fixed is an ancestor of main but was never published there, so it cannot come back."""
    store = orders.server.store
    orders.sql("ALTER BRANCH main SET PROTECTED")
    store.add_check(CheckSpec("main", "no_null_v", CheckKind.SQL, NO_NULL_V))
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, NULL)")
    null_row = store.get_ref("dev").head
    orders.sql("UPDATE {lv}.db@dev.t SET v = 'c' WHERE id = 3")
    before = store.get_ref("main").head
    [row] = orders.rows("MERGE BRANCH dev INTO main")  # no NO FF: main is protected
    merge = store.get_commit(store.get_ref("main").head)
    assert (row.table, row.action, row.commit_id) == ("db.t", "APPLIED", merge.id)
    assert row.message.startswith("'main' is protected: a merge into it always makes a merge")
    assert merge.parents == (before, store.get_ref("dev").head)
    assert merge.properties["lakeversion.checks"] == "passed: no_null_v"
    files = metadata_files(orders)
    # reverting the fix makes a new state: through the checks, which refuse it
    with pytest.raises(ChecksFailed, match="no_null_v"):
        orders.sql(f"REVERT COMMIT {merge.parents[1]}")
    assert store.get_ref("main").head == merge.id
    assert metadata_files(orders) == files
    for to in (null_row, "dev~1"):
        with pytest.raises(ProtectedBranch, match="first-parent history"):
            orders.sql(f"ROLLBACK TABLE db.t TO {to}")
        assert store.get_ref("main").head == merge.id
        assert metadata_files(orders) == files
        assert orders.rows("SELECT * FROM {lv}.db.t ORDER BY id") == [
            (1, "a"), (2, "b"), (3, "c")]
    # main~1 is the state before the merge: published on main, so it comes back at once
    [rolled] = orders.rows("ROLLBACK TABLE db.t TO main~1")
    assert store.get_commit(rolled.commit_id).properties["lakeversion.recovery"] == "rollback"
    assert orders.ids("db.t") == [1, 2]
    # `db@main@{1}` reads the head before that rollback: the merge
    assert orders.ids("db@main@{1}.t") == [1, 2, 3]
    assert orders.ids("`db@main@{2}`.t") == [1, 2]


def test_merge_branch_no_ff_makes_a_merge_commit(orders: SparkLake) -> None:
    store = orders.server.store
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    before, dev = store.get_ref("main").head, store.get_ref("dev").head
    [row] = orders.rows("MERGE BRANCH dev INTO main NO FF")
    assert (row.action, row.message) == ("APPLIED", None)  # asked for: nothing to explain
    assert store.get_commit(row.commit_id).parents == (before, dev)
    assert orders.ids("db.t") == [1, 2, 3]
