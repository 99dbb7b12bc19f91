"""Spark 3.5 with Iceberg's stock REST catalog (`type=rest`) against our server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture
def ice(spark: Any, tmp_path: Path) -> Iterator[tuple[Any, str, EmbeddedServer]]:
    """A fresh server and a fresh catalog name on the shared session (catalogs are cached
    per name by Spark, so each test gets its own)."""
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "warehouse")) as srv:
        name = f"ice_{uuid.uuid4().hex[:8]}"
        conf = f"spark.sql.catalog.{name}"
        spark.conf.set(conf, "org.apache.iceberg.spark.SparkCatalog")
        spark.conf.set(f"{conf}.type", "rest")
        spark.conf.set(f"{conf}.uri", srv.iceberg_uri)
        spark.conf.set(f"{conf}.cache-enabled", "false")
        spark.conf.set(f"{conf}.header.X-Lakeversion-Properties",
                       json.dumps({"spark.app.id": spark.sparkContext.applicationId}))
        yield spark, name, srv


def rows(spark: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in spark.sql(sql).collect()]


def test_spark_sql_through_the_rest_catalog(ice: tuple[Any, str, EmbeddedServer]) -> None:
    spark, c, srv = ice
    spark.sql(f"CREATE NAMESPACE {c}.db")
    spark.sql(f"CREATE TABLE {c}.db.t (id BIGINT, name STRING) USING iceberg")
    spark.sql(f"INSERT INTO {c}.db.t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    assert rows(spark, f"SELECT id, name FROM {c}.db.t ORDER BY id") == [
        (1, "a"), (2, "b"), (3, "c")]

    spark.sql(f"CREATE TABLE {c}.db.ctas USING iceberg AS SELECT id * 10 AS id FROM {c}.db.t")
    assert rows(spark, f"SELECT id FROM {c}.db.ctas ORDER BY id") == [(10,), (20,), (30,)]
    spark.sql(f"CREATE OR REPLACE TABLE {c}.db.ctas USING iceberg AS "
              f"SELECT id, name FROM {c}.db.t WHERE id > 1")
    assert rows(spark, f"SELECT id, name FROM {c}.db.ctas ORDER BY id") == [(2, "b"), (3, "c")]

    spark.sql(f"CREATE TABLE {c}.db.src (id BIGINT, name STRING) USING iceberg")
    spark.sql(f"INSERT INTO {c}.db.src VALUES (2, 'B'), (4, 'd')")
    spark.sql(f"""MERGE INTO {c}.db.t t USING {c}.db.src s ON t.id = s.id
                  WHEN MATCHED THEN UPDATE SET t.name = s.name
                  WHEN NOT MATCHED THEN INSERT *""")
    assert rows(spark, f"SELECT id, name FROM {c}.db.t ORDER BY id") == [
        (1, "a"), (2, "B"), (3, "c"), (4, "d")]
    spark.sql(f"UPDATE {c}.db.t SET name = 'z' WHERE id = 1")
    spark.sql(f"DELETE FROM {c}.db.t WHERE id = 3")
    spark.sql(f"ALTER TABLE {c}.db.t ADD COLUMN note STRING")
    spark.sql(f"INSERT INTO {c}.db.t VALUES (5, 'e', 'new')")
    assert rows(spark, f"SELECT id, name, note FROM {c}.db.t ORDER BY id") == [
        (1, "z", None), (2, "B", None), (4, "d", None), (5, "e", "new")]

    snapshots = rows(spark, f"SELECT operation FROM {c}.db.t.snapshots")
    assert len(snapshots) >= 5
    assert len(rows(spark, f"SELECT * FROM {c}.db.t.history")) == len(snapshots)

    # a branch: writes through `db@dev` stay there; metadata tables work on it too
    httpx.post(srv.api_url + "/refs", json={"name": "dev"}).raise_for_status()
    spark.sql(f"INSERT INTO {c}.`db@dev`.t VALUES (6, 'f', 'dev')")
    assert rows(spark, f"SELECT count(*) FROM {c}.`db@dev`.t") == [(5,)]
    assert rows(spark, f"SELECT count(*) FROM {c}.db.t") == [(4,)]
    dev_snaps = rows(spark, f"SELECT snapshot_id FROM {c}.`db@dev`.t.snapshots")
    assert len(dev_snaps) == len(snapshots) + 1
    assert len(rows(spark, f"SELECT * FROM {c}.`db@dev`.t.history")) == len(dev_snaps)
    assert sorted(r[1] for r in rows(spark, f"SHOW TABLES IN {c}.db")) == ["ctas", "src", "t"]

    # the `warehouse` catalog property selects the ref (served as the URL prefix)
    dev_catalog = f"{c}_dev"
    for prop, value in [("", "org.apache.iceberg.spark.SparkCatalog"), (".type", "rest"),
                        (".uri", srv.iceberg_uri), (".cache-enabled", "false"),
                        (".warehouse", "dev"), (".header.X-Lakeversion-Spark-App-Id",
                                               spark.sparkContext.applicationId)]:
        spark.conf.set(f"spark.sql.catalog.{dev_catalog}{prop}", value)
    assert rows(spark, f"SELECT count(*) FROM {dev_catalog}.db.t") == [(5,)]
    spark.sql(f"INSERT INTO {dev_catalog}.db.t VALUES (7, 'g', 'dev')")
    assert rows(spark, f"SELECT count(*) FROM {c}.`db@dev`.t") == [(6,)]
    assert rows(spark, f"SELECT count(*) FROM {c}.db.t") == [(4,)]

    # every Spark commit is a store commit carrying the application id from the header
    log = httpx.get(srv.api_url + "/log", params={"ref": "dev", "limit": 1}).json()
    head = log["commits"][0]
    assert head["properties"]["iceberg.table"] == "db.t"
    assert head["properties"]["spark.app.id"] == spark.sparkContext.applicationId
