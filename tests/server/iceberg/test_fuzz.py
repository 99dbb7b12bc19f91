"""Fuzz both APIs with requests built from pyiceberg's (and our) request models, plus raw
adversarial bodies, against a real server on loopback.

Invariants, checked on every example: never a 5xx; a 4xx writes nothing (every store row
and every file under the warehouse and the location sandbox unchanged); a 2xx write leaves
every Iceberg table on every branch loadable. `pytest --long` runs many more examples
(for releases); the default stays within a minute or two.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog.rest import CommitTableRequest, CreateTableRequest, RegisterTableRequest

from spark_lakeversion.formats.iceberg.catalog.addressing import NAMESPACE_SEPARATOR, encode_prefix
from spark_lakeversion.formats.iceberg.catalog.requests import (
    CommitViewBody,
    CreateViewBody,
    RegisterViewBody,
)
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE, ICEBERG_VIEW
from spark_lakeversion.server import api_v1
from spark_lakeversion.server.embedded import EmbeddedServer
from tests.lake import ID_REST_JSON
from tests.server.helpers import written
from tests.server.strategies import RAW_BODIES, from_model, text

pytestmark = pytest.mark.slow



@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, str]
    body: bytes | None

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.params} {self.body[:300] if self.body else ''!r}"


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()  # ASCII: lone surrogates travel as escapes


def bodies(model_strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes | None]:
    """Mostly model-shaped bodies, sometimes raw adversarial ones or none at all."""
    return st.one_of(model_strategy.map(encoded), model_strategy.map(encoded),
                     st.sampled_from([*RAW_BODIES, None]))


def iceberg_calls(sandbox: Path) -> st.SearchStrategy[Call]:
    prefixes = st.one_of(st.sampled_from(["main", "dev", "v1", encode_prefix("main~1"),
                                          encode_prefix("main#2000-01-01T00:00:00Z"), "~!!",
                                          "nope", encode_prefix("main~" + "9" * 40)]), text)
    namespaces = st.one_of(st.sampled_from(["db", "db\x1fsub", "db@dev", "db@main~1", "nons",
                                            "db@", "%00"]), text)
    tables = st.one_of(st.sampled_from(["t", "u", "w", "new"]), text)
    transaction = st.fixed_dictionaries({"table-changes": st.lists(from_model(
        CommitTableRequest, sandbox), max_size=2)})
    identifier = st.fixed_dictionaries({"namespace": st.lists(namespaces, max_size=2),
                                        "name": tables})
    rename = st.fixed_dictionaries({"source": identifier, "destination": identifier})
    namespace_body = st.fixed_dictionaries(
        {"namespace": st.lists(namespaces, max_size=3)},
        optional={"properties": st.dictionaries(text, text, max_size=3)})
    properties_body = st.fixed_dictionaries({}, optional={
        "removals": st.lists(text, max_size=3), "updates": st.dictionaries(text, text,
                                                                             max_size=3)})
    routes: list[tuple[str, str, st.SearchStrategy[bytes | None]]] = [
        ("POST", "/namespaces", bodies(namespace_body)),
        ("POST", "/namespaces/{ns}/properties", bodies(properties_body)),
        ("POST", "/namespaces/{ns}/tables", bodies(from_model(CreateTableRequest, sandbox))),
        ("POST", "/namespaces/{ns}/register", bodies(from_model(RegisterTableRequest,
                                                                sandbox))),
        ("POST", "/namespaces/{ns}/tables/{t}", bodies(from_model(CommitTableRequest,
                                                                  sandbox))),
        ("POST", "/namespaces/{ns}/tables/{t}/metrics", bodies(st.just({}))),
        ("POST", "/tables/rename", bodies(rename)),
        ("POST", "/transactions/commit", bodies(transaction)),
        ("GET", "/namespaces", st.none()), ("GET", "/namespaces/{ns}", st.none()),
        ("HEAD", "/namespaces/{ns}", st.none()), ("DELETE", "/namespaces/{ns}", st.none()),
        ("GET", "/namespaces/{ns}/tables", st.none()),
        ("GET", "/namespaces/{ns}/tables/{t}", st.none()),
        ("HEAD", "/namespaces/{ns}/tables/{t}", st.none()),
        ("DELETE", "/namespaces/{ns}/tables/{t}", st.none()),
        ("POST", "/namespaces/{ns}/views", bodies(from_model(CreateViewBody, sandbox))),
        ("POST", "/namespaces/{ns}/register-view", bodies(from_model(RegisterViewBody,
                                                                     sandbox))),
        ("POST", "/namespaces/{ns}/views/{t}", bodies(from_model(CommitViewBody, sandbox))),
        ("POST", "/views/rename", bodies(rename)),
        ("GET", "/namespaces/{ns}/views", st.none()),
        ("GET", "/namespaces/{ns}/views/{t}", st.none()),
        ("HEAD", "/namespaces/{ns}/views/{t}", st.none()),
        ("DELETE", "/namespaces/{ns}/views/{t}", st.none()),
    ]

    @st.composite
    def call(draw: st.DrawFn) -> Call:
        method, template, body = draw(st.sampled_from(routes))
        path = template.replace("{ns}", quote(draw(namespaces), safe="", errors="surrogatepass"))
        path = path.replace("{t}", quote(draw(tables), safe="", errors="surrogatepass"))
        base = draw(st.sampled_from(["/iceberg/v1", "/iceberg/v1/{p}"]))
        base = base.replace("{p}", quote(draw(prefixes), safe="", errors="surrogatepass"))
        params: dict[str, str] = {}
        if template == "/namespaces" and method == "GET" and draw(st.booleans()):
            params["parent"] = draw(namespaces)
        if method == "GET" and template.endswith(("/namespaces", "/tables", "/views")):
            if draw(st.booleans()):
                params["pageSize"] = draw(st.one_of(st.sampled_from(["1", "2", "0", "-1"]),
                                                    text))
            if draw(st.booleans()):
                params["pageToken"] = draw(st.one_of(st.sampled_from(["", "lv1.WyJ0Il0"]),
                                                     text))
        if method == "DELETE" and draw(st.booleans()):
            params["purgeRequested"] = draw(st.sampled_from(["true", "false", "x"]))
        return Call(method, base + path, params, draw(body))

    config = st.builds(lambda w: Call("GET", "/iceberg/v1/config", {"warehouse": w}, None),
                       prefixes)
    return st.one_of(call(), config)


def api_calls(sandbox: Path) -> st.SearchStrategy[Call]:
    """`/api/v1` writes with our own models' bodies and the same adversarial ones."""
    models = {"/refs": api_v1.CreateRefBody, "/refs/delete": api_v1.DeleteRefBody,
              "/refs/assign": api_v1.AssignRefBody, "/commits": api_v1.CommitBody,
              "/contents/lookup": api_v1.LookupBody, "/merge": api_v1.MergeBody,
              "/cherry-pick": api_v1.CherryPickBody, "/revert": api_v1.RevertBody,
              "/rollback": api_v1.RollbackBody}
    return st.one_of([bodies(from_model(model, sandbox)).map(
        lambda b, p=path: Call("POST", "/api/v1" + p, {}, b)) for path, model in models.items()])


