"""Spark SQL on Delta tables, with the stock Iceberg runtime and no Delta jar: the
catalog serves each Delta table as Iceberg metadata, at every ref."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.api import connect
from tests.formats.delta.helpers import ID_P_V_ARROW, data, independent_rows
from tests.spark.helpers import SparkLake

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_spark_selects_a_delta_table_on_branches_tags_and_history(lake: SparkLake,
                                                                  tmp_path: Path) -> None:
    with connect(lake.server.url, warehouse=str(tmp_path / "wh")) as catalog:
        events = catalog.branch("main").delta("db.events")
        events.create(ID_P_V_ARROW, partition_by=["p"])
        events.append(data((1, "a", 10), (2, "b", 20)))
        catalog.tag("v1").create("main")
        catalog.branch("dev").create("main")
        dev = catalog.branch("dev").delta("db.events")
        dev.append(data((3, "a", 30)))
        dev.delete("id = 1")
        plain = catalog.branch("dev").delta("db.plain")
        plain.create(ID_P_V_ARROW)
        plain.append(data((9, "z", 90)))
    assert lake.rows("SELECT id, p, v FROM {lv}.db@dev.events ORDER BY id") == \
        [(2, "b", 20), (3, "a", 30)]
    assert lake.ids("db.events") == [1, 2]
    assert lake.ids("db@v1.events") == [1, 2]
    assert lake.ids("`db@dev~3`.events") == [1, 2, 3]  # before the delete
    assert lake.rows("SELECT id, p, v FROM {lv}.db@dev.plain") == [(9, "z", 90)]
    # a filter on the partition column reads that partition's values from the manifests
    assert lake.rows("SELECT id FROM {lv}.db@dev.events WHERE p = 'a'") == [(3,)]
    names = {r.tableName for r in lake.rows("SHOW TABLES IN {lv}.db@dev")}
    assert names == {"events", "plain"}


def _delta_rows(catalog: Any, ref: str) -> list[tuple[Any, ...]]:
    got = catalog.ref(ref).delta("db.events").to_arrow()
    return sorted(zip(*(got.column(c).to_pylist() for c in ("id", "p", "v"))))


def _spark_rows(lake: SparkLake, table: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in lake.rows(f"SELECT id, p, v FROM {{lv}}.{table}"))


def test_spark_writes_to_a_delta_table_on_a_branch_land_in_its_delta_log(
        lake: SparkLake, tmp_path: Path) -> None:
    with connect(lake.server.url, warehouse=str(tmp_path / "wh")) as catalog:
        events = catalog.branch("main").delta("db.events")
        events.create(ID_P_V_ARROW, partition_by=["p"])
        events.append(data((1, "a", 10), (2, "b", 20)))
        catalog.branch("dev").create("main")
        main_rows = _delta_rows(catalog, "main")
        steps = [
            "INSERT INTO {lv}.db@dev.events VALUES (3, 'a', 30), (4, 'c', 40)",
            "DELETE FROM {lv}.db@dev.events WHERE id = 1",
            "UPDATE {lv}.db@dev.events SET v = v + 1 WHERE p = 'b'",
            "MERGE INTO {lv}.db@dev.events t USING (SELECT 4 AS id, 'c' AS p, 400 AS v "
            "UNION ALL SELECT 5, 'a', 50) s ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *",
            "INSERT OVERWRITE {lv}.db@dev.events SELECT id, p, v * 2 FROM "
            "{lv}.db@dev.events WHERE p = 'a'",
        ]
        for step in steps:
            lake.sql(step)
            spark_rows = _spark_rows(lake, "db@dev.events")
            assert _delta_rows(catalog, "dev") == spark_rows, step
            # an independent reader of the log (DuckDB) agrees
            state = catalog.ref("dev").delta("db.events").state()
            assert independent_rows(state) == spark_rows, step
            assert _delta_rows(catalog, "main") == main_rows, step
        # a static INSERT OVERWRITE replaced the whole table with the rows of p = 'a'
        assert spark_rows == [(3, "a", 60), (5, "a", 100)]
        # deltalake writes next on the same branch: one history for both writers
        catalog.branch("dev").delta("db.events").append(data((6, "d", 60)))
        assert (6, "d", 60) in _spark_rows(lake, "db@dev.events")
        lake.sql("INSERT INTO {lv}.db@dev.events VALUES (7, 'd', 70)")
        assert _delta_rows(catalog, "dev") == _spark_rows(lake, "db@dev.events")
        lake.sql("ALTER TABLE {lv}.db@dev.events ADD COLUMN note STRING")
        lake.sql("INSERT INTO {lv}.db@dev.events VALUES (8, 'd', 80, 'hi')")
        got = catalog.ref("dev").delta("db.events").to_arrow()
        assert dict(zip(got["id"].to_pylist(), got["note"].to_pylist()))[8] == "hi"
        assert lake.rows("SELECT note FROM {lv}.db@dev.events WHERE id = 8") == [("hi",)]
        lake.sql("MERGE BRANCH dev INTO main")
        assert _delta_rows(catalog, "main") == _spark_rows(lake, "db.events") == \
            _delta_rows(catalog, "dev")
        assert lake.rows("SELECT note FROM {lv}.db.events WHERE id = 8") == [("hi",)]


def test_create_table_using_delta_then_rollback_table(lake: SparkLake) -> None:
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE BRANCH dev")
    lake.sql("CREATE TABLE {lv}.db@dev.made (id INT, p STRING) USING delta PARTITIONED BY (p)")
    lake.sql("INSERT INTO {lv}.db@dev.made VALUES (1, 'a'), (2, 'b')")
    lake.sql("INSERT INTO {lv}.db@dev.made VALUES (3, 'a')")
    with connect(lake.server.url) as catalog:
        handle = catalog.ref("dev").delta("db.made")
        assert handle.table.metadata().partition_columns == ["p"]
        assert sorted(r["id"] for r in handle.to_arrow().to_pylist()) == [1, 2, 3]
        assert catalog.ref("main").tables() == {}  # created on dev only
        lake.sql("ROLLBACK TABLE db.made TO dev~1 ON BRANCH dev")
        assert lake.ids("db@dev.made") == [1, 2]
        assert sorted(r["id"] for r in catalog.ref("dev").delta("db.made").to_arrow()
                      .to_pylist()) == [1, 2]
    with pytest.raises(Exception, match="USING delta AS SELECT"):
        lake.sql("CREATE TABLE {lv}.db@dev.copy USING delta AS SELECT * FROM {lv}.db@dev.made")
