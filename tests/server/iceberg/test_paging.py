"""Listings in pages (`pageToken`/`pageSize`) and the `endpoints` `/v1/config` advertises."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pyiceberg.view.metadata import ViewVersion

from spark_lakeversion.server.embedded import EmbeddedServer
from spark_lakeversion.server.iceberg.paging import PageRequest, paginate
from tests.lake import ID_ICEBERG
from tests.server.helpers import create_table_updates, iceberg_error


def seed_tables(server: EmbeddedServer, names: list[str], batch: int = 100) -> None:
    """Create the tables through the catalog's multi-table transactions, `batch` a commit."""
    updates = create_table_updates(ID_ICEBERG.model_dump(by_alias=True))
    warehouse = server.warehouse.rstrip("/")
    for start in range(0, len(names), batch):
        changes = [{"identifier": {"namespace": ["db"], "name": name},
                    "requirements": [{"type": "assert-create"}],
                    "updates": [{"action": "assign-uuid", "uuid": str(uuid.uuid4())},
                                *updates, {"action": "set-location",
                                           "location": f"{warehouse}/db/{name}"}]}
                   for name in names[start:start + batch]]
        r = httpx.post(f"{server.iceberg_uri}/v1/main/transactions/commit",
                       json={"table-changes": changes}, timeout=120)
        assert r.status_code == 204, r.text


