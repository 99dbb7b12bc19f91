"""Iceberg views on refs through pyiceberg's stock RestCatalog and the spec's own requests:
create, load, replace, rename, drop, list, exists, register-view; `db@ref` addressing; merge
at view level; gc keeps the metadata files every retained view state points at."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyiceberg.exceptions import (
    BadRequestError,
    NoSuchNamespaceError,
    NoSuchViewError,
    TableAlreadyExistsError,
    ViewAlreadyExistsError,
)
from pyiceberg.schema import Schema
from pyiceberg.view.metadata import ViewVersion

from spark_lakeversion.formats.iceberg.codes import ICEBERG_VIEW
from spark_lakeversion.model import Key
from spark_lakeversion.server.embedded import EmbeddedServer
from tests.lake import ID_ICEBERG
from tests.server.helpers import api_error, iceberg_error, written


def version(sql: str, schema_id: int = 0, **extra: Any) -> ViewVersion:
    return ViewVersion.model_validate({
        "version-id": 1, "schema-id": schema_id, "timestamp-ms": int(time.time() * 1000),
        "summary": {"engine-name": "test"}, "default-namespace": ["db"],
        "representations": [{"type": "sql", "sql": sql, "dialect": "spark"}], **extra})


def sql_of(view: Any) -> str:
    metadata = view.metadata
    current = next(v for v in metadata.versions if v.version_id == metadata.current_version_id)
    return str(current.representations[0].root.sql)


def replace_body(uuid: str, sql: str, *, schema: Schema = ID_ICEBERG) -> dict[str, Any]:
    """A replace as Iceberg's Java client sends it (CREATE OR REPLACE VIEW)."""
    return {"requirements": [{"type": "assert-view-uuid", "uuid": uuid}],
            "updates": [
                {"action": "add-schema", "schema": schema.model_dump(by_alias=True)},
                {"action": "add-view-version",
                 "view-version": version(sql, schema_id=-1).model_dump(by_alias=True)},
                {"action": "set-current-view-version", "view-version-id": -1}]}


def view_url(server: EmbeddedServer, name: str, prefix: str = "main",
             namespace: str = "db") -> str:
    return f"{server.iceberg_uri}/v1/{prefix}/namespaces/{namespace}/views/{name}"


@pytest.fixture
def cat(server: EmbeddedServer, rest_catalog: Callable[..., Any]) -> Any:
    cat = rest_catalog(server)
    cat.create_namespace("db")
    httpx.post(server.api_url + "/refs", json={"name": "dev"}).raise_for_status()
    return cat


def test_pyiceberg_view_calls_on_two_branches(server: EmbeddedServer, cat: Any,
                                              rest_catalog: Callable[..., Any]) -> None:
    created = cat.create_view("db.v", ID_ICEBERG, version("SELECT 1 AS id"),
                              properties={"owner": "ann"})
    assert created.metadata.properties == {"owner": "ann"}
    assert cat.view_exists("db.v") and not cat.view_exists("db.nope")
    assert cat.list_views("db") == [("db", "v")]
    assert sql_of(cat.load_view("db.v")) == "SELECT 1 AS id"
    with pytest.raises(ViewAlreadyExistsError):
        cat.create_view("db.v", ID_ICEBERG, version("SELECT 2 AS id"))
    with pytest.raises(NoSuchViewError):
        cat.load_view("db.nope")
    with pytest.raises(NoSuchNamespaceError):
        cat.list_views("nope")
    # dev branched before the view: it is not there, and db@dev writes go to dev only
    assert not cat.view_exists("db@dev.v")
    cat.create_view("db@dev.w", ID_ICEBERG, version("SELECT 3 AS id"))
    dev = rest_catalog(server, warehouse="dev")
    assert dev.list_views("db") == [("db", "w")] and cat.list_views("db") == [("db", "v")]
    assert sql_of(dev.load_view("db.w")) == "SELECT 3 AS id"
    # a view is not a table, and a table and a view never share a key
    assert cat.list_tables("db") == []
    with pytest.raises(TableAlreadyExistsError):
        cat.create_table("db.v", schema=ID_ICEBERG)
    cat.create_table("db.t", schema=ID_ICEBERG)
    with pytest.raises(ViewAlreadyExistsError):
        cat.create_view("db.t", ID_ICEBERG, version("SELECT 1 AS id"))
    iceberg_error(httpx.get(f"{server.iceberg_uri}/v1/main/namespaces/db/tables/v"),
                  404, "NoSuchTableException")
    cat.drop_view("db.v")
    assert not cat.view_exists("db.v") and dev.view_exists("db.w")
    with pytest.raises(NoSuchViewError):
        cat.drop_view("db.v")


