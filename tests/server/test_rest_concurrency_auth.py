"""Concurrent writers to one table, and bearer-token auth on both APIs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException

from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server

WRITERS = 8
APPENDS = 25


@pytest.mark.slow
def test_8_writers_x_25_appends_to_one_table_all_land(
        server: EmbeddedServer, rest_catalog: Callable[..., Any]) -> None:
    setup = rest_catalog(server)
    setup.create_namespace("db")
    schema = pa.schema([pa.field("writer", pa.int64()), pa.field("n", pa.int64())])
    setup.create_table("db.t", schema=schema)
    errors: list[BaseException] = []
    conflicts = [0]

    def writer(w: int) -> None:
        cat = rest_catalog(server, f"w{w}")
        try:
            for n in range(APPENDS):
                batch = pa.table({"writer": [w], "n": [n]}, schema=schema)
                while True:  # the client's retry: reload and re-apply on 409
                    try:
                        cat.load_table("db.t").append(batch)
                        break
                    except CommitFailedException:
                        conflicts[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    table = setup.load_table("db.t")
    data = table.scan().to_arrow()
    assert data.num_rows == WRITERS * APPENDS
    assert sorted(zip(data["writer"].to_pylist(), data["n"].to_pylist())) == [
        (w, n) for w in range(WRITERS) for n in range(APPENDS)]
    assert len(table.metadata.snapshots) == WRITERS * APPENDS
    log = httpx.get(server.api_url + "/log",
                    params={"ref": "main", "key": "db.t", "limit": 1000}).json()
    # appends that arrived together share a store commit (group commit), each its snapshot
    appended = [int(c["properties"].get("lakeversion.group-commit", 1))
                for c in log["commits"] if c["properties"]["iceberg.operation"] == "append"]
    assert sum(appended) == WRITERS * APPENDS
    assert len(log["commits"]) == len(appended) + 1  # + the create
    assert conflicts[0] == 0  # stale appends are rebased by the server, never refused


def test_token_required_on_both_apis_and_nothing_written(
        tmp_path: Path, rest_catalog: Callable[..., Any]) -> None:
    from pyiceberg.exceptions import UnauthorizedError

    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"), token="s3cret") as srv:
        good = {"Authorization": "Bearer s3cret"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = httpx.post(srv.api_url + "/refs", json={"name": "dev"}, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
            r = httpx.post(srv.iceberg_uri + "/v1/main/namespaces", json={"namespace": ["x"]},
                           headers=headers)
            assert r.status_code == 401
            assert r.json()["error"]["type"] == "NotAuthorizedException"
            assert httpx.get(srv.api_url + "/openapi.json", headers=headers).status_code == 401
        with pytest.raises(UnauthorizedError):
            rest_catalog(srv, "anon", token="wrong")
        refs = httpx.get(srv.api_url + "/refs", headers=good).json()["refs"]
        assert [r["name"] for r in refs] == ["main"]
        log = httpx.get(srv.api_url + "/log", headers=good).json()["commits"]
        assert all(not c["message"].startswith("create namespace") for c in log)
        cat = rest_catalog(srv)  # the `token` property: authorised
        cat.create_namespace("db")
        assert cat.list_namespaces() == [("db",)]
