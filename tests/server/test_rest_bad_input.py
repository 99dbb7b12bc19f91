"""Bad input at `/iceberg`: a typed error in Iceberg's model, never a 5xx, and nothing written.

Each test is a hand-written request found by a robustness sweep of the REST endpoints; "nothing
written" means no ref moved and no file appeared, in the warehouse or the server's working
directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from spark_lakeversion.server.embedded import EmbeddedServer
from tests.lake import ID_REST_JSON
from tests.server.helpers import create_table_updates


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The (in-process) server's working directory: a relative path would land here."""
    path = tmp_path / "cwd"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def ice(server: EmbeddedServer, cwd: Path) -> Iterator[httpx.Client]:
    """`/iceberg/v1/main` with namespace `db` and table `db.t`."""
    with httpx.Client(base_url=server.iceberg_uri + "/v1/main", timeout=60) as client:
        client.post("/namespaces", json={"namespace": ["db"]}).raise_for_status()
        client.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}
                    ).raise_for_status()
        yield client


def snapshot(server: EmbeddedServer, *dirs: Path) -> tuple[dict[str, str], set[Path]]:
    warehouse = Path(server.warehouse.removeprefix("file://"))
    return ({r.name: r.head for r in server.store.list_refs()},
            {p for d in (warehouse, *dirs) for p in d.rglob("*") if p.is_file()})


def iceberg_error(r: httpx.Response, status: int, type_: str) -> str:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()["error"]
    assert body["type"] == type_ and body["code"] == status, body
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def test_router_misses_answer_in_each_apis_error_model(server: EmbeddedServer) -> None:
    base = server.iceberg_uri + "/v1/main"
    # a control character in a namespace matches no route
    iceberg_error(httpx.get(base + "/namespaces/a%0Ab"), 404, "NotFoundException")
    iceberg_error(httpx.put(base + "/namespaces/db"), 405, "UnsupportedOperationException")
    iceberg_error(httpx.get(server.iceberg_uri + "/v2/anything"), 404, "NotFoundException")
    r = httpx.get(server.api_url + "/no-such-endpoint")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND" and r.json()["error"]["conflicts"] == []


def test_malformed_schema_type_is_400_not_500(server: EmbeddedServer, ice: httpx.Client,
                                              cwd: Path) -> None:
    before = snapshot(server, cwd)
    for bad_type in [{"type": "list"}, {"type": "map", "key": "string"},
                     {"type": "struct", "fields": [{"id": 2}]}]:
        schema = {"type": "struct",
                  "fields": [{"id": 1, "name": "a", "type": bad_type, "required": False}]}
        r = ice.post("/namespaces/db/tables", json={"name": "k", "schema": schema})
        iceberg_error(r, 400, "BadRequestException")
    assert snapshot(server, cwd) == before


def test_relative_table_location_is_refused(server: EmbeddedServer, ice: httpx.Client,
                                            cwd: Path) -> None:
    before = snapshot(server, cwd)
    r = ice.post("/namespaces/db/tables",
                 json={"name": "rel", "schema": ID_REST_JSON, "location": "relative/dir"})
    assert "absolute" in iceberg_error(r, 400, "BadRequestException")
    r = ice.post("/namespaces/db/tables/t",
                 json={"updates": [{"action": "set-location", "location": "elsewhere"}]})
    assert "absolute" in iceberg_error(r, 400, "BadRequestException")
    assert snapshot(server, cwd) == before
    assert not list(cwd.iterdir())


def test_unwritable_location_is_400_and_writes_nothing(server: EmbeddedServer,
                                                       ice: httpx.Client, cwd: Path,
                                                       tmp_path: Path) -> None:
    # a file in the way, inside the warehouse (a location outside it is refused earlier)
    blocker = Path(server.warehouse.removeprefix("file://")) / "a-file"
    blocker.write_text("not a directory")
    before = snapshot(server, cwd, tmp_path)
    for location, why in [("zz://bucket/t", "unsupported scheme 'zz'"),
                          (f"{blocker}/t", "cannot write table metadata")]:
        r = ice.post("/namespaces/db/tables",
                     json={"name": "x", "schema": ID_REST_JSON, "location": location})
        assert why in iceberg_error(r, 400, "BadRequestException")
        r = ice.post("/namespaces/db/tables/t",
                     json={"updates": [{"action": "set-location", "location": location}]})
        assert why in iceberg_error(r, 400, "BadRequestException")
    # in a transaction, the good change's metadata file goes too
    ice.post("/namespaces/db/tables", json={"name": "u", "schema": ID_REST_JSON}).raise_for_status()
    before = snapshot(server, cwd, tmp_path)
    change = {"identifier": {"namespace": ["db"], "name": "u"},
              "updates": [{"action": "set-properties", "updates": {"k": "v"}}]}
    bad = {"identifier": {"namespace": ["db"], "name": "t"},
           "updates": [{"action": "set-location", "location": f"{blocker}/t"}]}
    r = ice.post("/transactions/commit", json={"table-changes": [change, bad]})
    iceberg_error(r, 400, "BadRequestException")
    assert snapshot(server, cwd, tmp_path) == before


