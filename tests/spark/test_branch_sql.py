"""Branch SQL and `db@ref` names end to end: shared SparkSession, real server, real store."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from chispa import assert_df_equality

from spark_lakeversion.errors import ConflictError, InvalidName, ReadOnlyRef, RefNotFound
from spark_lakeversion.spark import jvm
from tests.spark.helpers import SparkLake, register_catalog

pytestmark = pytest.mark.spark


def test_write_on_dev_is_invisible_on_main(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    orders.sql("UPDATE {lv}.db@dev.t SET v = 'z' WHERE id = 1")
    assert orders.ids("db@dev.t") == [1, 2, 3]
    assert orders.ids("db.t") == [1, 2]
    assert orders.ids("db@main.t") == [1, 2]
    main = orders.sql("SELECT * FROM {lv}.db.t")
    expected = orders.spark.createDataFrame([(1, "a"), (2, "b")], "id INT, v STRING")
    assert_df_equality(main, expected, ignore_row_order=True)


def test_dataframe_api_and_ctas_accept_ref_names(orders: SparkLake) -> None:
    spark = orders.spark
    orders.sql("CREATE BRANCH dev")
    # two-part names go to spark.lakeversion.catalog while the current catalog is not ours
    spark.createDataFrame([(5, "e")], "id INT, v STRING").writeTo("db@dev.t").append()
    assert sorted(r.id for r in spark.table("db@dev.t").collect()) == [1, 2, 5]
    orders.sql("CREATE TABLE {lv}.db@dev.t2 USING iceberg AS SELECT * FROM {lv}.db@dev.t")
    orders.sql("MERGE INTO {lv}.db@dev.t2 t USING (SELECT 9 AS id, 'm' AS v) s "
               "ON t.id = s.id WHEN NOT MATCHED THEN INSERT *")
    assert orders.ids("db@dev.t2") == [1, 2, 5, 9]
    assert orders.rows("SHOW TABLES IN {lv}.db") == orders.rows("SHOW TABLES IN {lv}.db")
    assert [r.tableName for r in orders.rows("SHOW TABLES IN {lv}.db")] == ["t"]


def test_reads_at_tag_and_commit_and_write_to_tag_is_refused(orders: SparkLake) -> None:
    orders.sql("CREATE TAG v1")
    commit = orders.rows("SHOW LOG LIMIT 1")[0].commit_id
    orders.sql("INSERT INTO {lv}.db.t VALUES (3, 'c')")
    assert orders.ids("db@v1.t") == [1, 2]
    assert orders.ids(f"db@{commit}.t") == [1, 2]
    assert orders.ids(f"db@{commit[:10]}.t") == [1, 2]
    assert orders.ids("db@main~1.t") == [1, 2]
    assert orders.ids("db.t") == [1, 2, 3]
    with pytest.raises(ReadOnlyRef):
        orders.sql("INSERT INTO {lv}.db@v1.t VALUES (4, 'd')")
    assert orders.ids("db@v1.t") == [1, 2]


def test_unknown_ref_and_invalid_name_are_typed_errors(orders: SparkLake) -> None:
    with pytest.raises(RefNotFound, match="nope"):
        orders.sql("SELECT * FROM {lv}.db@nope.t")
    with pytest.raises(RefNotFound):
        orders.sql("MERGE BRANCH nope INTO main")
    with pytest.raises(InvalidName):
        orders.sql("CREATE BRANCH `bad name`")
    with pytest.raises(RefNotFound):
        orders.sql("USE BRANCH nope")
    assert jvm.current_ref(orders.spark, orders.catalog) == "main"


def test_branches_and_tags_are_listed_and_dropped(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH dev")
    orders.sql("CREATE BRANCH IF NOT EXISTS dev")
    orders.sql("CREATE TAG v1 FROM dev")
    assert [r.name for r in orders.rows("SHOW BRANCHES")] == ["dev", "main"]
    assert [(r.name, r.type) for r in orders.rows("SHOW TAGS")] == [("v1", "TAG")]
    assert orders.rows("DROP TAG v1")[0].dropped is True
    assert orders.rows("DROP TAG IF EXISTS v1")[0].dropped is False
    assert orders.rows(f"SHOW TAGS IN {orders.catalog}") == []


def test_use_branch_switches_unqualified_names(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH dev")
    row = orders.rows("USE BRANCH dev")[0]
    assert (row.ref, row.writable) == ("dev", True)
    try:
        assert jvm.current_ref(orders.spark, orders.catalog) == "dev"
        orders.sql("INSERT INTO {lv}.db.t VALUES (3, 'c')")
        assert orders.ids("db.t") == [1, 2, 3]
        assert orders.ids("db@main.t") == [1, 2]
        assert orders.rows("SHOW LOG LIMIT 1")[0].message == "append 1 row (1 file) to db.t"
    finally:
        orders.sql("USE BRANCH main")
    assert orders.ids("db.t") == [1, 2]


def test_merge_fast_forward(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    rows = orders.rows("MERGE BRANCH dev INTO main")
    assert [(r.table, r.action) for r in rows] == [("db.t", "FAST_FORWARDED")]
    assert rows[0].commit_id == orders.rows("SHOW LOG ON dev LIMIT 1")[0].commit_id
    assert orders.ids("db.t") == [1, 2, 3]


def test_merge_three_way(orders: SparkLake) -> None:
    orders.sql("CREATE TABLE {lv}.db.u (id INT) USING iceberg")
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    orders.sql("INSERT INTO {lv}.db.u VALUES (10)")  # main moves on: no fast-forward
    dry = orders.rows("MERGE BRANCH dev INTO main DRY RUN")
    assert [(r.table, r.action, r.commit_id) for r in dry] == [("db.t", "APPLIED", None)]
    assert orders.ids("db.t") == [1, 2]
    rows = orders.rows("MERGE BRANCH dev INTO main")
    assert [(r.table, r.action) for r in rows] == [("db.t", "APPLIED")]
    assert orders.ids("db.t") == [1, 2, 3]
    assert orders.ids("db.u") == [10]
    assert len(orders.rows("SHOW LOG LIMIT 1")[0].parents.split(",")) == 2


def test_merge_conflict_rows_then_error_then_strategy(orders: SparkLake) -> None:
    orders.sql("CREATE TABLE {lv}.db.k (id INT NOT NULL, v STRING) USING iceberg")
    orders.sql("ALTER TABLE {lv}.db.k SET IDENTIFIER FIELDS id")
    orders.sql("INSERT INTO {lv}.db.k VALUES (1, 'a'), (2, 'b')")
    orders.sql("CREATE BRANCH dev")
    orders.sql("UPDATE {lv}.db@dev.k SET v = 'dev' WHERE id = 1")
    orders.sql("UPDATE {lv}.db.k SET v = 'main' WHERE id = 1")
    rows = orders.rows("MERGE BRANCH dev INTO main DRY RUN")
    # both sides rewrote the same data file (copy-on-write UPDATE of the same row): the
    # merge goes down to rows and names exactly that collision, key and values
    assert [(r.table, r.action, r.conflict_type) for r in rows] == [
        ("db.k", "CONFLICT", "ROW_CONFLICT")]
    assert "changed differently on both sides, e.g. {'id': 1}" in rows[0].message
    with pytest.raises(ConflictError, match="db.k: ROW_CONFLICT") as caught:
        orders.sql("MERGE BRANCH dev INTO main")
    assert [str(c.key) for c in caught.value.conflicts] == ["db.k"]
    assert orders.rows("SELECT v FROM {lv}.db.k WHERE id = 1")[0].v == "main"
    orders.sql("MERGE BRANCH dev INTO main USING STRATEGY source_wins")
    assert orders.rows("SELECT v FROM {lv}.db.k WHERE id = 1")[0].v == "dev"


def test_rollback_table_and_revert_commit(orders: SparkLake) -> None:
    orders.sql("CREATE TABLE {lv}.db.u (id INT) USING iceberg")
    orders.sql("CREATE TAG good")
    orders.sql("INSERT INTO {lv}.db.t VALUES (66, 'bad')")
    orders.sql("INSERT INTO {lv}.db.u VALUES (7)")
    rolled = orders.rows("ROLLBACK TABLE db.t TO good")[0]
    assert rolled.table == "db.t"
    assert orders.ids("db.t") == [1, 2]
    assert orders.ids("db.u") == [7]  # only the named table went back
    assert orders.rows("SHOW LOG LIMIT 1")[0].commit_id == rolled.commit_id

    orders.sql("INSERT INTO {lv}.db.t VALUES (77, 'oops')")
    bad = orders.rows("SHOW LOG LIMIT 1")[0].commit_id
    orders.sql("INSERT INTO {lv}.db.u VALUES (8)")
    reverted = orders.rows(f"REVERT COMMIT {bad}")
    assert [(r.table, r.action) for r in reverted] == [("db.t", "APPLIED")]
    assert orders.ids("db.t") == [1, 2]
    assert orders.ids("db.u") == [7, 8]


def test_rollback_on_another_branch(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    orders.sql("ROLLBACK TABLE db.t TO main ON BRANCH dev")
    assert orders.ids("db@dev.t") == [1, 2]
    orders.sql("CREATE TAG v1")
    with pytest.raises(ReadOnlyRef):
        orders.sql("ROLLBACK TABLE db.t TO main ON BRANCH v1")


def test_show_diff_and_log(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH dev")
    assert orders.rows("SHOW DIFF FROM main TO dev") == []
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    diff = orders.rows("SHOW DIFF FROM main TO dev")
    assert [(r.table, r.kind) for r in diff] == [("db.t", "CHANGED")]
    assert diff[0].from_metadata != diff[0].to_metadata
    log = orders.rows("SHOW LOG ON dev LIMIT 2")
    assert len(log) == 2 and log[0].message == "append 1 row (1 file) to db.t"


def test_commits_carry_spark_application_id_and_name(orders: SparkLake) -> None:
    props = orders.rows("SHOW LOG LIMIT 1")[0].properties
    spark = orders.spark
    assert f'"spark.app.id":"{spark.sparkContext.applicationId}"' in props
    assert f'"spark.app.name":"{spark.sparkContext.appName}"' in props


def test_two_writers_on_different_branches_at_once(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH b1")
    orders.sql("CREATE BRANCH b2")
    errors: list[BaseException] = []

    def write(branch: str, start: int) -> None:
        try:
            for i in range(start, start + 3):
                orders.sql(f"INSERT INTO {{lv}}.db@{branch}.t VALUES ({i}, '{branch}')")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=("b1", 10)),
               threading.Thread(target=write, args=("b2", 20))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    assert orders.ids("db@b1.t") == [1, 2, 10, 11, 12]
    assert orders.ids("db@b2.t") == [1, 2, 20, 21, 22]
    assert orders.ids("db.t") == [1, 2]


def test_no_stale_table_after_a_merge_from_outside(orders: SparkLake) -> None:
    """Regression: Iceberg's table cache must not hide a merge done by another client."""
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    assert orders.ids("db.t") == [1, 2]  # main's table is now loaded (and would be cached)
    answer = httpx.post(f"{orders.server.url}/api/v1/merge",
                        json={"source": "dev", "target": "main"})
    assert answer.status_code == 200, answer.text
    assert orders.ids("db.t") == [1, 2, 3]
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (4, 'd')")
    orders.sql("MERGE BRANCH dev INTO main")
    assert orders.ids("db.t") == [1, 2, 3, 4]


