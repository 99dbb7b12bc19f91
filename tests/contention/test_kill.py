"""kill -9 of a `lakeversion serve` process while 8 writers append to one table (group
commits in flight): afterwards every acknowledged append is there exactly once, and an
unacknowledged one is there whole or not at all."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pyarrow as pa
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.server.embedded import serve_in_subprocess
from tests.contention.helpers import NO_RETRY, SCHEMA, duckdb_ids

WRITERS = 8
ROWS = 3  # per append: a half-applied append would show fewer


def test_kill_9_during_group_commits_loses_no_acknowledged_append(tmp_path: Path) -> None:
    store, warehouse = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "wh"
    proc, url = serve_in_subprocess(store, warehouse)
    acked: list[int] = []
    tried: list[int] = []
    stop = threading.Event()
    try:
        setup = RestCatalog("setup", uri=url + "/iceberg")
        setup.create_namespace("db")
        setup.create_table("db.t", schema=SCHEMA, properties=NO_RETRY)

        def write(w: int) -> None:
            table = RestCatalog(f"w{w}", uri=url + "/iceberg").load_table("db.t")
            n = 0
            while not stop.is_set():
                first = (w * 100_000 + n) * ROWS
                tried.append(first)
                try:
                    table.append(pa.table({"id": list(range(first, first + ROWS))},
                                          schema=SCHEMA))
                except Exception:  # noqa: BLE001 - the server is gone: outcome unknown
                    return
                acked.append(first)
                n += 1

        threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 3 * WRITERS and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # mid-flight: writers are waiting on commits
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 3 * WRITERS
    proc, url = serve_in_subprocess(store, warehouse)
    try:
        table = RestCatalog("after", uri=url + "/iceberg").load_table("db.t")
        ids = Counter(table.scan().to_arrow()["id"].to_pylist())
        batches = Counter(i - i % ROWS for i in ids.elements())
        assert all(ids[i] == 1 for i in ids)  # nothing twice
        assert all(batches[first] == ROWS for first in acked)  # acknowledged: whole
        assert set(batches) <= set(tried)
        assert all(count == ROWS for count in batches.values())  # none half-applied
        assert duckdb_ids(table.metadata_location) == sorted(ids.elements())
        snapshots = table.metadata.snapshots
        assert [s.parent_snapshot_id for s in snapshots[1:]] == \
            [s.snapshot_id for s in snapshots[:-1]]
        # the appends were being committed in groups when the server died
        commits = httpx.get(url + "/api/v1/log", params={"ref": "main", "limit": 1000},
                            timeout=60).json()["commits"]
        assert max(int(c["properties"].get("lakeversion.group-commit", 1))
                   for c in commits) > 1
        # the restarted server takes appends again
        table.append(pa.table({"id": [-3, -2, -1]}, schema=SCHEMA))
        assert len(table.refresh().scan().to_arrow()) == len(ids) + 3
    finally:
        proc.terminate()
        proc.wait(10)
