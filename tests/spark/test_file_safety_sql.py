"""Issue 9 through Spark SQL: unsafe locations and names are typed errors, and no file
outside the server's allowed roots, nor any existing file, is written or deleted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from spark_lakeversion.errors import InvalidInput, LakeVersionError, LocationNotAllowed
from spark_lakeversion.locations import OUTSIDE_ROOTS, OVERLAPS
from tests.spark.helpers import SparkLake


def listing(*dirs: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    (path / "metadata").mkdir(parents=True)
    (path / "file.txt").write_text("old file\n")
    (path / "metadata" / "00000-old.metadata.json").write_text("{}\n")
    return path


def test_spark_sql_cannot_place_files_outside_the_allowed_roots(
        orders: SparkLake, victim: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh"
    store = orders.server.store
    heads = {r.name: r.head for r in store.list_refs()}
    before = listing(warehouse, victim)
    cases: list[tuple[str, type[LakeVersionError], str]] = [
        (f"CREATE TABLE {{lv}}.db.x (id INT) USING iceberg LOCATION 'file://{victim}/x'",
         LocationNotAllowed, OUTSIDE_ROOTS),
        (f"ALTER TABLE {{lv}}.db.t SET LOCATION 'file://{victim}/t'",
         LocationNotAllowed, OUTSIDE_ROOTS),
        (f"ALTER TABLE {{lv}}.db.t SET TBLPROPERTIES ('write.metadata.path'="
         f"'file://{victim}/file.txt?')", InvalidInput, "may not contain"),
        (f"ALTER TABLE {{lv}}.db.t SET TBLPROPERTIES ('write.data.path'='file://{victim}/d')",
         LocationNotAllowed, OUTSIDE_ROOTS),
        ("CREATE TABLE {lv}.db.`a#b` (id INT) USING iceberg", InvalidInput, "table name"),
        ("CREATE NAMESPACE {lv}.`a..`.`..`", InvalidInput, "namespace level"),
    ]
    for statement, error, says in cases:
        with pytest.raises(error, match=says):
            orders.sql(statement).collect()
    assert listing(warehouse, victim) == before
    assert {r.name: r.head for r in store.list_refs()} == heads
    assert orders.ids("db.t") == [1, 2]


def test_spark_sql_cannot_reuse_another_tables_location(orders: SparkLake) -> None:
    location = orders.rows("DESCRIBE TABLE EXTENDED {lv}.db.t")
    table_dir = next(r[1] for r in location if r[0] == "Location")
    with pytest.raises(LocationNotAllowed, match=OVERLAPS):
        orders.sql(f"CREATE TABLE {{lv}}.db.y (id INT) USING iceberg LOCATION "
                   f"'{table_dir}/nested'").collect()
    orders.sql("CREATE TABLE {lv}.db.`tábla_ü` (id INT) USING iceberg")  # Unicode is fine
    orders.sql("INSERT INTO {lv}.db.`tábla_ü` VALUES (5)")
    assert orders.ids("db.`tábla_ü`") == [5]