def test_cached_catalog_is_refreshed_by_branch_sql(orders: SparkLake, spark: Any) -> None:
    """With caching explicitly on, our own merge/rollback still drop the cached tables."""
    cached = orders.catalog + "_cached"
    register_catalog(spark, cached, orders.server.url, **{"cache-enabled": "true"})
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    assert [r.id for r in spark.sql(f"SELECT id FROM {cached}.db.t ORDER BY id").collect()] \
        == [1, 2]
    spark.sql(f"MERGE BRANCH dev INTO main IN {cached}")
    assert [r.id for r in spark.sql(f"SELECT id FROM {cached}.db.t ORDER BY id").collect()] \
        == [1, 2, 3]


def test_iceberg_procedures_and_branch_ddl_still_work(orders: SparkLake) -> None:
    orders.sql("ALTER TABLE {lv}.db.t CREATE BRANCH audit")
    orders.sql("INSERT INTO {lv}.db.t.branch_audit VALUES (7, 'x')")
    assert orders.ids("db.t.branch_audit") == [1, 2, 7]
    first = orders.rows("SELECT snapshot_id FROM {lv}.db.t.snapshots "
                        "ORDER BY committed_at LIMIT 1")[0].snapshot_id
    orders.sql("INSERT INTO {lv}.db.t VALUES (3, 'c')")
    orders.sql(f"CALL {{lv}}.system.rollback_to_snapshot('db.t', {first})")
    assert orders.ids("db.t") == [1, 2]
