"""Malformed and oversized input on both APIs: a typed 4xx naming the field, nothing written.

Each test is a reproduction from the "bad input never breaks the server" issue; every one
used to answer 500 (often "the outcome of the write is unknown") or to store a value that
broke later reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from spark_lakeversion.limits import Limits
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.lake import ID_REST_JSON
from tests.server.helpers import api_error, iceberg_error, written

NS = {"type": "NAMESPACE", "id": "ns-1", "properties": {}}

#: every Iceberg route that takes a body (under the `main` prefix, with `db.t` existing)
ICEBERG_POSTS = ["/namespaces", "/namespaces/db/properties", "/namespaces/db/tables",
                 "/namespaces/db/register", "/namespaces/db/tables/t", "/tables/rename",
                 "/transactions/commit"]
API_POSTS = ["/refs", "/refs/delete", "/refs/assign", "/commits", "/contents/lookup", "/merge",
             "/cherry-pick", "/revert", "/rollback"]


@pytest.fixture
def ice(server: EmbeddedServer) -> Iterator[httpx.Client]:
    """`/iceberg/v1/main` with namespace `db` and table `db.t`."""
    with httpx.Client(base_url=server.iceberg_uri + "/v1/main", timeout=60) as client:
        client.post("/namespaces", json={"namespace": ["db"]}).raise_for_status()
        client.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}
                    ).raise_for_status()
        yield client


def commit_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"branch": "main", "message": "m",
                            "operations": [{"op": "put", "key": ["x"], "content": NS}]}
    body.update(changes)
    return body


def raw(value: Any) -> bytes:
    """JSON with lone surrogates written as escapes (what a client can send)."""
    return json.dumps(value).encode()


# ---- nesting --------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [b"[" * 200_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
                         ids=["200k-arrays", "50k-objects"])
def test_deeply_nested_bodies_are_400_on_every_post_route(server: EmbeddedServer,
                                                           ice: httpx.Client,
                                                           api: httpx.Client,
                                                           body: bytes) -> None:
    before = written(server)
    for path in ICEBERG_POSTS:
        message = iceberg_error(ice.post(path, content=body), 400, "BadRequestException")
        assert "the request body is nested" in message and "limit of 128 levels" in message
    for path in API_POSTS:
        message = api_error(api.post(path, content=body), 400, "INVALID_INPUT")
        assert "the request body is nested" in message
    assert written(server) == before


def test_deeply_nested_properties_header_is_400(server: EmbeddedServer, ice: httpx.Client,
                                                api: httpx.Client) -> None:
    before = written(server)
    headers = {"X-Lakeversion-Properties": "[" * 30_000}
    r = ice.post("/namespaces", json={"namespace": ["other"]}, headers=headers)
    assert "X-Lakeversion-Properties is nested" in iceberg_error(r, 400, "BadRequestException")
    api.post("/refs", json={"name": "dev"}).raise_for_status()
    before = written(server)
    r = api.post("/merge", json={"source": "dev", "target": "main"}, headers=headers)
    assert "X-Lakeversion-Properties is nested" in api_error(r, 400, "INVALID_INPUT")
    assert written(server) == before


def test_out_of_range_values_in_iceberg_bodies_are_400(server: EmbeddedServer,
                                                       ice: httpx.Client) -> None:
    """Found by the fuzz suite: a date default of 2**31 days overflowed (500)."""
    before = written(server)
    field = {"id": 1, "name": "d", "type": "date", "required": False,
             "initial-default": 2**31}
    schema = {"type": "struct", "fields": [field]}
    r = ice.post("/namespaces/db/tables", json={"name": "d", "schema": schema})
    iceberg_error(r, 400, "BadRequestException")
    r = ice.post("/namespaces/db/tables/t",
                 json={"updates": [{"action": "add-schema", "schema": schema}]})
    iceberg_error(r, 400, "BadRequestException")
    assert written(server) == before


# ---- Unicode --------------------------------------------------------------------------------
def test_lone_surrogates_are_400_naming_the_field(server: EmbeddedServer, ice: httpx.Client,
                                                  api: httpx.Client) -> None:
    before = written(server)
    cases = [("/namespaces", {"namespace": ["\ud800"]}, "namespace.0"),
             ("/namespaces", {"namespace": ["n"], "properties": {"k": "\udfff"}},
              "properties.k"),
             ("/namespaces/db/properties", {"updates": {"\ud800": "v"}}, "updates.'\\ud800'"),
             ("/namespaces/db/tables", {"name": "t\ud800", "schema": ID_REST_JSON}, "at name")]
    for path, body, where in cases:
        message = iceberg_error(ice.post(path, content=raw(body)), 400, "BadRequestException")
        assert where in message and "not valid Unicode" in message, message
    for body, where in [(commit_body(message="\ud800"), "at message"),
                        (commit_body(operations=[{"op": "put", "key": ["db", "\udc80"],
                                                  "content": NS}]), "operations.0.key.1"),
                        (commit_body(properties={"p": "\ud800x"}), "properties.p")]:
        message = api_error(api.post("/commits", content=raw(body)), 400, "INVALID_INPUT")
        assert where in message and "not valid Unicode" in message, message
    assert written(server) == before


def test_invalid_utf8_and_non_json_bodies_are_400(server: EmbeddedServer, ice: httpx.Client,
                                                  api: httpx.Client) -> None:
    before = written(server)
    message = iceberg_error(ice.post("/namespaces", content=b'{"namespace": ["\xff"]}'), 400,
                            "BadRequestException")
    assert "not UTF-8" in message
    assert "not valid JSON" in api_error(api.post("/commits", content=b'{"branch": NaN}'), 400,
                                         "INVALID_INPUT")
    assert "needs a JSON body" in iceberg_error(ice.post("/namespaces"), 400,
                                                "BadRequestException")
    assert written(server) == before


def test_stored_lone_surrogates_from_an_older_version_still_read(
        server: EmbeddedServer, api: httpx.Client, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """A value an older version stored unchecked is sent escaped, never a 500."""
    from click.testing import CliRunner

    import spark_lakeversion.versioning.commits as sql
    from spark_lakeversion.cli.main import cli
    from spark_lakeversion.model import Content, ContentType, Put

    with monkeypatch.context() as patch:  # what an older version let through
        patch.setattr(sql, "check_commit", lambda *a, **k: None)
        server.store.commit("main", [Put(("db",), Content(ContentType.NAMESPACE, "n1", {
            "properties": {"k": "bad\ud800"}}))], message="older version")
    r = api.get("/contents", params={"ref": "main"})
    assert r.status_code == 200, r.text
    assert r.json()["entries"][0]["content"]["properties"] == {"k": "bad\ud800"}
    r = api.get("/diff", params={"from": "main~1", "to": "main"})
    assert r.status_code == 200 and r.json()["diffs"][0]["key"] == "db", r.text
    r = httpx.get(server.iceberg_uri + "/v1/main/namespaces/db")
    assert r.status_code == 200 and r.json()["properties"] == {"k": "bad\ud800"}, r.text
    result = CliRunner().invoke(cli, ["--store", server.url, "show", "main"])
    assert result.exit_code == 0, result.output
    assert "bad\\ud800" in result.output
    result = CliRunner().invoke(cli, ["--store", server.url, "diff", "main~1", "main"])
    assert result.exit_code == 0 and "bad\\ud800" in result.output, result.output


# ---- ref expressions and page tokens ---------------------------------------------------------
@pytest.mark.parametrize("expression, why", [
    ("main~" + "9" * 5000, "number of ancestors from 0 to 1,000,000"),
    ("main~1000001", "number of ancestors from 0 to 1,000,000"),
    ("main~²", "number of ancestors"),
    ("main#0001-01-01T00:00:00+14:00", "out of range"),
    ("main#9999-12-31T23:59:59-12:00", "out of range"),
])
def test_out_of_range_ref_expressions_are_400(server: EmbeddedServer, api: httpx.Client,
                                              expression: str, why: str) -> None:
    for path, params in [("/resolve", {"ref": expression}), ("/log", {"ref": expression}),
                         ("/contents", {"ref": expression}),
                         ("/diff", {"from": "main", "to": expression})]:
        assert why in api_error(api.get(path, params=params), 400, "INVALID_REF_EXPRESSION")
    r = httpx.get(server.iceberg_uri + "/v1/config", params={"warehouse": expression})
    assert why in iceberg_error(r, 400, "BadRequestException")


def test_page_tokens_are_opaque_and_checked(server: EmbeddedServer, api: httpx.Client) -> None:
    for i in range(7):
        api.post("/commits", json=commit_body(
            message=f"c{i}", operations=[{"op": "put", "key": [f"n{i}"], "content": NS}])
                 ).raise_for_status()
    for token in ["-5", "3", "abc", "LTU6MDAwMDAwMDAwMDAw", "x" * 5000]:
        message = api_error(api.get("/log", params={"limit": 3, "page_token": token}), 400,
                            "INVALID_INPUT")
        assert message.startswith("page_token ")
    seen: list[str] = []
    token = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"page_token": token} if token else {})}
        page = api.get("/log", params=params).json()
        seen += [c["id"] for c in page["commits"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert len(seen) == len(set(seen)) == 8  # the root commit and 7: no page overlaps


# ---- limits ---------------------------------------------------------------------------------
def test_default_value_limits_are_413_and_write_nothing(server: EmbeddedServer,
                                                        ice: httpx.Client,
                                                        api: httpx.Client) -> None:
    big = "x" * 5_000_000
    before = written(server)
    cases = [(api, "/commits", commit_body(message=big), "--max-message-bytes"),
             (api, "/commits", commit_body(properties={"p": big}),
              "--max-property-value-bytes"),
             (api, "/commits", commit_body(properties={big[:2000]: "v"}),
              "--max-property-key-bytes"),
             (api, "/commits", commit_body(operations=[{"op": "put", "key": ["db", big],
                                                        "content": NS}]), "--max-key-bytes"),
             (api, "/commits", commit_body(author=big), "--max-property-value-bytes"),
             (ice, "/namespaces", {"namespace": [big]}, "--max-key-bytes"),
             (ice, "/namespaces", {"namespace": ["n"], "properties": {"k": big}},
              "--max-property-value-bytes"),
             (ice, "/namespaces/db/properties", {"updates": {"k": big}},
              "--max-property-value-bytes"),
             (ice, "/namespaces/db/tables", {"name": big[:2000], "schema": ID_REST_JSON},
              "--max-key-bytes")]
    for client, path, body, option in cases:
        r = client.post(path, json=body)
        if client is api:
            message = api_error(r, 413, "TOO_LARGE")
        else:
            message = iceberg_error(r, 413, "BadRequestException")
        assert "over the limit of" in message and option in message, message
    r = ice.post("/namespaces", json={"namespace": ["n"]},
                 headers={"X-Lakeversion-Message": "m" * 60_000})
    assert r.status_code == 200  # under every limit: accepted
    assert written(server) != before


@pytest.fixture
def small(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A server with small request limits, to reach them cheaply."""
    limits = Limits(max_body_bytes=2_000, max_header_bytes=4_000, max_operations=3,
                    max_json_depth=8)
    with start_embedded_server(f"sqlite:///{tmp_path / 'small.db'}",
                               warehouse=str(tmp_path / "wh"), limits=limits) as srv:
        yield srv


