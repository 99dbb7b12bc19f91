"""Spark on S3: the run's one SparkSession gets a second catalog (as `session()` configures
it) over a server whose warehouse is on moto; Iceberg's S3FileIO writes the data files with
the credentials the server vends, Spark has no S3 settings of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.server.embedded import EmbeddedServer
from spark_lakeversion.spark import configure
from tests.s3.helpers import MotoS3
from tests.spark.helpers import SparkLake

pytestmark = pytest.mark.spark


class _Builder:
    """Collects what `configure()` would set on a `SparkSession.builder`."""

    def __init__(self) -> None:
        self._options: dict[str, str] = {}

    def config(self, key: str, value: str) -> _Builder:
        self._options[key] = value
        return self


@pytest.fixture
def s3_spark(spark: Any, moto_s3: MotoS3, tmp_path: Path) -> Iterator[SparkLake]:
    """`configure(warehouse="s3://...", io=...)` as `session()` calls it; its catalog
    settings are applied to the shared session (the jars are on it from the start)."""
    bucket = moto_s3.bucket()
    name = f"lv_s3_{uuid.uuid4().hex[:8]}"
    builder = configure(_Builder(), store=f"sqlite:///{tmp_path / 'store.db'}",
                        warehouse=f"s3://{bucket}/wh", catalog=name, io=moto_s3.io())
    options = builder._options
    jars = options["spark.jars"]
    assert "s3-2.29.26.jar" in jars and "iceberg-spark-runtime" in jars
    assert options[f"spark.sql.catalog.{name}.header.X-Iceberg-Access-Delegation"] == \
        "vended-credentials"
    assert not any("s3." in key or "secret" in value for key, value in options.items())
    from spark_lakeversion.server import embedded

    # the server configure() started (stopped at exit; this fixture stops it sooner)
    server: EmbeddedServer = embedded._at_exit[-1]
    for key, value in options.items():
        if key.startswith(f"spark.sql.catalog.{name}"):
            spark.conf.set(key, value)
    spark.conf.set("spark.lakeversion.catalog", name)
    lake = SparkLake(spark, server, name)
    lake.bucket = bucket  # type: ignore[attr-defined]
    try:
        yield lake
    finally:
        spark.conf.unset("spark.lakeversion.catalog")
        server.stop()


def test_spark_writes_and_reads_s3_tables_on_branches(s3_spark: SparkLake, moto_s3: MotoS3) -> None:
    lake = s3_spark
    bucket = lake.bucket  # type: ignore[attr-defined]
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.t (id INT, v STRING) USING iceberg")
    lake.sql("INSERT INTO {lv}.db.t VALUES (1, 'a'), (2, 'b')")
    assert lake.ids("db.t") == [1, 2]
    keys = moto_s3.keys(bucket, "wh/db/")
    assert any(k.endswith(".parquet") and "/data/" in k for k in keys)
    assert any(k.endswith(".metadata.json") for k in keys)
    lake.sql("CREATE TAG before")
    lake.sql("CREATE BRANCH dev")
    lake.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    lake.sql("UPDATE {lv}.db@dev.t SET v = 'z' WHERE id = 3")
    assert lake.ids("db@dev.t") == [1, 2, 3]
    assert lake.ids("db.t") == [1, 2]
    lake.sql("INSERT INTO {lv}.db.t VALUES (4, 'd')")
    # both sides appended: the server replays dev's change, writing its manifests on S3
    [row] = lake.rows("MERGE BRANCH dev INTO main")
    assert row.action == "REPLAYED"
    assert lake.ids("db.t") == [1, 2, 3, 4]
    # pyiceberg reads what Spark wrote, with vended credentials only
    from pyiceberg.catalog.rest import RestCatalog

    table = RestCatalog("check", uri=lake.server.iceberg_uri).load_table("db.t")
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == [1, 2, 3, 4]
    lake.sql("ROLLBACK TABLE db.t TO before")
    assert lake.ids("db.t") == [1, 2]
    assert lake.ids("db@dev.t") == [1, 2, 3]


@pytest.mark.slow
def test_spark_inserts_into_a_delta_table_on_s3(s3_spark: SparkLake, moto_s3: MotoS3) -> None:
    """Spark's INSERT through the Iceberg facade into a Delta table on S3: each a Delta
    version on the bucket, read back by deltalake, DuckDB's `delta_scan` and pyiceberg."""
    from deltalake import DeltaTable
    from pyiceberg.catalog.rest import RestCatalog

    from spark_lakeversion.api import connect
    from spark_lakeversion.fileio import FileIOConfig
    from spark_lakeversion.formats.delta.content import DeltaState
    from tests.formats.delta.helpers import DeltaLake, sorted_rows

    lake = s3_spark
    bucket = lake.bucket  # type: ignore[attr-defined]
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.events (id BIGINT, p STRING, v BIGINT) USING delta "
             "PARTITIONED BY (p)")
    lake.sql("INSERT INTO {lv}.db.events VALUES (1, 'a', 10), (2, 'b', 20)")
    lake.sql("INSERT INTO {lv}.db.events VALUES (3, 'a', 30)")
    expected = [(1, "a", 10), (2, "b", 20), (3, "a", 30)]
    assert sorted(lake.rows("SELECT id, p, v FROM {lv}.db.events")) == expected
    with connect(lake.server.url, warehouse=f"s3://{bucket}/wh") as catalog:
        state = DeltaState.of(catalog.ref("main").table("db.events"))
        reader = DeltaLake(catalog, FileIOConfig(moto_s3.io()), "")
        assert state.location.startswith(f"s3://{bucket}/wh/db/events")
        assert state.version == 2  # created, then one version per INSERT
        plain = DeltaTable(state.location, version=state.version,
                           storage_options=reader.storage_options(state.location))
        assert sorted_rows(plain.to_pyarrow_table(columns=["id", "p", "v"])) == expected
        con = reader.duckdb()
        try:
            assert sorted(con.execute(f"SELECT id, p, v FROM delta_scan('{state.location}')")
                          .fetchall()) == expected
        finally:
            con.close()
    table = RestCatalog("check", uri=lake.server.iceberg_uri).load_table("db.events")
    assert sorted_rows(table.scan().to_arrow().select(["id", "p", "v"])) == expected
    key = state.location[len(f"s3://{bucket}/"):]
    keys = moto_s3.keys(bucket, key + "/")
    # the files the log names are the table's objects on the bucket, under its root
    assert {f"s3://{bucket}/{k}" for k in keys if k.endswith(".parquet")} == \
        set(plain.file_uris())
    assert sum(k.startswith(key + "/_delta_log/") and k.endswith(".json") for k in keys) == 3