def test_replace_rename_and_register(server: EmbeddedServer, cat: Any) -> None:
    view = cat.create_view("db.v", ID_ICEBERG, version("SELECT 1 AS id"))
    first = server.store.get_content("main", Key.of("db.v")).fields["metadata_location"]
    r = httpx.post(view_url(server, "v"), json=replace_body(view.metadata.view_uuid,
                                                           "SELECT 2 AS id"))
    assert r.status_code == 200, r.text
    replaced = r.json()
    assert replaced["metadata"]["current-version-id"] == 2
    assert [v["version-id"] for v in replaced["metadata"]["version-log"]] == [1, 2]
    assert sql_of(cat.load_view("db.v")) == "SELECT 2 AS id"
    assert replaced["metadata-location"] != first
    # replacing with the first definition again reuses version 1 (the reference rule)
    again = httpx.post(view_url(server, "v"), json=replace_body(view.metadata.view_uuid,
                                                               "SELECT 1 AS id")).json()
    assert again["metadata"]["current-version-id"] == 1
    assert len(again["metadata"]["versions"]) == 2
    # a stale UUID is a failed requirement
    iceberg_error(httpx.post(view_url(server, "v"), json=replace_body(
        "00000000-0000-0000-0000-000000000000", "SELECT 9 AS id")), 409,
        "CommitFailedException")
    # rename within the branch; db@dev addresses dev from any prefix
    httpx.post(server.api_url + "/refs",
               json={"name": "dev2", "from": "main"}).raise_for_status()
    rename = {"source": {"namespace": ["db@dev2"], "name": "v"},
              "destination": {"namespace": ["db@dev2"], "name": "w"}}
    r = httpx.post(f"{server.iceberg_uri}/v1/main/views/rename", json=rename)
    assert r.status_code == 204, r.text
    assert cat.list_views("db@dev2") == [("db@dev2", "w")]
    assert cat.list_views("db") == [("db", "v")]
    # register-view: a metadata file under the roots becomes a view at another key, but
    # not one the catalog owns (on any ref): its views move by merge
    located = replaced["metadata-location"]
    before = written(server)
    with pytest.raises(BadRequestError, match="register is for files the catalog does not"):
        cat.register_view("db.again", located)
    assert written(server) == before
    copy = Path(server.warehouse.removeprefix("file://")) / "outside" / "v.metadata.json"
    copy.parent.mkdir()
    metadata = json.loads(Path(located.removeprefix("file://")).read_text())
    copy.write_text(json.dumps({**metadata, "location": str(copy.parent),
                                "view-uuid": "5d1c1f34-6d3c-4b41-8a0c-7b1a3e2b9c01"}))
    registered = cat.register_view("db.again", str(copy))
    assert sql_of(registered) == "SELECT 2 AS id"
    with pytest.raises(ViewAlreadyExistsError):
        cat.register_view("db.again", str(copy))


def test_bad_view_requests_write_nothing(server: EmbeddedServer, cat: Any,
                                         tmp_path: Path) -> None:
    view = cat.create_view("db.v", ID_ICEBERG, version("SELECT 1 AS id"))
    uuid = view.metadata.view_uuid
    create = {"name": "x", "schema": ID_ICEBERG.model_dump(by_alias=True),
              "view-version": version("SELECT 1").model_dump(by_alias=True)}
    base = f"{server.iceberg_uri}/v1/main/namespaces/db"
    httpx.post(server.api_url + "/refs", json={"name": "v1", "type": "TAG"}).raise_for_status()
    before = written(server)
    cases = [
        (httpx.post(base + "/views", json={**create, "name": "a/b"}), 400,
         "BadRequestException", "contains '/'"),
        (httpx.post(base + "/views", json={**create, "location": "/etc/x"}), 400,
         "BadRequestException", "outside the allowed locations"),
        (httpx.post(base + "/views", json={"name": "x"}), 400, "BadRequestException",
         "schema"),
        (httpx.post(view_url(server, "v"), json={"updates": [{"action": "explode"}]}), 400,
         "BadRequestException", "invalid request body"),
        (httpx.post(view_url(server, "v"), json={"updates": [
            {"action": "set-current-view-version", "view-version-id": 7}]}), 400,
         "BadRequestException", "view version 7 does not exist"),
        (httpx.post(view_url(server, "v"), json={"updates": [
            {"action": "add-view-version", "view-version": version(
                "SELECT 5", schema_id=-1).model_dump(by_alias=True)}]}), 400,
         "BadRequestException", "no schema was added"),
        (httpx.post(view_url(server, "v"), json={"updates": [
            {"action": "set-location", "location": "/tmp/elsewhere"}]}), 400,
         "BadRequestException", "outside the allowed locations"),
        (httpx.post(view_url(server, "v"), json={"updates": [
            {"action": "assign-uuid", "uuid": "00000000-0000-0000-0000-000000000001"}]}),
         400, "BadRequestException", "UUID cannot change"),
        (httpx.post(base + "/register-view", json={"name": "r",
                                                   "metadata-location": "/etc/passwd"}),
         400, "BadRequestException", "not a readable Iceberg view metadata file"),
        (httpx.post(base + "/register-view", json={"name": "r", "metadata-location": str(
            server.warehouse) + "/nope.json"}), 400, "BadRequestException",
         "not a readable Iceberg view metadata file"),
        (httpx.post(f"{server.iceberg_uri}/v1/main/views/rename", json={
            "source": {"namespace": ["db"], "name": "v"},
            "destination": {"namespace": ["db@dev"], "name": "v"}}), 400,
         "BadRequestException", "rename must stay on one branch"),
        (httpx.delete(view_url(server, "nope")), 404, "NoSuchViewException",
         "View does not exist: db.nope"),
    ]
    for response, status, type_, words in cases:
        assert words in iceberg_error(response, status, type_)
    iceberg_error(httpx.post(view_url(server, "v", prefix="v1"),
                             json=replace_body(uuid, "SELECT 3")), 403, "ForbiddenException")
    assert written(server) == before


