"""A fresh server and a freshly named LakeVersion catalog per test, on the shared session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server

CATALOG_CLASS = "io.lakeversion.spark.LakeVersionCatalog"


@dataclass
class Lake:
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


@pytest.fixture
def lake(spark: Any, tmp_path: Path) -> Iterator[Lake]:
    server = start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "wh"))
    name = f"lv_{uuid.uuid4().hex[:8]}"
    register_catalog(spark, name, server.url)
    try:
        yield Lake(spark, server, name)
    finally:
        spark.conf.unset("spark.lakeversion.catalog")
        server.stop()


@pytest.fixture
def orders(lake: Lake) -> Lake:
    """`db.t (id INT, v STRING)` on main with ids 1 and 2."""
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.t (id INT, v STRING) USING iceberg")
    lake.sql("INSERT INTO {lv}.db.t VALUES (1, 'a'), (2, 'b')")
    return lake
