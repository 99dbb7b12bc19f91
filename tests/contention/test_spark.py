"""Spark (Iceberg's Java REST client) and pyiceberg appending to one table at once, with
every client's own retries off: the server rebases whoever lost the race, and Spark,
pyiceberg and DuckDB read every row once. Two Spark writers on a format-v3 table: the
rebase reassigns row lineage (first-row-id), so row ids stay unique."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pytest
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.server.embedded import EmbeddedServer
from tests.contention.helpers import duckdb_ids, served
from tests.spark.helpers import SparkLake, register_catalog

NO_RETRY_SQL = "'commit.retry.num-retries'='0'"


@pytest.fixture
def lake(spark: Any, tmp_path: Path) -> Iterator[SparkLake]:
    with served(tmp_path) as server:
        name = f"lv_{uuid.uuid4().hex[:8]}"
        register_catalog(spark, name, server.url)
        try:
            yield SparkLake(spark, server, name)
        finally:
            spark.conf.unset("spark.lakeversion.catalog")


def _run_all(jobs: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return errors


def _table(server: EmbeddedServer) -> Any:
    return RestCatalog("check", uri=server.iceberg_uri).load_table("db.t")


def test_spark_and_pyiceberg_writers_on_one_table(lake: SparkLake) -> None:
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql(f"CREATE TABLE {{lv}}.db.t (id BIGINT) USING iceberg TBLPROPERTIES ({NO_RETRY_SQL})")

    def spark_writer() -> None:
        for i in range(5):
            lake.sql(f"INSERT INTO {{lv}}.db.t VALUES ({1000 + i})")

    def pyiceberg_writer(w: int) -> Callable[[], None]:
        def write() -> None:
            table = _table(lake.server)
            for i in range(5):
                table.append(pa.table({"id": pa.array([w * 100 + i], pa.int64())}))
        return write

    assert _run_all([spark_writer, pyiceberg_writer(1), pyiceberg_writer(2)]) == []
    expected = sorted([1000 + i for i in range(5)] + [w * 100 + i for w in (1, 2)
                                                      for i in range(5)])
    assert lake.ids("db.t") == expected
    table = _table(lake.server)
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == expected
    assert duckdb_ids(table.metadata_location) == expected
    snapshots = table.metadata.snapshots
    assert len(snapshots) == 15
    assert [s.parent_snapshot_id for s in snapshots[1:]] == \
        [s.snapshot_id for s in snapshots[:-1]]


def test_two_spark_writers_on_a_v3_table_keep_row_lineage(lake: SparkLake) -> None:
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.t (id BIGINT) USING iceberg "
             f"TBLPROPERTIES ('format-version'='3', {NO_RETRY_SQL})")

    def writer(w: int) -> Callable[[], None]:
        def write() -> None:
            for i in range(4):
                lake.sql(f"INSERT INTO {{lv}}.db.t VALUES ({w * 100 + 2 * i}), "
                         f"({w * 100 + 2 * i + 1})")
        return write

    assert _run_all([writer(1), writer(2)]) == []
    expected = sorted(w * 100 + j for w in (1, 2) for j in range(8))
    assert lake.ids("db.t") == expected
    row_ids = [r[0] for r in lake.rows("SELECT _row_id FROM {lv}.db.t")]
    assert sorted(row_ids) == list(range(16))  # unique, none reused
    location = _table(lake.server).metadata_location
    written = json.loads(Path(urlparse(location).path).read_text())
    lineage = [(s["first-row-id"], s["added-rows"]) for s in written["snapshots"]]
    assert [first for first, _ in lineage] == [2 * n for n in range(8)]
    assert written["next-row-id"] == 16
    assert duckdb_ids(location) == expected


def test_a_stale_spark_append_to_a_v3_table_gets_fresh_row_ids(lake: SparkLake) -> None:
    """Deterministic: Spark's own v3 append made on a branch from snapshot S1 is sent to
    main, whose head moved to S2: the server rebases it, its rows get the next row ids."""
    import httpx

    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.t (id BIGINT) USING iceberg "
             "TBLPROPERTIES ('format-version'='3')")
    lake.sql("INSERT INTO {lv}.db.t VALUES (1), (2)")
    lake.sql("CREATE BRANCH dev")
    lake.sql("INSERT INTO {lv}.db@dev.t VALUES (5), (6)")  # Spark's append on S1
    lake.sql("INSERT INTO {lv}.db.t VALUES (3), (4)")  # main moves on to S2
    dev = RestCatalog("dev", uri=lake.server.iceberg_uri, warehouse="dev").load_table("db.t")
    raw = json.loads(Path(urlparse(dev.metadata_location).path).read_text())
    appended = next(s for s in raw["snapshots"] if s["snapshot-id"] == raw["current-snapshot-id"])
    main = _table(lake.server)
    body = {"requirements": [
        {"type": "assert-table-uuid", "uuid": str(main.metadata.table_uuid)},
        {"type": "assert-ref-snapshot-id", "ref": "main",
         "snapshot-id": appended["parent-snapshot-id"]}],
        "updates": [{"action": "add-snapshot", "snapshot": appended},
                    {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch",
                     "snapshot-id": appended["snapshot-id"]}]}
    r = httpx.post(f"{lake.server.iceberg_uri}/v1/main/namespaces/db/tables/t", json=body,
                   timeout=60)
    assert r.status_code == 200, r.text
    snap = r.json()["metadata"]["snapshots"][-1]
    assert (snap["snapshot-id"], snap["first-row-id"], snap["added-rows"]) == \
        (appended["snapshot-id"], 4, 2)  # was 2: rows 2 and 3 are S2's
    assert r.json()["metadata"]["next-row-id"] == 6
    rows = lake.rows("SELECT id, _row_id FROM {lv}.db.t ORDER BY id")
    assert [(x.id, x._row_id) for x in rows] == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4), (6, 5)]
    assert duckdb_ids(_table(lake.server).metadata_location) == [1, 2, 3, 4, 5, 6]
