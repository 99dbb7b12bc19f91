"""A store's limits and FileIO properties are fixed when it is opened: a gated merge (whose
check engine builds its own app over the same store) or a second app never changes them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.limits import Limits
from spark_lakeversion.server.app import create_app
from spark_lakeversion.server.embedded import serve_in_subprocess, start_embedded_server
from spark_lakeversion.wiring import open_store
from tests.lake import ID_ARROW
from tests.server.helpers import iceberg_error
from tests.store.helpers import snapshot_of_store

LONG_NAMESPACE = "n" * 60  # 60 bytes: over a 40-byte key limit


def gated_merge_then_long_key(base_url: str) -> None:
    """One gated merge (a SQL check on main), then a 60-byte namespace: still refused."""
    from pyiceberg.catalog.rest import RestCatalog

    api = f"{base_url}/api/v1"
    main = RestCatalog("lv-main", uri=f"{base_url}/iceberg", warehouse="main")
    main.create_namespace("db")
    main.create_table("db.t", schema=ID_ARROW).append(pa.table({"id": [1]}, schema=ID_ARROW))
    assert httpx.post(f"{api}/refs", json={"name": "dev"}).status_code == 201
    dev = RestCatalog("lv-dev", uri=f"{base_url}/iceberg", warehouse="dev")
    dev.load_table("db.t").append(pa.table({"id": [2]}, schema=ID_ARROW))
    check = {"branch": "main", "name": "no_negative", "kind": "sql",
             "spec": "SELECT id FROM db.t WHERE id < 0"}
    assert httpx.post(f"{api}/checks", json=check).status_code == 201
    merged = httpx.post(f"{api}/merge", json={"source": "dev", "target": "main"}, timeout=120)
    assert merged.status_code == 200, merged.text
    assert [r["status"] for r in merged.json()["checks"]] == ["passed"]
    head = httpx.get(f"{api}/refs/get", params={"name": "main"}).json()["head"]
    answer = httpx.post(f"{base_url}/iceberg/v1/main/namespaces",
                        json={"namespace": [LONG_NAMESPACE]})
    assert "max-key-bytes" in iceberg_error(answer, 413, "BadRequestException")
    answer = httpx.post(f"{api}/commits", json={
        "branch": "main", "message": "long", "operations": [{
            "op": "put", "key": [LONG_NAMESPACE],
            "content": {"type": "NAMESPACE", "id": "x", "properties": {}}}]})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "TOO_LARGE"
    assert httpx.get(f"{api}/refs/get", params={"name": "main"}).json()["head"] == head


def test_embedded_servers_limits_survive_a_gated_merge(tmp_path: Path) -> None:
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               limits=Limits(max_key_bytes=40)) as server:
        gated_merge_then_long_key(server.url)
        assert server.store.limits == Limits(max_key_bytes=40)


def test_served_limits_survive_a_gated_merge(tmp_path: Path) -> None:
    proc, url = serve_in_subprocess(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "wh",
                                    extra_args=["--max-key-bytes", "40"])
    try:
        gated_merge_then_long_key(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_second_app_over_an_open_store_keeps_its_configuration(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}",
                       limits=Limits(max_key_bytes=40), io={"s3.endpoint": "http://x:1"})
    before = snapshot_of_store(store)
    app = create_app(store, str(tmp_path / "wh"))  # as the gates' endpoint builds one
    assert app.state.ctx.limits == store.limits == Limits(max_key_bytes=40)
    assert dict(store.io_properties) == {"s3.endpoint": "http://x:1"}
    assert dict(app.state.ctx.catalog.io) == {"s3.endpoint": "http://x:1"}
    for other in ({"limits": Limits()}, {"io": {}}):
        with pytest.raises(InvalidInput, match="fixed when it is opened"):
            create_app(store, str(tmp_path / "wh"), **other)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        store.limits = Limits()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        store.io_properties = {}  # type: ignore[misc]
    assert store.limits == Limits(max_key_bytes=40)
    assert snapshot_of_store(store) == before
