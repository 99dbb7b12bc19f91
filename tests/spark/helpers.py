"""`SparkLake` (one test's server, catalog and SQL helpers) and runtime catalog registration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spark_lakeversion.server.embedded import EmbeddedServer

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