def test_request_size_limits_are_413_in_each_apis_model(small: EmbeddedServer) -> None:
    before = written(small)
    body = json.dumps({"namespace": ["n"], "properties": {"k": "v" * 3_000}}).encode()

    def chunked() -> Iterator[bytes]:
        for i in range(0, len(body), 500):
            yield body[i:i + 500]

    ice = small.iceberg_uri + "/v1/main/namespaces"
    for content in (body, chunked()):  # with a Content-Length, and without one
        message = iceberg_error(httpx.post(ice, content=content), 413, "BadRequestException")
        assert "limit of 2,000 bytes" in message and "--max-body-bytes" in message
    message = api_error(httpx.post(small.api_url + "/commits", content=body), 413, "TOO_LARGE")
    assert "--max-body-bytes" in message
    r = httpx.get(small.api_url + "/refs", headers={"X-Padding": "p" * 5_000})
    assert "--max-header-bytes" in api_error(r, 413, "TOO_LARGE")
    r = httpx.post(ice, json={"namespace": ["n"]}, headers={"X-Padding": "p" * 5_000})
    assert "--max-header-bytes" in iceberg_error(r, 413, "BadRequestException")
    r = httpx.post(small.api_url + "/commits", json=commit_body(operations=[
        {"op": "put", "key": [f"n{i}"], "content": NS} for i in range(4)]))
    assert "4 operations, over the limit of 3" in api_error(r, 413, "TOO_LARGE")
    r = httpx.post(ice, json={"namespace": ["n"], "properties": {"a": [[[[[[[[[]]]]]]]]]}})
    assert "limit of 8 levels" in iceberg_error(r, 400, "BadRequestException")
    assert written(small) == before


