"""The row diff on Spark (`engine="spark"`, SHOW DIFF ... ROWS in the caller's session, the
CLI's `--engine spark`) gives exactly the DuckDB engine's answer: the same Arrow rows, types,
order and change column, for Iceberg copy-on-write and merge-on-read (position deletes),
keyed and keyless tables, a renamed column, and a partitioned Delta table; Spark is handed
only the files live on one side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import InvalidInput, KeyNotFound, RefNotFound
from spark_lakeversion.formats.delta.rows import IDENTIFIER_PROPERTY
from tests.formats.delta.helpers import ID_P_V_ARROW, data
from tests.spark.helpers import SparkLake

MODES = {
    "cow": "'format-version'='2'",
    "mor": ("'format-version'='2', 'write.delete.mode'='merge-on-read', "
            "'write.update.mode'='merge-on-read', 'write.merge.mode'='merge-on-read'"),
}


def _same(a: pa.Table, b: pa.Table) -> None:
    """Equal rows in the same order, and the same schema, field ids included."""
    assert b.schema.equals(a.schema, check_metadata=True), (a.schema, b.schema)
    assert b.to_pylist() == a.to_pylist()


def _both(cat: Catalog, spark: Any, table: str, **options: Any) -> tuple[pa.Table, pa.Table]:
    ref = cat.ref("main")
    duck = ref.diff_rows("dev", table, **options)
    on_spark = ref.diff_rows("dev", table, engine="spark", spark=spark, **options)
    _same(duck, on_spark)
    return duck, on_spark


def _sql(lake: SparkLake, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in lake.rows(f"SHOW DIFF FROM main TO dev FOR TABLE {table} ROWS")]


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "keyless"])
@pytest.mark.parametrize("mode", list(MODES))
def test_spark_engine_equals_duckdb_on_iceberg(lake: SparkLake, mode: str, keyed: bool) -> None:
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql(f"CREATE TABLE {{lv}}.db.t (id INT NOT NULL, v STRING, n BIGINT) USING iceberg "
             f"TBLPROPERTIES ({MODES[mode]})")
    if keyed:
        lake.sql("ALTER TABLE {lv}.db.t SET IDENTIFIER FIELDS id")
    for part in range(4):
        lake.sql(f"INSERT INTO {{lv}}.db.t SELECT /*+ REPARTITION(1) */ CAST(id AS INT), "
                 f"CONCAT('v', id), IF(id % 3 = 0, NULL, id) FROM range({part * 5}, "
                 f"{part * 5 + 5})")
    lake.sql("CREATE BRANCH dev")
    lake.sql("UPDATE {lv}.db@dev.t SET v = 'three', n = NULL WHERE id = 3")
    lake.sql("UPDATE {lv}.db@dev.t SET v = NULL WHERE id = 16")
    lake.sql("DELETE FROM {lv}.db@dev.t WHERE id = 12")
    lake.sql("INSERT INTO {lv}.db@dev.t VALUES (100, 'new', 1), (101, NULL, NULL)"
             + ("" if keyed else ", (3, 'v3', NULL), (100, 'new', 1)"))
    lake.sql("ALTER TABLE {lv}.db@dev.t RENAME COLUMN v TO label")
    cat = connect(lake.server.url)
    duck, _ = _both(cat, lake.spark, "db.t")
    if keyed:
        assert [(r["change"], r["id"], r["label"]) for r in duck.to_pylist()] == [
            ("update_before", 3, "v3"), ("update_after", 3, "three"), ("delete", 12, "v12"),
            ("update_before", 16, "v16"), ("update_after", 16, None), ("insert", 100, "new"),
            ("insert", 101, None)]
    else:
        # (3, 'v3') updated, then inserted again: the old row is back, not a change
        assert sorted((r["change"], r["id"]) for r in duck.to_pylist()) == [
            ("delete", 12), ("delete", 16), ("insert", 3), ("insert", 16), ("insert", 100),
            ("insert", 100), ("insert", 101)]
    _both(cat, lake.spark, "db.t", columns=["label", "id"], limit=3)
    _both(cat, lake.spark, "db.t", summary=True)
    # SQL in the caller's session: the same rows, in the same order
    assert _sql(lake, "db.t") == [tuple(r.values()) for r in duck.to_pylist()]
    # only files live on one side are handed to Spark: the file of ids 5..9 is shared
    plan = cat.store.plan_row_diff("main", "dev", "db.t")
    planned = {f for scan in plan["scans"] for f in scan["files"]}
    shared = {r[0] for r in lake.rows(
        "SELECT file_path FROM {lv}.db.t.data_files WHERE lower_bounds[1] IS NOT NULL")}
    untouched = {p for p in shared if p not in planned}
    assert planned and untouched
    assert len(plan["scans"]) == 2 and all(s["namespace"][0].startswith("db@")
                                           for s in plan["scans"])


def test_spark_engine_equals_duckdb_on_delta(lake: SparkLake, tmp_path: Path) -> None:
    with connect(lake.server.url, warehouse=str(tmp_path / "wh")) as cat:
        for name, config in (("db.keyed", {IDENTIFIER_PROPERTY: "id"}), ("db.bag", {})):
            handle = cat.branch("main").delta(name)
            handle.create(ID_P_V_ARROW, partition_by=["p"], configuration=config)
            handle.append(data((1, "a", 10), (2, "a", 20), (3, "b", 30)))
            handle.append(data((4, "c", 40), (4, "c", 40)))
        cat.branch("dev").create("main")
        for name in ("db.keyed", "db.bag"):
            lake.sql(f"UPDATE {{lv}}.db@dev.{name.split('.')[1]} SET v = 21 WHERE id = 2")
            lake.sql(f"DELETE FROM {{lv}}.db@dev.{name.split('.')[1]} WHERE id = 3")
            lake.sql(f"INSERT INTO {{lv}}.db@dev.{name.split('.')[1]} VALUES (5, 'b', 50)")
        keyed, _ = _both(cat, lake.spark, "db.keyed")
        assert [(r["change"], r["id"], r["p"], r["v"]) for r in keyed.to_pylist()] == [
            ("update_before", 2, "a", 20), ("update_after", 2, "a", 21),
            ("delete", 3, "b", 30), ("insert", 5, "b", 50)]
        bag, _ = _both(cat, lake.spark, "db.bag")
        assert [r["change"] for r in bag.to_pylist()] == ["delete", "insert", "delete",
                                                          "insert"]
        summary, _ = _both(cat, lake.spark, "db.keyed", summary=True)
        assert summary.to_pylist() == [
            {"partition": "p=a", "inserted": 0, "deleted": 0, "updated": 1},
            {"partition": "p=b", "inserted": 1, "deleted": 1, "updated": 0}]
        assert _sql(lake, "db.keyed") == [tuple(r.values()) for r in keyed.to_pylist()]


def test_sql_engine_setting_and_bad_input(orders: SparkLake) -> None:
    """`spark.lakeversion.rows.engine`: spark (the default) or server, both the same rows;
    anything else, an unknown engine or no session is a typed error."""
    orders.sql("CREATE BRANCH dev")
    orders.sql("UPDATE {lv}.db@dev.t SET v = 'B' WHERE id = 2")
    in_session = _sql(orders, "db.t")
    assert in_session == [("insert", 2, "B"), ("delete", 2, "b")]  # ordered by row
    try:
        orders.spark.conf.set("spark.lakeversion.rows.engine", "server")
        assert _sql(orders, "db.t") == in_session
        orders.spark.conf.set("spark.lakeversion.rows.engine", "gpu")
        with pytest.raises(InvalidInput, match="spark or server"):
            _sql(orders, "db.t")
    finally:
        orders.spark.conf.unset("spark.lakeversion.rows.engine")
    with pytest.raises(RefNotFound, match="'nope'"):
        orders.sql("SHOW DIFF FROM main TO nope FOR TABLE db.t ROWS")
    with pytest.raises(KeyNotFound, match="db.none"):
        orders.sql("SHOW DIFF FROM main TO dev FOR TABLE db.none ROWS")
    # a table only on one side: the other reads nothing, with the same columns
    orders.sql("CREATE TABLE {lv}.db@dev.n (id INT, d DATE) USING iceberg")
    orders.sql("INSERT INTO {lv}.db@dev.n VALUES (1, DATE'2024-02-29'), (2, NULL)")
    cat = connect(orders.server.url)
    created, _ = _both(cat, orders.spark, "db.n")
    assert [r["change"] for r in created.to_pylist()] == ["insert", "insert"]
    orders.sql("DROP TABLE {lv}.db@dev.t")
    dropped, _ = _both(cat, orders.spark, "db.t")
    assert sorted(r["change"] for r in dropped.to_pylist()) == ["delete", "delete"]
    ref = cat.ref("main")
    with pytest.raises(InvalidInput, match="unknown row engine 'gpu'"):
        ref.diff_rows("dev", "db.t", engine="gpu")
    with pytest.raises(InvalidInput, match="pass spark="):
        ref.diff_rows("dev", "db.t", engine="spark")
    with pytest.raises(InvalidInput, match="unknown row engine"):
        connect(orders.server.url).store.plan_row_diff("main", "dev", "db.t", dialect="gpu")


def test_cli_engine_spark(orders: SparkLake) -> None:
    """`lakeversion diff --rows --engine spark` prints what the default engine prints."""
    orders.sql("CREATE BRANCH dev")
    orders.sql("DELETE FROM {lv}.db@dev.t WHERE id = 1")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    runner = CliRunner()
    args = ["--store", orders.server.url, "-o", "json", "diff", "main", "dev", "--table",
            "db.t", "--rows"]
    duck = runner.invoke(cli, args)
    on_spark = runner.invoke(cli, [*args, "--engine", "spark"])
    assert duck.exit_code == 0 and on_spark.exit_code == 0, (duck.output, on_spark.output)
    assert on_spark.output == duck.output
    assert '"change": "delete"' in duck.output
    bad = runner.invoke(cli, [*args, "--engine", "gpu"])
    assert bad.exit_code == 1 and "gpu" in bad.output and "Traceback" not in bad.output
    alone = runner.invoke(cli, ["--store", orders.server.url, "diff", "main", "dev",
                                "--engine", "spark"])
    assert alone.exit_code == 1 and "go with --rows" in alone.output
