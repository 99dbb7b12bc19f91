"""kill -9 of a `lakeversion serve` process in the middle of a commit storm, then restart.

After the restart: every ref points at an existing commit, every table's metadata file
exists and loads, and every append the clients saw acknowledged is in its table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pyarrow as pa
import pytest

from spark_lakeversion.server.embedded import serve_in_subprocess

pytestmark = pytest.mark.slow

WRITER_ROWS = pa.schema([pa.field("writer", pa.int64()), pa.field("n", pa.int64())])


def start_serve(store: str, warehouse: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    try:
        return serve_in_subprocess(store, warehouse, output=log.open("ab"))
    except RuntimeError as exc:
        raise AssertionError(f"{exc}: {log.read_text()}") from None


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_kill_9_mid_storm_then_restart_is_consistent(
        tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    from pyiceberg.catalog.rest import RestCatalog

    store, warehouse, log = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "wh", tmp_path / "log"
    proc, url = start_serve(store, warehouse, log)
    procs.append(proc)
    setup = RestCatalog("setup", uri=url + "/iceberg")
    setup.create_namespace("db")
    tables = ["db.t0", "db.t1", "db.shared"]
    for name in tables:
        setup.create_table(name, schema=WRITER_ROWS)
    httpx.post(url + "/api/v1/refs", json={"name": "dev"}).raise_for_status()

    acknowledged: list[tuple[str, str, int]] = []  # (branch, table, snapshot id)
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int, branch: str, table: str) -> None:
        try:
            cat = RestCatalog(f"w{w}", uri=url + "/iceberg", warehouse=branch)
            n = 0
            while not stop.is_set():
                t = cat.load_table(table)
                t.append(pa.table({"writer": [w], "n": [n]}, schema=WRITER_ROWS))
                snapshot = t.current_snapshot()
                assert snapshot is not None
                with lock:
                    acknowledged.append((branch, table, snapshot.snapshot_id))
                n += 1
        except Exception:  # noqa: BLE001 - the server dies under us: expected
            pass

    plan = [("main", "db.t0"), ("main", "db.t1"), ("main", "db.shared"), ("dev", "db.shared"),
            ("main", "db.shared")]
    threads = [threading.Thread(target=writer, args=(w, b, t)) for w, (b, t) in enumerate(plan)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # mid-storm: requests are in flight
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(120)
    assert len(acknowledged) >= 15

    proc, url = start_serve(store, warehouse, log)
    procs.append(proc)
    api = httpx.Client(base_url=url + "/api/v1", timeout=60)
    refs = api.get("/refs").json()["refs"]
    assert {r["name"] for r in refs} == {"main", "dev"}
    for ref in refs:
        assert api.get(f"/commits/{ref['head']}").status_code == 200
        entries = api.get("/contents", params={"ref": ref["name"]}).json()["entries"]
        for entry in entries:
            content = entry["content"]
            if content["type"] != "ICEBERG_TABLE":
                continue
            assert Path(urlparse(content["metadata_location"]).path).is_file(), entry
        catalog = RestCatalog(ref["name"], uri=url + "/iceberg", warehouse=ref["name"])
        for table in tables:
            loaded = catalog.load_table(table)
            present = {s.snapshot_id for s in loaded.metadata.snapshots}
            acked = {sid for b, t, sid in acknowledged if b == ref["name"] and t == table}
            assert acked <= present, f"{ref['name']}:{table} lost {acked - present}"
            expected_rows = sum(1 for _ in loaded.metadata.snapshots)
            assert loaded.scan().to_arrow().num_rows == expected_rows
    # and the restarted server takes writes again
    RestCatalog("after", uri=url + "/iceberg").load_table("db.t0").append(
        pa.table({"writer": [99], "n": [0]}, schema=WRITER_ROWS))
