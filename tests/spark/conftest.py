"""A fresh server and a freshly named LakeVersion catalog per test, on the shared session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.server.embedded import start_embedded_server
from tests.spark.helpers import SparkLake, register_catalog


@pytest.fixture
def lake(spark: Any, tmp_path: Path) -> Iterator[SparkLake]:
    server = start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "wh"))
    name = f"lv_{uuid.uuid4().hex[:8]}"
    register_catalog(spark, name, server.url)
    try:
        yield SparkLake(spark, server, name)
    finally:
        spark.conf.unset("spark.lakeversion.catalog")
        server.stop()


@pytest.fixture
def orders(lake: SparkLake) -> SparkLake:
    """`db.t (id INT, v STRING)` on main with ids 1 and 2."""
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.t (id INT, v STRING) USING iceberg")
    lake.sql("INSERT INTO {lv}.db.t VALUES (1, 'a'), (2, 'b')")
    return lake