def test_serve_options_configure_every_limit(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    import uvicorn
    from click.testing import CliRunner

    from spark_lakeversion.cli.main import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    result = CliRunner().invoke(cli, [
        "serve", "--store", f"sqlite:///{tmp_path / 's.db'}", "--warehouse", str(tmp_path),
        "--max-body-bytes", "1000", "--max-header-bytes", "2000", "--max-json-depth", "9",
        "--max-key-bytes", "100", "--max-message-bytes", "200",
        "--max-property-key-bytes", "30", "--max-property-value-bytes", "40",
        "--max-content-bytes", "5000", "--max-operations", "7"])
    assert result.exit_code == 0, result.output
    ctx = seen["app"].state.ctx
    assert ctx.limits == Limits(1000, 2000, 9, 100, 200, 30, 40, 5000, 7)
    assert ctx.store.limits == ctx.limits
    assert seen["h11_max_incomplete_event_size"] == 2000 and seen["http"] == "h11"
    result = CliRunner().invoke(cli, ["serve", "--max-body-bytes", "0"])
    assert result.exit_code == 1 and "--max-body-bytes" in result.output


# ---- outcome unknown and keep-alive ----------------------------------------------------------
def local_port(response: httpx.Response) -> int:
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_errors_keep_the_connection_alive(server: EmbeddedServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(server.store, "list_refs", broken)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        first = client.get("/api/v1/refs")
        assert "internal error (RuntimeError)" in api_error(first, 500, "LAKEVERSION_ERROR")
        assert "boom" not in first.text  # no trace, no exception text
        port = local_port(first)
        answers = [client.get("/api/v1/resolve", params={"ref": "main~x"}),
                   client.post("/iceberg/v1/main/namespaces", content=b"[" * 1000),
                   client.get("/iceberg/v1/main/namespaces/nope"),
                   client.get("/api/v1/refs"),
                   client.get("/api/v1/resolve", params={"ref": "main"})]
        assert [r.status_code for r in answers] == [400, 400, 404, 500, 200]
        assert {local_port(r) for r in answers} == {port}  # one connection throughout


def test_outcome_unknown_only_when_the_store_commit_fails(server: EmbeddedServer,
                                                          ice: httpx.Client,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from spark_lakeversion.formats.iceberg.catalog.namespaces import NamespaceService

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:  # a failure before any commit: a plain 500
        patch.setattr(NamespaceService, "update_namespace", broken)
        r = ice.post("/namespaces/db/properties", json={"updates": {"k": "v"}})
        assert "internal error" in iceberg_error(r, 500, "ServiceFailureException")
    with monkeypatch.context() as patch:  # the store commit itself failed: unknown
        patch.setattr(server.store, "commit_with", broken)
        r = ice.post("/namespaces/db/properties", json={"updates": {"k": "v"}})
        assert "may or may not have landed" in iceberg_error(r, 503,
                                                             "CommitStateUnknownException")
        r = httpx.post(server.api_url + "/commits", json=commit_body())
        assert "may or may not have landed" in api_error(r, 503, "COMMIT_OUTCOME_UNKNOWN")