def test_1000_tables_in_pages_of_100_with_creates_during_the_listing(
        server: EmbeddedServer, rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace("db")
    originals = [f"t{i:04d}" for i in range(1000)]
    seed_tables(server, originals)
    url = f"{server.iceberg_uri}/v1/main/namespaces/db/tables"
    seen: list[str] = []
    behind: list[str] = []
    ahead: list[str] = []
    token = ""  # empty: the first page
    pages = 0
    while True:
        r = httpx.get(url, params={"pageToken": token, "pageSize": "100"})
        assert r.status_code == 200, r.text
        body = r.json()
        names = [i["name"] for i in body["identifiers"]]
        assert 0 < len(names) <= 100
        seen += names
        pages += 1
        token = body["next-page-token"]
        if not token:
            break
        # creates between two pages: one sorting before everything listed so far (an
        # offset-based token would then repeat an item), one ahead of the cursor
        behind.append(f"a{pages:03d}")
        ahead.append(f"t{pages * 100 + 50:04d}x")
        cat.create_table(f"db.{behind[-1]}", schema=ID_ICEBERG)
        cat.create_table(f"db.{ahead[-1]}", schema=ID_ICEBERG)
    assert len(seen) == len(set(seen))  # nothing twice
    assert [n for n in seen if n in set(originals)] == originals  # each once, in order
    assert set(seen) - set(originals) == set(ahead)  # created ahead: listed, once
    assert not set(behind) & set(seen)  # created behind the cursor: the next listing's
    assert pages == -(-len(seen) // 100)  # every page full but the last
    everything = {n for (_, n) in cat.list_tables("db")}
    assert everything == set(originals) | set(behind) | set(ahead)


def test_pyiceberg_pages_through_tables_while_another_client_creates(
        server: EmbeddedServer, rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server, **{"rest-page-size": "7"})
    cat.create_namespace("db")
    originals = [f"t{i:03d}" for i in range(60)]
    seed_tables(server, originals, batch=60)
    stop = threading.Event()
    created: list[str] = []

    def create() -> None:
        other = rest_catalog(server)
        i = 0
        while not stop.is_set():
            name = f"{'a' if i % 2 else 'u'}_{i:04d}"
            other.create_table(f"db.{name}", schema=ID_ICEBERG)
            created.append(name)
            i += 1

    worker = threading.Thread(target=create)
    worker.start()
    try:
        time.sleep(0.05)
        listed = [n for (_, n) in cat.list_tables("db")]
    finally:
        stop.set()
        worker.join()
    assert len(listed) == len(set(listed))
    assert sorted(n for n in listed if n.startswith("t")) == originals
    assert set(listed) - set(originals) <= set(created)


def test_namespace_and_view_listings_page_too(server: EmbeddedServer,
                                              rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server, **{"rest-page-size": "4"})
    names = [f"ns{i:02d}" for i in range(10)]
    for name in names:
        cat.create_namespace(name)
    assert [ns for (ns,) in cat.list_namespaces()] == names
    r = httpx.get(f"{server.iceberg_uri}/v1/main/namespaces", params={"pageSize": "4"})
    first = r.json()
    assert [ns for (ns,) in first["namespaces"]] == names[:4] and first["next-page-token"]
    rest = httpx.get(f"{server.iceberg_uri}/v1/main/namespaces",
                     params={"pageToken": first["next-page-token"]}).json()
    assert [ns for (ns,) in rest["namespaces"]] == names[4:]  # no pageSize: the rest
    assert rest["next-page-token"] is None
    version = ViewVersion.model_validate({
        "version-id": 1, "schema-id": 0, "timestamp-ms": 1, "default-namespace": ["ns00"],
        "representations": [{"type": "sql", "sql": "SELECT 1 AS id", "dialect": "spark"}]})
    views = [f"v{i}" for i in range(9)]
    for name in views:
        cat.create_view(f"ns00.{name}", ID_ICEBERG, version)
    assert [n for (_, n) in cat.list_views("ns00")] == views


@pytest.mark.parametrize(("params", "words"), [
    ({"pageSize": "0"}, "pageSize '0' must be a positive integer"),
    ({"pageSize": "-3"}, "must be a positive integer"),
    ({"pageSize": "ten"}, "must be a positive integer"),
    ({"pageToken": "garbage"}, "is not a token this catalog handed out"),
    ({"pageToken": "lv1.!!!"}, "is not a token this catalog handed out"),
    ({"pageToken": "lv1.e30"}, "is not a token this catalog handed out"),  # {}
])
def test_bad_paging_parameters_are_400(server: EmbeddedServer,
                                       rest_catalog: Callable[..., Any],
                                       params: dict[str, str], words: str) -> None:
    rest_catalog(server).create_namespace("db")
    for path in ("/namespaces", "/namespaces/db/tables", "/namespaces/db/views"):
        r = httpx.get(f"{server.iceberg_uri}/v1/main{path}", params=params)
        assert words in iceberg_error(r, 400, "BadRequestException")


def test_paginate_is_a_cursor_not_an_offset() -> None:
    items = [("b",), ("d",), ("f",)]
    page, token = paginate(items, lambda x: x, PageRequest.parse(None, "2"))
    assert page == [("b",), ("d",)] and token is not None
    grown = [("a",), ("c",), *items]  # created behind and between: the cursor holds
    page, token = paginate(grown, lambda x: x, PageRequest.parse(token, "2"))
    assert page == [("f",)] and token is None
    assert paginate(items, lambda x: x, PageRequest.parse("", None)) == (items, None)


#: the spec's names of every route this catalog serves (Iceberg REST OpenAPI, 1.10); a new
#: route joins `/v1/config` by itself (derived from the router) and must be added here
SERVED = {
    "GET /v1/{prefix}/namespaces", "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}", "HEAD /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "POST /v1/{prefix}/namespaces/{namespace}/properties",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/register",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials",
    "POST /v1/{prefix}/tables/rename", "POST /v1/{prefix}/transactions/commit",
    "GET /v1/{prefix}/namespaces/{namespace}/views",
    "POST /v1/{prefix}/namespaces/{namespace}/views",
    "GET /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/views/{view}",
    "POST /v1/{prefix}/namespaces/{namespace}/register-view",
    "POST /v1/{prefix}/views/rename",
}


def test_config_lists_exactly_the_endpoints_served(server: EmbeddedServer,
                                                   rest_catalog: Callable[..., Any]) -> None:
    config = httpx.get(f"{server.iceberg_uri}/v1/config").json()
    endpoints = config["endpoints"]
    assert len(endpoints) == len(set(endpoints)) and set(endpoints) == SERVED
    # pyiceberg reads them: view calls are enabled by them, not by a client setting
    from pyiceberg.catalog.rest import Capability

    cat = rest_catalog(server)
    assert Capability.V1_LIST_VIEWS in cat._supported_endpoints
    assert Capability.V1_REGISTER_VIEW in cat._supported_endpoints
    # and nothing unlisted is served: a spec route we do not serve answers 404/405
    cat.create_namespace("db")
    cat.create_table("db.t", schema=ID_ICEBERG)
    base = f"{server.iceberg_uri}/v1/main/namespaces/db/tables/t"
    iceberg_error(httpx.post(base + "/plan"), 405, "UnsupportedOperationException")
