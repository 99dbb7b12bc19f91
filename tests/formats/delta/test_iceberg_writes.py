"""Iceberg writes into a Delta table, on local files and on S3 (moto): pyiceberg appends and
overwrites through the server's Iceberg REST catalog become versions of the table's Delta
log, written with the server's FileIO; deltalake, DuckDB's `delta_scan` and pyiceberg read
back exactly the rows written, and the data files lie under the table's root."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from deltalake import DeltaTable
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.formats.delta.log import log_files
from spark_lakeversion.gc import collect_garbage
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.formats.delta.helpers import ID_P_V_ARROW, DeltaLake, data, rows, sorted_rows

Rows = list[tuple[Any, ...]]


@pytest.fixture
def server(lake: DeltaLake) -> Iterator[EmbeddedServer]:
    """A server over the lake's store and warehouse, with its FileIO (moto's for S3)."""
    with start_embedded_server(lake.store_url, lake.catalog.warehouse,
                               io=dict(lake.io)) as srv:
        yield srv


def iceberg_rows(server: EmbeddedServer, table: str) -> Rows:
    """What a stock pyiceberg client reads (credentials vended on S3, nothing of its own)."""
    got = RestCatalog("reader", uri=server.iceberg_uri).load_table(table).scan().to_arrow()
    return sorted_rows(got.select(["id", "p", "v"]))


def deltalake_rows(lake: DeltaLake, location: str, version: int) -> Rows:
    plain = DeltaTable(location, version=version,
                       storage_options=lake.storage_options(location))
    return sorted_rows(plain.to_pyarrow_table(columns=["id", "p", "v"]))


def duckdb_rows(lake: DeltaLake, location: str) -> Rows:
    con = lake.duckdb()
    try:
        return sorted(con.execute(f"SELECT id, p, v FROM delta_scan('{location}')").fetchall())
    finally:
        con.close()


def every_reader(lake: DeltaLake, server: EmbeddedServer, expected: Rows) -> None:
    """main's `db.events` holds exactly `expected` for every reader."""
    handle = lake.catalog.branch("main").delta("db.events")
    state = handle.state()
    assert rows(handle) == expected
    assert deltalake_rows(lake, state.location, state.version) == expected
    assert duckdb_rows(lake, state.location) == expected
    assert iceberg_rows(server, "db.events") == expected


def test_pyiceberg_appends_and_overwrites_land_in_the_delta_log(
        lake: DeltaLake, server: EmbeddedServer) -> None:
    events = lake.catalog.branch("main").delta("db.events")
    events.create(ID_P_V_ARROW, partition_by=["p"])
    events.append(data((1, "a", 10)))
    version = events.version
    writer = RestCatalog("writer", uri=server.iceberg_uri)
    writer.load_table("db.events").append(data((2, "a", 20), (3, "b", 30)))
    assert events.version == version + 1
    assert events.history()[0]["operation"] == "WRITE"
    expected = [(1, "a", 10), (2, "a", 20), (3, "b", 30)]
    every_reader(lake, server, expected)
    # each data file pyiceberg wrote lies under the table's root, in its storage
    root = events.state().location.rstrip("/")
    files = DeltaTable(root, storage_options=lake.storage_options(root)).file_uris()
    under = root.removeprefix("file://") + "/"  # deltalake answers local files as paths
    assert len(files) == 3 and all(f.removeprefix("file://").startswith(under) for f in files)
    assert root.startswith("file://" if lake.local else "s3://")
    # a second append, then an overwrite by filter (copy-on-write: one Delta version)
    writer.load_table("db.events").append(data((4, "c", 40)))
    writer.load_table("db.events").overwrite(data((9, "a", 90)), "p = 'a'")
    assert events.version == version + 3
    every_reader(lake, server, [(3, "b", 30), (4, "c", 40), (9, "a", 90)])
    # and deltalake writes after Iceberg's: one history
    events.append(data((5, "b", 50)))
    final = [(3, "b", 30), (4, "c", 40), (5, "b", 50), (9, "a", 90)]
    every_reader(lake, server, final)
    # gc, as if three days had passed, keeps every file main's state reads (the ones
    # pyiceberg wrote included) and collects the files the overwrite replaced
    live = set(DeltaTable(root, storage_options=lake.storage_options(root)).file_uris())
    report = collect_garbage(lake.catalog.store, roots=[lake.catalog.warehouse],
                             older_than="1d", keep_commits_since="0s", io_properties=lake.io,
                             now=datetime.now(timezone.utc) + timedelta(days=3))
    assert report.errors == [] and report.skipped_tables == []
    collected = {f.path.removeprefix("file://") for f in report.garbage}
    assert collected and not collected & {f.removeprefix("file://") for f in live}
    assert any(f.endswith(".parquet") for f in collected)
    every_reader(lake, server, final)


def test_pyiceberg_appends_on_a_branch_leave_main_alone(lake: DeltaLake,
                                                        server: EmbeddedServer) -> None:
    events = lake.catalog.branch("main").delta("db.events")
    events.create(ID_P_V_ARROW, partition_by=["p"])
    events.append(data((1, "a", 10)))
    lake.catalog.branch("dev").create("main")
    writer = RestCatalog("writer", uri=server.iceberg_uri)
    writer.load_table(("db@dev", "events")).append(data((2, "b", 20)))
    assert rows(lake.catalog.branch("dev").delta("db.events")) == [(1, "a", 10), (2, "b", 20)]
    assert iceberg_rows(server, "db@dev.events") == [(1, "a", 10), (2, "b", 20)]
    every_reader(lake, server, [(1, "a", 10)])
    # merged: main's state may name the branch log's files (`..`: README, "Reading Delta
    # branches"), which our handles and the Iceberg facade follow
    lake.catalog.branch("dev").merge_into("main")
    assert rows(events) == [(1, "a", 10), (2, "b", 20)]
    assert iceberg_rows(server, "db.events") == [(1, "a", 10), (2, "b", 20)]


def test_concurrent_pyiceberg_appends_all_land_once(lake: DeltaLake,
                                                    server: EmbeddedServer) -> None:
    """Four clients append at once on main: each row once, one Delta version per append,
    on S3 as on local files (a commit that lost the race in the store cleaned up after
    itself with the server's FileIO; it used to reach for the default AWS credentials)."""
    events = lake.catalog.branch("main").delta("db.events")
    events.create(ID_P_V_ARROW, partition_by=["p"])
    version = events.version
    errors: list[BaseException] = []

    def append(i: int) -> None:
        try:
            table = RestCatalog(f"c{i}", uri=server.iceberg_uri).load_table("db.events")
            table.append(data((i, "a", i)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert events.version == version + 4
    # a writer whose store commit lost the race removed the log file it wrote (with the
    # server's FileIO: on S3 nothing else reaches it), so the log ends at the state's version
    state = events.state()
    assert sorted(v for v, _ in log_files(state.location, lake.io)) == list(range(version + 5))
    every_reader(lake, server, [(i, "a", i) for i in range(4)])