def test_api_commits_validate_view_contents(server: EmbeddedServer, cat: Any) -> None:
    view = cat.create_view("db.v", ID_ICEBERG, version("SELECT 1 AS id"))
    content = server.store.get_content("main", Key.of("db.v"))
    assert content is not None and content.type is ICEBERG_VIEW
    assert content.id == view.metadata.view_uuid and content.fields["version_id"] == 1

    def put(key: str, body: dict[str, Any], branch: str = "main") -> httpx.Response:
        return httpx.post(server.api_url + "/commits", json={
            "branch": branch, "message": "put a view",
            "operations": [{"op": "put", "key": key.split("."), "content": body}]})

    copied = {k: v for k, v in content.to_dict().items() if k != "location"}
    # a view the catalog owns reaches a branch without it only by merge
    before = written(server)
    assert "reaches another branch by merge" in api_error(put("db.copy", copied, "dev"),
                                                          400, "LOCATION_NOT_ALLOWED")
    assert written(server) == before
    r = put("db.copy", copied)
    assert r.status_code == 201, r.text
    stored = server.store.get_content("main", Key.of("db.copy"))
    assert stored is not None and stored.fields["location"] == content.fields["location"]
    assert "is not the view UUID" in api_error(
        put("db.bad", {**copied, "id": "00000000-0000-0000-0000-000000000000"}),
        400, "INVALID_INPUT")
    assert "not a readable Iceberg view metadata file" in api_error(
        put("db.bad", {**copied, "metadata_location": "/etc/passwd"}), 400, "INVALID_INPUT")


def test_merge_at_view_level(server: EmbeddedServer, cat: Any,
                             rest_catalog: Callable[..., Any]) -> None:
    view = cat.create_view("db.v", ID_ICEBERG, version("SELECT 1 AS id"))
    uuid = view.metadata.view_uuid
    httpx.post(server.api_url + "/refs", json={"name": "a"}).raise_for_status()
    httpx.post(server.api_url + "/refs", json={"name": "b"}).raise_for_status()
    # only `a` changed it: merging fast-forwards the view
    httpx.post(view_url(server, "v", prefix="a"),
               json=replace_body(uuid, "SELECT 2 AS id")).raise_for_status()
    r = httpx.post(server.api_url + "/merge", json={"source": "a", "target": "main"})
    assert r.status_code == 200, r.text
    assert sql_of(cat.load_view("db.v")) == "SELECT 2 AS id"
    # `b` changed it to another definition: a conflict, main unchanged
    httpx.post(view_url(server, "v", prefix="b"),
               json=replace_body(uuid, "SELECT 3 AS id")).raise_for_status()
    r = httpx.post(server.api_url + "/merge", json={"source": "b", "target": "main"})
    message = api_error(r, 409, "CONFLICT")
    conflicts = r.json()["error"]["conflicts"]
    assert [(c["type"], c["key"]) for c in conflicts] == [("VALUE_DIFFERS", "db.v")]
    assert "view db.v was changed on both sides to different versions" in message
    assert sql_of(cat.load_view("db.v")) == "SELECT 2 AS id"
    # FORCE takes the source's version
    r = httpx.post(server.api_url + "/merge", json={"source": "b", "target": "main",
                                                    "behaviors": {"db.v": "FORCE"}})
    assert r.status_code == 200, r.text
    assert sql_of(cat.load_view("db.v")) == "SELECT 3 AS id"
    # both sides making the same change merges cleanly
    httpx.post(server.api_url + "/refs", json={"name": "c"}).raise_for_status()
    for prefix in ("c", "main"):
        httpx.post(view_url(server, "v", prefix=prefix),
                   json=replace_body(uuid, "SELECT 4 AS id")).raise_for_status()
    r = httpx.post(server.api_url + "/merge", json={"source": "c", "target": "main"})
    assert r.status_code == 200, r.text
    assert sql_of(rest_catalog(server).load_view("db.v")) == "SELECT 4 AS id"