@pytest.fixture
def seeded(server: EmbeddedServer) -> Iterator[EmbeddedServer]:
    """Namespaces `db`, `db.sub`, tables `db.t`, `db.u`, branch `dev`, tag `v1`."""
    base = server.iceberg_uri + "/v1/main"
    httpx.post(base + "/namespaces", json={"namespace": ["db"]}).raise_for_status()
    httpx.post(base + "/namespaces", json={"namespace": ["db", "sub"]}).raise_for_status()
    for name in ("t", "u"):
        httpx.post(base + "/namespaces/db/tables", json={"name": name, "schema": ID_REST_JSON}
                   ).raise_for_status()
    httpx.post(base + "/namespaces/db/views", json={
        "name": "w", "schema": ID_REST_JSON, "view-version": {
            "version-id": 1, "schema-id": 0, "timestamp-ms": 1, "default-namespace": ["db"],
            "representations": [{"type": "sql", "sql": "SELECT 1 AS id", "dialect": "spark"}]}}
               ).raise_for_status()
    httpx.post(server.api_url + "/refs", json={"name": "dev"}).raise_for_status()
    httpx.post(server.api_url + "/refs", json={"name": "v1", "type": "TAG"}).raise_for_status()
    yield server


def unreadable_tables(server: EmbeddedServer, client: httpx.Client) -> list[str]:
    """Every Iceberg table and view of every branch that does not load over REST."""
    bad = []
    kinds = {ICEBERG_TABLE: "tables", ICEBERG_VIEW: "views"}
    for ref in server.store.list_refs():
        for key, content in server.store.list_keys(ref.name):
            if content.type not in kinds:
                continue
            ns = quote(NAMESPACE_SEPARATOR.join(key.namespace), safe="")
            path = f"/iceberg/v1/{encode_prefix(ref.name)}/namespaces/{ns}/" \
                   f"{kinds[content.type]}/{quote(key.name, safe='')}"
            r = client.get(path)
            if r.status_code != 200:
                bad.append(f"{ref.name}:{key} -> {r.status_code} {r.text[:200]}")
    return bad


def run_fuzz(server: EmbeddedServer, calls: st.SearchStrategy[Call], sandbox: Path,
             examples: int) -> None:
    failures: list[str] = []
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        @given(call=calls)
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(call: Call) -> None:
            before = written(server, sandbox)
            # lone surrogates in a URL go as the (invalid) UTF-8 bytes a raw client can send
            query = urlencode(call.params, quote_via=lambda v, *a: quote(
                v, safe="", errors="surrogatepass"))
            r = client.request(call.method, call.path + ("?" + query if query else ""),
                               content=call.body, headers={"content-type": "application/json"})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code >= 500:
                failures.append(f"{call} -> {r.status_code} {r.text[:300]}")
            elif r.status_code >= 400:
                if written(server, sandbox) != before:
                    failures.append(f"{call} -> {r.status_code} but wrote: {r.text[:300]}")
            elif call.method not in ("GET", "HEAD"):
                failures.extend(f"after {call} -> {r.status_code}: {bad}"
                            for bad in unreadable_tables(server, client))

        check()
    assert not failures, "\n".join(failures[:10])
    # the suite must reach past the parsers: some requests have to succeed
    assert sum(n for s, n in statuses.items() if s < 300) > 0, statuses


def test_iceberg_rest_fuzz(seeded: EmbeddedServer, tmp_path: Path, fuzz_examples: int) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    run_fuzz(seeded, iceberg_calls(sandbox), sandbox, fuzz_examples)


def test_api_v1_fuzz(seeded: EmbeddedServer, tmp_path: Path, fuzz_examples: int) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    run_fuzz(seeded, api_calls(sandbox), sandbox, fuzz_examples // 2)