def test_register_refuses_relative_and_non_metadata_files(server: EmbeddedServer,
                                                          ice: httpx.Client, cwd: Path,
                                                          tmp_path: Path) -> None:
    secret = Path(server.warehouse.removeprefix("file://")) / "secret.txt"
    secret.write_text("top-secret-content\n")
    before = snapshot(server, cwd)
    r = ice.post("/namespaces/db/register", json={"name": "r", "metadata-location": str(secret)})
    message = iceberg_error(r, 400, "BadRequestException")
    assert "top-secret" not in message  # the error does not quote the file it read
    assert "not a readable Iceberg metadata file under the allowed locations" in message
    (cwd / "m.json").write_text("{}")
    r = ice.post("/namespaces/db/register", json={"name": "r", "metadata-location": "m.json"})
    assert iceberg_error(r, 400, "BadRequestException") == message.replace(str(secret), "m.json")
    (cwd / "m.json").unlink()
    assert snapshot(server, cwd) == before


def test_invalid_primitive_type_in_an_update_is_400(server: EmbeddedServer, ice: httpx.Client,
                                                    cwd: Path) -> None:
    before = snapshot(server, cwd)
    for bad_type in ["decimal(99,1)", "fixed[-1]"]:
        schema = {"type": "struct",
                  "fields": [{"id": 1, "name": "id", "type": bad_type, "required": False}]}
        r = ice.post("/namespaces/db/tables/t",
                     json={"updates": [{"action": "add-schema", "schema": schema}]})
        iceberg_error(r, 400, "BadRequestException")
    assert snapshot(server, cwd) == before


def test_commit_creating_a_table_without_schema_or_spec_is_400(server: EmbeddedServer,
                                                               ice: httpx.Client, cwd: Path,
                                                               tmp_path: Path) -> None:
    before = snapshot(server, cwd, tmp_path)
    for updates in [[], [{"action": "set-location", "location": str(tmp_path / "n")}]]:
        r = ice.post("/namespaces/db/tables/n",
                     json={"requirements": [{"type": "assert-create"}], "updates": updates})
        iceberg_error(r, 400, "BadRequestException")
    assert snapshot(server, cwd, tmp_path) == before


def test_no_table_is_created_in_a_missing_namespace(server: EmbeddedServer, ice: httpx.Client,
                                                    cwd: Path, tmp_path: Path) -> None:
    before = snapshot(server, cwd, tmp_path)
    location = server.warehouse + "/x"
    r = ice.post("/namespaces/nons/tables",
                 json={"name": "x", "schema": ID_REST_JSON, "location": location})
    iceberg_error(r, 404, "NoSuchNamespaceException")
    r = ice.post("/namespaces/nons/tables",
                 json={"name": "x", "schema": ID_REST_JSON, "location": location,
                       "stage-create": True})
    iceberg_error(r, 404, "NoSuchNamespaceException")
    create = [*create_table_updates(ID_REST_JSON),
              {"action": "set-location", "location": location}]
    r = ice.post("/namespaces/nons/tables/y",
                 json={"requirements": [{"type": "assert-create"}], "updates": create})
    iceberg_error(r, 404, "NoSuchNamespaceException")
    r = ice.post("/transactions/commit", json={"table-changes": [
        {"identifier": {"namespace": ["nons"], "name": "y"},
         "requirements": [{"type": "assert-create"}], "updates": create}]})
    iceberg_error(r, 404, "NoSuchNamespaceException")
    assert snapshot(server, cwd, tmp_path) == before
    # the same creation in an existing namespace works (the request itself is valid)
    r = ice.post("/namespaces/db/tables/y",
                 json={"requirements": [{"type": "assert-create"}], "updates": create})
    assert r.status_code == 200, r.text


def test_wrongly_shaped_update_fields_are_400(server: EmbeddedServer, ice: httpx.Client,
                                              cwd: Path) -> None:
    before = snapshot(server, cwd)
    # pyiceberg's validator calls `.items()` on it: AttributeError, not a pydantic error
    r = ice.post("/namespaces/db/tables/t",
                 json={"updates": [{"action": "set-properties", "updates": ["k", "v"]}]})
    iceberg_error(r, 400, "BadRequestException")
    r = ice.post("/transactions/commit", json={"table-changes": [
        {"identifier": {"namespace": ["db"], "name": "t"},
         "updates": [{"action": "set-properties", "updates": ["k", "v"]}]}]})
    iceberg_error(r, 400, "BadRequestException")
    assert snapshot(server, cwd) == before


def test_an_existing_tables_uuid_cannot_change(server: EmbeddedServer, ice: httpx.Client,
                                               cwd: Path) -> None:
    """The UUID is the table's identity across refs (merges rely on it)."""
    before = snapshot(server, cwd)
    r = ice.post("/namespaces/db/tables/t", json={"updates": [
        {"action": "assign-uuid", "uuid": "00000000-0000-0000-0000-000000000001"}]})
    assert "UUID cannot change" in iceberg_error(r, 400, "BadRequestException")
    assert snapshot(server, cwd) == before
    same = ice.get("/namespaces/db/tables/t").json()["metadata"]["table-uuid"]
    r = ice.post("/namespaces/db/tables/t", json={"updates": [
        {"action": "assign-uuid", "uuid": same}]})
    assert r.status_code == 200, r.text  # re-assigning the same UUID is harmless
