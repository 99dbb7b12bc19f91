"""gc's epoch fence on every surface that commits files (issue 20): register-table and
register-view, `/api/v1/commits`, Delta create/register and Delta writes pass the same
fence as an Iceberg REST commit. A gc run beginning between a commit's check and its store
commit, or a cutoff later than the files a commit adds, refuses it: a typed 409, and the
store and the warehouse byte for byte as they were. (tests/server/iceberg/test_gc_fence.py
covers the Iceberg REST commits themselves.)"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from spark_lakeversion.api import connect
from spark_lakeversion.errors import ConflictError
from spark_lakeversion.gc import collect_garbage
from spark_lakeversion.server.embedded import EmbeddedServer
from spark_lakeversion.wiring import open_store
from tests.server.helpers import api_error, iceberg_error
from tests.store.helpers import snapshot_of_store

ROWS = pa.table({"id": pa.array([1, 2], pa.int64())})
DELTA_SCHEMA = {"type": "struct", "fields": [
    {"name": "id", "type": "long", "nullable": True, "metadata": {}}]}


def state(server: EmbeddedServer) -> tuple[dict[str, Any], dict[str, str]]:
    """Every store row (gc's own state aside: the run that began is real) and every file
    (path -> sha256) under the server's directory."""
    root = Path(server.warehouse.removeprefix("file://")).parent
    files = {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file() and "store.db" not in p.name}
    rows = snapshot_of_store(server.store)
    rows.pop("lv_gc_state", None)
    return rows, files


@pytest.fixture
def gc_begins_during_commit(server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
                            ) -> Iterator[Callable[[], None]]:
    """Arm: the next read of gc's state is followed at once by a gc run beginning (a new
    epoch), as if `lakeversion gc` started between a commit's check and its store commit."""
    store = server.store
    original = store.gc_state
    armed: list[bool] = []

    def racing() -> Any:
        found = original()
        if armed:
            armed.clear()
            now = datetime.now(timezone.utc)
            store.begin_gc(now - timedelta(days=1), now - timedelta(days=7))
        return found

    monkeypatch.setattr(store, "gc_state", racing)
    yield lambda: armed.append(True)


def unowned_table_file(server: EmbeddedServer, client: httpx.Client) -> str:
    """A metadata file of a table the catalog does not own (fresh UUID and location)."""
    loaded = client.get("/namespaces/db/tables/t").json()["metadata"]
    folder = Path(server.warehouse.removeprefix("file://")) / "external" / "metadata"
    folder.mkdir(parents=True)
    path = folder / "00000-x.metadata.json"
    path.write_text(json.dumps({**loaded, "table-uuid": str(uuid.uuid4()),
                                "location": str(folder.parent), "snapshots": [],
                                "current-snapshot-id": None, "snapshot-log": [],
                                "refs": {}}))
    return str(path)


@pytest.fixture
def ice(server: EmbeddedServer) -> httpx.Client:
    client = httpx.Client(base_url=f"{server.iceberg_uri}/v1/main", timeout=60)
    client.post("/namespaces", json={"namespace": ["db"]}).raise_for_status()
    client.post("/namespaces/db/tables", json={"name": "t", "schema": {
        "type": "struct", "schema-id": 0, "fields": [
            {"id": 1, "name": "id", "type": "long", "required": False}]}}).raise_for_status()
    return client


def test_register_table_and_view_are_fenced(server: EmbeddedServer, ice: httpx.Client,
                                            gc_begins_during_commit: Callable[[], None]
                                            ) -> None:
    table_file = unowned_table_file(server, ice)
    view = ice.post("/namespaces/db/views", json={
        "name": "v", "schema": {"type": "struct", "schema-id": 0, "fields": []},
        "view-version": {"version-id": 1, "timestamp-ms": 1, "schema-id": 0, "summary": {},
                         "default-namespace": ["db"], "representations": [
                             {"type": "sql", "sql": "SELECT 1", "dialect": "spark"}]}}).json()
    view_file = Path(view["metadata-location"].removeprefix("file://"))
    copy = view_file.parents[2] / "external_v" / "v.metadata.json"
    copy.parent.mkdir()
    copy.write_text(json.dumps({**json.loads(view_file.read_text()),
                                "view-uuid": str(uuid.uuid4()), "location": str(copy.parent)}))
    before = state(server)
    for route, location in (("register", table_file), ("register-view", str(copy))):
        gc_begins_during_commit()
        r = ice.post(f"/namespaces/db/{route}", json={"name": "r", "metadata-location": location})
        assert "gc started a new run" in iceberg_error(r, 409, "CommitFailedException")
        assert state(server) == before
    # with no gc starting meanwhile, the same registers land
    assert ice.post("/namespaces/db/register", json={
        "name": "r", "metadata-location": table_file}).status_code == 200


def test_api_commits_are_fenced(server: EmbeddedServer, ice: httpx.Client,
                                gc_begins_during_commit: Callable[[], None]) -> None:
    from pyiceberg.catalog.rest import RestCatalog

    api = httpx.Client(base_url=server.api_url, timeout=60)
    api.post("/refs", json={"name": "dev"}).raise_for_status()
    RestCatalog("dev", uri=server.iceberg_uri, warehouse="dev").load_table("db.t").append(ROWS)
    dev_state = api.post("/contents/lookup", json={"ref": "dev", "keys": [["db", "t"]]}
                         ).json()["entries"][0]["content"]

    def put() -> httpx.Response:
        return api.post("/commits", json={"branch": "main", "message": "m", "operations": [
            {"op": "put", "key": ["db", "t"], "content": dev_state}]})

    before = state(server)
    gc_begins_during_commit()
    assert "gc started a new run" in api_error(put(), 409, "GC_EPOCH_CHANGED")
    assert state(server) == before
    head = server.store.get_ref("main").head
    # a gc run whose cutoff is later than the files the put adds: refused for good
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    gc_store = open_store(server.store.url)
    collect_garbage(gc_store, roots=[server.warehouse], older_than="0s", force=True, now=later)
    gc_store.close()
    files = state(server)[1]
    message = api_error(put(), 409, "CONFLICT")
    assert "before gc's cutoff" in message and "db.t: metadata file" in message
    assert server.store.get_ref("main").head == head
    assert state(server)[1] == files


def test_delta_create_register_and_writes_are_fenced(
        server: EmbeddedServer, tmp_path: Path,
        gc_begins_during_commit: Callable[[], None]) -> None:
    from deltalake import write_deltalake

    api = httpx.Client(base_url=server.api_url, timeout=60)
    external = Path(server.warehouse.removeprefix("file://")) / "external_delta"
    write_deltalake(str(external), pa.table({"id": pa.array([1], pa.int64())}))
    before = state(server)
    for route, body in (("create", {"table": "db.e", "schema": DELTA_SCHEMA}),
                        ("register", {"table": "db.x", "location": str(external)})):
        gc_begins_during_commit()
        r = api.post(f"/delta/{route}", json=body)
        assert "gc started a new run" in api_error(r, 409, "GC_EPOCH_CHANGED"), route
        assert state(server) == before
    assert api.post("/delta/create", json={"table": "db.e", "schema": DELTA_SCHEMA}
                    ).status_code == 201
    head, files = server.store.get_ref("main").head, state(server)[1]
    with connect(server.url, warehouse=server.warehouse) as catalog:
        events = catalog.branch("main").delta("db.e")
        gc_begins_during_commit()
        with pytest.raises(ConflictError, match="gc started a new run"):
            events.append(pa.table({"id": pa.array([7], pa.int64())}))
        assert server.store.get_ref("main").head == head
        assert state(server)[1] == files
        assert events.to_arrow().num_rows == 0
        events.append(pa.table({"id": pa.array([7], pa.int64())}))  # no gc meanwhile: lands
        assert events.to_arrow()["id"].to_pylist() == [7]
        # a gc cutoff later than the files a write adds: refused for good, files removed
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        gc_store = open_store(server.store.url)
        collect_garbage(gc_store, roots=[server.warehouse], older_than="0s", force=True,
                        now=later)
        gc_store.close()
        head, files = server.store.get_ref("main").head, state(server)[1]
        with pytest.raises(ConflictError, match="db.e: log file .* before gc's cutoff"):
            events.append(pa.table({"id": pa.array([8], pa.int64())}))
        assert server.store.get_ref("main").head == head
        assert state(server)[1] == files
        assert events.to_arrow()["id"].to_pylist() == [7]


def test_iceberg_commits_on_delta_tables_are_fenced(
        server: EmbeddedServer, gc_begins_during_commit: Callable[[], None],
        caplog: pytest.LogCaptureFixture) -> None:
    from pyiceberg.catalog.rest import RestCatalog

    api = httpx.Client(base_url=server.api_url, timeout=60)
    assert api.post("/delta/create", json={"table": "db.e", "schema": DELTA_SCHEMA}
                    ).status_code == 201
    table = RestCatalog("lv", uri=server.iceberg_uri).load_table("db.e")
    log_dir = Path(table.metadata.location.removeprefix("file://")) / "_delta_log"
    logs = sorted(p.name for p in log_dir.iterdir())
    gc_begins_during_commit()
    # the first attempt is refused (409 CommitFailed: gc began), pyiceberg retries on a
    # fresh load and lands: one new Delta version, the refused one left nothing behind
    table.append(ROWS)
    assert "Commit failed due to a concurrent update" in caplog.text
    assert sorted(p.name for p in log_dir.iterdir()) == sorted(
        [*logs, "00000000000000000001.json"])
    table = RestCatalog("lv", uri=server.iceberg_uri).load_table("db.e")
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == [1, 2]
