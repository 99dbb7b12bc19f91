"""A fresh server and a freshly named LakeVersion catalog per test, on the shared session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.limits import Limits
from spark_lakeversion.server.embedded import start_embedded_server
from tests.spark.helpers import SparkLake, register_catalog


@contextmanager
def serve(spark: Any, directory: Path, limits: Limits | None = None) -> Iterator[SparkLake]:
    """A server over a store and warehouse in `directory`, and a catalog on it."""
    directory.mkdir(parents=True, exist_ok=True)
    server = start_embedded_server(f"sqlite:///{directory / 'store.db'}", str(directory / "wh"),
                                   limits=limits)
    name = f"lv_{uuid.uuid4().hex[:8]}"
    register_catalog(spark, name, server.url)
    try:
        yield SparkLake(spark, server, name)
    finally:
        spark.conf.unset("spark.lakeversion.catalog")
        server.stop()


@pytest.fixture
def lake(spark: Any, tmp_path: Path) -> Iterator[SparkLake]:
    with serve(spark, tmp_path) as lake:
        yield lake


@pytest.fixture
def small(spark: Any, tmp_path: Path) -> Iterator[SparkLake]:
    """A server whose row merges never run in it (a 1-byte row limit): Spark runs them
    (`tests/spark/test_row_merge_spark_engine.py`)."""
    with serve(spark, tmp_path / "small", Limits(max_row_merge_bytes=1)) as lake:
        yield lake


@pytest.fixture
def orders(lake: SparkLake) -> SparkLake:
    """`db.t (id INT, v STRING)` on main with ids 1 and 2."""
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.t (id INT, v STRING) USING iceberg")
    lake.sql("INSERT INTO {lv}.db.t VALUES (1, 'a'), (2, 'b')")
    return lake