def test_gc_keeps_the_metadata_files_of_retained_view_states(server: EmbeddedServer,
                                                             cat: Any) -> None:
    view = cat.create_view("db.v", ID_ICEBERG, version("SELECT 1 AS id"))
    uuid = view.metadata.view_uuid
    first = server.store.get_content("main", Key.of("db.v")).fields["metadata_location"]
    httpx.post(server.api_url + "/refs", json={"name": "keep", "type": "TAG"}
               ).raise_for_status()
    httpx.post(server.api_url + "/refs", json={"name": "side"}).raise_for_status()
    httpx.post(view_url(server, "v", prefix="side"), json=replace_body(
        uuid, "SELECT 2 AS id")).raise_for_status()
    on_main = httpx.post(view_url(server, "v"), json=replace_body(uuid, "SELECT 3 AS id"))
    on_main.raise_for_status()
    # a second view replaced on main only: its first file is held by no ref
    w = cat.create_view("db.w", ID_ICEBERG, version("SELECT 1 AS id"))
    w_first = server.store.get_content("main", Key.of("db.w")).fields["metadata_location"]
    httpx.post(view_url(server, "w"), json=replace_body(
        w.metadata.view_uuid, "SELECT 5 AS id")).raise_for_status()
    # a view dropped from the only branch that held it: its directory is listed, its file goes
    cat.create_view("db.gone", ID_ICEBERG, version("SELECT 6 AS id"))
    gone = server.store.get_content("main", Key.of("db.gone"))
    cat.drop_view("db.gone")
    warehouse = Path(server.warehouse.removeprefix("file://"))
    files = {p.as_uri() for p in warehouse.rglob("*") if p.is_file()}
    stamp = time.time() - 3 * 86400
    for uri in files:
        os.utime(uri.removeprefix("file://"), (stamp, stamp))
    r = httpx.post(server.api_url + "/gc", json={"older_than": "1d",
                                                 "keep_commits_since": "0s"})
    assert r.status_code == 200, r.text
    report = r.json()
    collected = {g["path"] for g in report["files"]}
    assert collected == {w_first, gone.fields["metadata_location"]}
    assert report["deleted_files"] == 2
    assert gone.fields["location"] in report["locations"]
    assert not report["skipped_tables"] and not report["errors"]
    kept = {p.as_uri() for p in warehouse.rglob("*") if p.is_file()}
    assert kept == files - collected
    assert first in kept  # the tag `keep` still points at it
    assert sql_of(cat.load_view("db.v")) == "SELECT 3 AS id"
    assert sql_of(cat.load_view("db@keep.v")) == "SELECT 1 AS id"
    assert sql_of(cat.load_view("db@side.v")) == "SELECT 2 AS id"
    assert sql_of(cat.load_view("db.w")) == "SELECT 5 AS id"


def test_rollback_and_time_travel_of_a_view(server: EmbeddedServer, cat: Any) -> None:
    view = cat.create_view("db.v", ID_ICEBERG, version("SELECT 1 AS id"))
    created_at = server.store.resolve("main").commit_id
    httpx.post(view_url(server, "v"), json=replace_body(view.metadata.view_uuid,
                                                        "SELECT 2 AS id")).raise_for_status()
    # a commit id or `main~1` reads the view as it was; they are read-only
    assert sql_of(cat.load_view(f"db@{created_at}.v")) == "SELECT 1 AS id"
    assert sql_of(cat.load_view("db@main~1.v")) == "SELECT 1 AS id"
    r = httpx.post(server.api_url + "/rollback", json={"branch": "main", "table": "db.v",
                                                       "to": created_at})
    assert r.status_code == 200, r.text
    assert sql_of(cat.load_view("db.v")) == "SELECT 1 AS id"
