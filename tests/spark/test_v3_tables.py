"""Format-v3 tables written by Spark (Iceberg 1.10) on branches: deletion vectors from
merge-on-read deletes, row lineage, default values, table-level merge and rollback, and a
pyiceberg read of what Spark wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.table import Table
from pyiceberg.types import IntegerType

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.gc.collect import compute_reachability
from tests.spark.helpers import SparkLake

V3_MOR = ("'format-version'='3', 'write.delete.mode'='merge-on-read', "
          "'write.update.mode'='merge-on-read'")


def _table(lake: SparkLake, ref: str) -> Table:
    return RestCatalog("check", uri=lake.server.iceberg_uri, warehouse=ref).load_table("db.t")


def _pyiceberg_ids(lake: SparkLake, ref: str) -> list[int]:
    return sorted(_table(lake, ref).scan().to_arrow().column("id").to_pylist())


def _metadata_file(lake: SparkLake, ref: str) -> dict[str, Any]:
    location = _table(lake, ref).metadata_location
    return json.loads(Path(urlparse(location).path).read_text())  # type: ignore[no-any-return]


def test_v3_table_with_deletion_vectors_on_a_branch(lake: SparkLake) -> None:
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql(f"CREATE TABLE {{lv}}.db.t (id INT, v STRING) USING iceberg TBLPROPERTIES ({V3_MOR})")
    lake.sql("INSERT INTO {lv}.db.t SELECT /*+ REPARTITION(1) */ CAST(id AS INT), 'x' "
             "FROM range(10)")
    written = _metadata_file(lake, "main")
    assert (written["format-version"], written["next-row-id"]) == (3, 10)
    assert [(s["first-row-id"], s["added-rows"]) for s in written["snapshots"]] == [(0, 10)]

    lake.sql("CREATE BRANCH dev")
    lake.sql("DELETE FROM {lv}.db@dev.t WHERE id IN (3, 4)")
    deletes = lake.rows("SELECT file_format, record_count FROM {lv}.`db@dev`.t.delete_files")
    assert [(r.file_format, r.record_count) for r in deletes] == [("PUFFIN", 2)]
    assert lake.ids("db@dev.t") == [0, 1, 2, 5, 6, 7, 8, 9]
    assert lake.ids("db.t") == list(range(10))  # main untouched
    # row lineage: ids inherited from the data file's first-row-id
    lineage = lake.rows("SELECT id, _row_id FROM {lv}.db@dev.t ORDER BY id")
    assert [(r.id, r._row_id) for r in lineage] == [(i, i) for i in (0, 1, 2, 5, 6, 7, 8, 9)]
    # pyiceberg applies the deletion vector Spark wrote
    assert _pyiceberg_ids(lake, "dev") == [0, 1, 2, 5, 6, 7, 8, 9]

    # a default value (v3): added by pyiceberg on dev, read by Spark for the old rows
    table = _table(lake, "dev")
    with table.update_schema() as update:
        update.add_column("c", IntegerType(), default_value=7)
    assert {r.c for r in lake.rows("SELECT c FROM {lv}.db@dev.t")} == {7}
    assert [f.name for f in _table(lake, "main").schema().fields] == ["id", "v"]

    # main moves too: both sides changed the v3 table, so no content-aware replay
    lake.sql("INSERT INTO {lv}.db.t VALUES (100, 'main')")
    dry = lake.rows("MERGE BRANCH dev INTO main DRY RUN")
    assert [(r.table, r.conflict_type) for r in dry] == [("db.t", "UNSUPPORTED")]
    assert "format-v3" in dry[0].message and "row ids" in dry[0].message
    with pytest.raises(ConflictError):
        lake.sql("MERGE BRANCH dev INTO main")
    # merge at table level: the source's table as it is
    lake.sql("MERGE BRANCH dev INTO main USING STRATEGY source_wins")
    assert lake.ids("db.t") == [0, 1, 2, 5, 6, 7, 8, 9]
    assert _pyiceberg_ids(lake, "main") == [0, 1, 2, 5, 6, 7, 8, 9]
    assert {r.c for r in lake.rows("SELECT c FROM {lv}.db.t")} == {7}

    # roll the table back on main to before the merge
    lake.sql("ROLLBACK TABLE db.t TO main~1")
    assert lake.ids("db.t") == [*range(10), 100]
    assert _pyiceberg_ids(lake, "main") == [*range(10), 100]
    # and keep writing v3 on top of the rolled-back state
    lake.sql("DELETE FROM {lv}.db.t WHERE id = 0")
    assert lake.ids("db.t") == [*range(1, 10), 100]
    assert _metadata_file(lake, "main")["format-version"] == 3

    # gc reaches every deletion vector (Puffin) and data file the refs and history hold
    reach, _, _ = compute_reachability(lake.server.store, roots=[lake.server.warehouse])
    assert reach.unreadable_tables() == {}
    warehouse = Path(urlparse(lake.server.warehouse).path)
    puffins = {p.name for p in warehouse.rglob("*.puffin")}
    assert len(puffins) == 2  # the delete on dev, the delete on main after the rollback
    reached = {Path(urlparse(f).path).name for f in reach.reachable}
    assert puffins | {p.name for p in warehouse.rglob("*.parquet")} <= reached


def test_ctas_and_upgrade_to_v3_from_spark(lake: SparkLake) -> None:
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE BRANCH dev")
    lake.sql("CREATE TABLE {lv}.db@dev.t USING iceberg TBLPROPERTIES ('format-version'='3') "
             "AS SELECT CAST(id AS INT) AS id FROM range(4)")
    assert lake.ids("db@dev.t") == [0, 1, 2, 3]
    assert _metadata_file(lake, "dev")["next-row-id"] == 4
    lake.sql("CREATE TABLE {lv}.db.u (id INT) USING iceberg TBLPROPERTIES ('format-version'='2')")
    lake.sql("INSERT INTO {lv}.db.u VALUES (1), (2)")
    lake.sql("ALTER TABLE {lv}.db.u SET TBLPROPERTIES ('format-version'='3')")
    lake.sql("INSERT INTO {lv}.db.u VALUES (3)")
    assert lake.ids("db.u") == [1, 2, 3]
    upgraded = RestCatalog("check", uri=lake.server.iceberg_uri).load_table("db.u").metadata
    # the first v3 snapshot gives row ids to the rows written before the upgrade too
    assert (upgraded.format_version, upgraded.next_row_id) == (3, 3)
    assert sorted(r._row_id for r in lake.rows("SELECT _row_id FROM {lv}.db.u")) == [0, 1, 2]
    assert not RestCatalog("check", uri=lake.server.iceberg_uri).table_exists("db.t")
