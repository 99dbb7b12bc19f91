"""`SparkLake` (one test's server, catalog and SQL helpers) and runtime catalog registration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.checks.sql import connect as duckdb_connect
from spark_lakeversion.model import Key
from spark_lakeversion.server.embedded import EmbeddedServer
from tests.helpers import apply_changes

CATALOG_CLASS = "io.lakeversion.spark.LakeVersionCatalog"


@dataclass
class SparkLake:
    """One test's lakehouse: its server, its catalog name, and SQL helpers."""

    spark: Any
    server: EmbeddedServer
    catalog: str

    def sql(self, text: str) -> Any:
        return self.spark.sql(text.replace("{lv}", self.catalog))

    def rows(self, text: str) -> list[Any]:
        return self.sql(text).collect()

    def ids(self, table: str) -> list[int]:
        """Sorted `id`s of `{lv}.`-relative `table`, e.g. ``lake.ids("db@dev.t")``."""
        return [r[0] for r in self.rows(f"SELECT id FROM {{lv}}.{table} ORDER BY id")]


def register_catalog(spark: Any, name: str, url: str, **options: str) -> None:
    """Spark builds catalogs lazily from SQLConf, so a runtime registration is enough."""
    spark.conf.set(f"spark.sql.catalog.{name}", CATALOG_CLASS)
    spark.conf.set(f"spark.sql.catalog.{name}.uri", url)
    for key, value in options.items():
        spark.conf.set(f"spark.sql.catalog.{name}.{key}", value)
    spark.conf.set("spark.lakeversion.catalog", name)


# ---- the row merge's tables (tests/spark/test_row_merge_*.py) ------------------------

MODES = {
    "copy-on-write": "'write.delete.mode'='copy-on-write', 'write.update.mode'='copy-on-write'",
    "merge-on-read": "'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read'",
}
BASE = [(i, f"v{i}", i) for i in range(1, 9)]


def table(lake: SparkLake, mode: str, keyed: bool, partitioned: str = "") -> SparkLake:
    """`db.t (id, v, n)` with `BASE`'s rows, in one data file unless `partitioned` (a
    PARTITIONED BY list) splits them; branch `dev` from it."""
    lake.sql("CREATE NAMESPACE {lv}.db")
    spec = f"PARTITIONED BY ({partitioned}) " if partitioned else ""
    lake.sql("CREATE TABLE {lv}.db.t (id INT NOT NULL, v STRING, n INT) USING iceberg "
             f"{spec}TBLPROPERTIES ('format-version'='2', {MODES[mode]})")
    if keyed:
        lake.sql("ALTER TABLE {lv}.db.t SET IDENTIFIER FIELDS id")
    values = ", ".join(f"({i}, '{v}', {n})" for i, v, n in BASE)
    lake.sql(f"INSERT INTO {{lv}}.db.t VALUES {values}")
    lake.sql("CREATE BRANCH dev")
    return lake


def scanned(lake: SparkLake, ref: str = "main") -> list[tuple[Any, ...]]:
    """The rows at `ref` by Spark, pyiceberg and DuckDB, which must agree."""
    by_spark = sorted(tuple(r) for r in lake.rows(f"SELECT id, v, n FROM {{lv}}.`db@{ref}`.t"))
    catalog = RestCatalog("check", uri=lake.server.iceberg_uri, warehouse=ref)
    arrow = catalog.load_table(("db", "t")).scan().to_arrow()
    by_pyiceberg = sorted(zip(*(arrow.column(c).to_pylist() for c in ("id", "v", "n"))))
    content = lake.server.store.get_content(ref, Key.of("db.t"))
    assert content is not None
    location = str(content.fields["metadata_location"]).removeprefix("file://")
    con = duckdb_connect()
    try:
        by_duckdb = sorted(con.execute(
            f"SELECT id, v, n FROM iceberg_scan('{location}')").fetchall())
    finally:
        con.close()
    assert by_spark == by_pyiceberg == by_duckdb
    return by_spark


def expected(*changes: dict[int, tuple[int, str, int] | None]) -> list[tuple[Any, ...]]:
    """`BASE` with each change applied by id (None: deleted), sorted."""
    return apply_changes(BASE, *changes)
