"""One rule set on every surface (issue 20): register, `/api/v1/commits` and Iceberg REST
refuse the same inputs with the same typed errors, name only the caller's own input, and a
refusal leaves the store and the warehouse byte for byte as they were."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.server.embedded import start_embedded_server
from tests.lake import ID_REST_JSON
from tests.server.access_helpers import write_auth_config
from tests.server.files import Site, plant
from tests.server.helpers import api_error, create_table_updates, iceberg_error
from tests.store.helpers import snapshot_of_store

ROWS = pa.table({"id": pa.array([1, 2], pa.int64())})
DELTA_SCHEMA = {"type": "struct", "fields": [
    {"name": "id", "type": "long", "nullable": True, "metadata": {}}]}
REGISTER_REFUSAL = "register is for files the catalog does not own yet"


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[tuple[Site, dict[str, str]]]:
    """A server with principals (tests/server/access_helpers.py: `etl` writes `etl-*` only)
    over warehouse `W`; `db.secret_t` exists only on `secret`, `db.t` on main."""
    root = tmp_path / "site"
    warehouse, extra, victim = plant(root)
    tokens = write_auth_config(tmp_path / "auth.toml")
    with start_embedded_server(f"sqlite:///{root / 'store.db'}", warehouse=str(warehouse),
                               allowed_locations=[str(extra)],
                               auth=load_auth_config(tmp_path / "auth.toml")) as server:
        site = Site(root, warehouse, extra, victim, server)
        admin = ice(site, tokens["admin"])
        admin.post("/namespaces", json={"namespace": ["db"]}).raise_for_status()
        admin.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}
                   ).raise_for_status()
        server.store.create_ref("etl-1")
        server.store.create_ref("secret")
        ice(site, tokens["admin"], "secret").post(
            "/namespaces/db/tables", json={"name": "secret_t", "schema": ID_REST_JSON}
        ).raise_for_status()
        yield site, tokens


def ice(site: Site, token: str, ref: str = "main") -> httpx.Client:
    return httpx.Client(base_url=f"{site.server.iceberg_uri}/v1/{ref}", timeout=60,
                        headers={"Authorization": f"Bearer {token}"})


def api(site: Site, token: str) -> httpx.Client:
    return httpx.Client(base_url=site.server.api_url, timeout=60,
                        headers={"Authorization": f"Bearer {token}"})


def unchanged(site: Site) -> tuple[dict[str, Any], dict[str, str]]:
    """Every store row (the audit trail aside: refusals are audited) and every file."""
    rows = snapshot_of_store(site.server.store)
    rows.pop("lv_audit", None)
    return rows, site.listing()


def loaded(client: httpx.Client, name: str) -> dict[str, Any]:
    r = client.get(f"/namespaces/db/tables/{name}")
    r.raise_for_status()
    return dict(r.json())


def put(client: httpx.Client, branch: str, key: list[str], content: dict[str, Any]
        ) -> httpx.Response:
    return client.post("/commits", json={"branch": branch, "message": "m", "operations": [
        {"op": "put", "key": key, "content": content}]})


def copy_metadata(site: Site, source: dict[str, Any], name: str, **changes: Any
                  ) -> tuple[str, str]:
    """A metadata file of a new table (fresh UUID, location `W/<name>`) made from a loaded
    table's metadata with `changes`; (its path, the UUID)."""
    table_uuid = str(uuid.uuid4())
    folder = site.warehouse / name / "metadata"
    folder.mkdir(parents=True)
    path = folder / "00000-copy.metadata.json"
    path.write_text(json.dumps({**source["metadata"], "table-uuid": table_uuid,
                                "location": f"{site.w}/{name}", **changes}))
    return str(path), table_uuid


# ---- 4. register-table / register-view refuse files the catalog owns ----------------------------
def test_register_refuses_another_refs_table_and_view(lake: tuple[Site, dict[str, str]]
                                                      ) -> None:
    site, tokens = lake
    admin_secret = ice(site, tokens["admin"], "secret")
    secret_file = loaded(admin_secret, "secret_t")["metadata-location"]
    view = admin_secret.post("/namespaces/db/views", json={
        "name": "secret_v", "schema": ID_REST_JSON, "view-version": {
            "version-id": 1, "timestamp-ms": 1, "schema-id": 0, "summary": {},
            "default-namespace": ["db"], "representations": [
                {"type": "sql", "sql": "SELECT 1 AS id", "dialect": "spark"}]}})
    assert view.status_code == 200, view.text
    view_file = view.json()["metadata-location"]
    etl = ice(site, tokens["etl"], "etl-1")
    assert etl.get("/namespaces/db@secret/tables/secret_t").status_code == 403
    before = unchanged(site)
    for route, name, location in [("register", "copy", secret_file),
                                  ("register-view", "copy_v", view_file)]:
        r = etl.post(f"/namespaces/db/{route}", json={"name": name,
                                                      "metadata-location": location})
        message = iceberg_error(r, 400, "BadRequestException")
        assert REGISTER_REFUSAL in message
        assert "secret" not in message.replace(location, "")  # only the caller's input
    # nor through /api/v1/commits: a put of the table's own state on a ref without it
    secret_state = api(site, tokens["admin"]).post("/contents/lookup", json={
        "ref": "secret", "keys": [["db", "secret_t"]]}).json()["entries"][0]["content"]
    message = api_error(put(api(site, tokens["etl"]), "etl-1", ["db", "copy"], secret_state),
                        400, "LOCATION_NOT_ALLOWED")
    assert message.startswith("put db.copy: table id ") and "reaches another branch by " \
        "merge" in message
    # also on the table's own ref, with overwrite: the catalog's tables move by merge
    r = ice(site, tokens["admin"], "secret").post("/namespaces/db/register", json={
        "name": "secret_t", "metadata-location": secret_file, "overwrite": True})
    assert REGISTER_REFUSAL in iceberg_error(r, 400, "BadRequestException")
    assert unchanged(site) == before
    assert etl.get("/namespaces/db/tables/copy").status_code == 404


# ---- 5. /api/v1/commits gets exactly the validation Iceberg REST gives --------------------------
@pytest.mark.parametrize("prop", ["write.data.path", "write.metadata.path",
                                  "write.object-storage.path"])
def test_write_paths_inside_another_table_are_refused_on_every_surface(
        lake: tuple[Site, dict[str, str]], prop: str) -> None:
    site, tokens = lake
    admin = ice(site, tokens["admin"])
    victim = loaded(admin, "t")
    inside = f"{victim['metadata']['location']}/data"
    path, table_uuid = copy_metadata(site, victim, "mine", properties={prop: inside})
    content = {"type": "ICEBERG_TABLE", "id": table_uuid, "metadata_location": path}
    before = unchanged(site)
    # /api/v1/commits
    message = api_error(put(api(site, tokens["admin"]), "main", ["db", "mine"], content),
                        400, "LOCATION_NOT_ALLOWED")
    assert message == (f"table db.mine property {prop} {inside!r} overlaps the location of "
                       "another table: tables never share files; choose another location")
    # Iceberg REST: create with the property, and a commit setting it (the same message,
    # behind the code marker Iceberg clients keep)
    r = admin.post("/namespaces/db/tables", json={"name": "u", "schema": ID_REST_JSON,
                                                  "properties": {prop: inside}})
    assert iceberg_error(r, 400, "BadRequestException") == (
        "[LAKEVERSION:LOCATION_NOT_ALLOWED] " + message.replace("db.mine", "db.u"))
    r = admin.post("/namespaces/db/tables/t", json={"updates": [
        {"action": "set-properties", "updates": {prop: f"{site.w}/db"}}]})
    assert "overlaps the location of another table" in iceberg_error(
        r, 400, "BadRequestException")
    assert unchanged(site) == before


def test_statistics_paths_are_checked_on_every_surface(lake: tuple[Site, dict[str, str]]
                                                       ) -> None:
    from pyiceberg.catalog.rest import RestCatalog

    site, tokens = lake
    RestCatalog("a", uri=site.server.iceberg_uri, token=tokens["admin"]
                ).load_table("db.t").append(ROWS)
    admin = ice(site, tokens["admin"])
    table = loaded(admin, "t")
    snapshot = table["metadata"]["current-snapshot-id"]
    stats = {"snapshot-id": snapshot, "statistics-path": "/etc/passwd",
             "file-size-in-bytes": 1, "file-footer-size-in-bytes": 1, "blob-metadata": []}
    partition_stats = {"snapshot-id": snapshot, "statistics-path": "/etc/passwd",
                       "file-size-in-bytes": 1}
    before = unchanged(site)
    for update in ({"action": "set-statistics", "snapshot-id": snapshot, "statistics": stats},
                   {"action": "set-partition-statistics",
                    "partition-statistics": partition_stats}):
        r = admin.post("/namespaces/db/tables/t", json={"updates": [update]})
        assert "statistics-path" in iceberg_error(r, 400, "BadRequestException")
    for field, value in (("statistics", [stats]), ("partition-statistics", [partition_stats])):
        path, table_uuid = copy_metadata(site, table, f"stats_{field}", **{field: value})
        r = put(api(site, tokens["admin"]), "main", ["db", "s"],
                {"type": "ICEBERG_TABLE", "id": table_uuid, "metadata_location": path})
        assert "statistics-path" in api_error(r, 400, "LOCATION_NOT_ALLOWED")
        before[1].update({f: h for f, h in site.listing().items() if f"stats_{field}" in f})
    assert unchanged(site) == before
    # a statistics file under the warehouse is accepted (REST)
    inside = {**stats, "statistics-path": f"{site.w}/db/stats.puffin"}
    r = admin.post("/namespaces/db/tables/t", json={"updates": [
        {"action": "set-statistics", "snapshot-id": snapshot, "statistics": inside}]})
    assert r.status_code == 200, r.text


def test_delta_roots_may_not_cover_another_table(lake: tuple[Site, dict[str, str]]) -> None:
    site, tokens = lake
    client = api(site, tokens["admin"])
    created = client.post("/delta/create", json={"table": "db.events", "schema": DELTA_SCHEMA})
    assert created.status_code == 201, created.text
    content = client.post("/contents/lookup", json={"ref": "main", "keys": [["db", "events"]]}
                          ).json()["entries"][0]["content"]
    before = unchanged(site)
    # its id and location, with the warehouse as root: the root covers every table
    r = put(client, "main", ["db", "thief"], {**content, "root": site.w})
    message = api_error(r, 400, "LOCATION_NOT_ALLOWED")
    assert message == (f"table db.thief root {site.w!r} overlaps the location of another "
                       "table: tables never share files; choose another location")
    assert unchanged(site) == before


# ---- 6. leaks and leftovers --------------------------------------------------------------------
def test_overlap_refusals_name_only_the_callers_input(lake: tuple[Site, dict[str, str]]
                                                      ) -> None:
    site, tokens = lake
    secret = loaded(ice(site, tokens["admin"], "secret"), "secret_t")["metadata"]
    etl = ice(site, tokens["etl"], "etl-1")
    before = unchanged(site)
    r = etl.post("/namespaces/db/tables", json={"name": "ov", "schema": ID_REST_JSON,
                                                "location": f"{site.w}/db"})
    message = iceberg_error(r, 400, "BadRequestException")
    assert message == (f"[LAKEVERSION:LOCATION_NOT_ALLOWED] table db.ov location '{site.w}/db' "
                       "overlaps the location of "
                       "another table: tables never share files; choose another location")
    assert secret["table-uuid"] not in message and secret["location"] not in message
    # the same through /api/v1/commits: a new table whose location holds `secret`'s
    path, table_uuid = copy_metadata(site, {"metadata": secret}, "ov",
                                     location=f"{site.w}/db")
    before = unchanged(site)
    r = put(api(site, tokens["etl"]), "etl-1", ["db", "ov"],
            {"type": "ICEBERG_TABLE", "id": table_uuid, "metadata_location": path})
    marker = "[LAKEVERSION:LOCATION_NOT_ALLOWED] "  # what only Iceberg clients need
    assert marker + api_error(r, 400, "LOCATION_NOT_ALLOWED") == message
    assert unchanged(site) == before


def test_refused_creates_leave_no_directory(lake: tuple[Site, dict[str, str]]) -> None:
    site, tokens = lake
    client = api(site, tokens["admin"])
    assert client.post("/branches/protect", json={"name": "main"}).status_code == 200
    admin = ice(site, tokens["admin"])
    before = unchanged(site)
    dirs = {p for p in site.warehouse.rglob("*") if p.is_dir()}
    view = {"name": "v", "schema": ID_REST_JSON, "view-version": {
        "version-id": 1, "timestamp-ms": 1, "schema-id": 0, "summary": {},
        "default-namespace": ["db"], "representations": [
            {"type": "sql", "sql": "SELECT 1 AS id", "dialect": "spark"}]}}
    for _ in range(2):
        iceberg_error(admin.post("/namespaces/db/views", json=view), 403,
                      "ForbiddenException")
        iceberg_error(admin.post("/namespaces/db/tables",
                                 json={"name": "n", "schema": ID_REST_JSON}),
                      403, "ForbiddenException")
    assert {p for p in site.warehouse.rglob("*") if p.is_dir()} == dirs
    assert unchanged(site) == before


def test_removing_served_properties_is_a_clear_400(lake: tuple[Site, dict[str, str]]) -> None:
    site, tokens = lake
    admin = ice(site, tokens["admin"])
    assert loaded(admin, "t")["metadata"]["properties"]["gc.enabled"] == "false"
    before = unchanged(site)
    r = admin.post("/namespaces/db/tables/t", json={"updates": [
        {"action": "remove-properties", "removals": ["gc.enabled"]}]})
    message = iceberg_error(r, 400, "BadRequestException")
    assert message.startswith("cannot remove property 'gc.enabled' of db.t: the server sets "
                              "it on every table it serves")
    assert unchanged(site) == before
    # a property the table does not have is ignored, as Iceberg's reference catalog does
    r = admin.post("/namespaces/db/tables/t", json={"updates": [
        {"action": "remove-properties", "removals": ["never.set"]},
        {"action": "set-properties", "updates": {"k": "v"}}]})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["properties"]["k"] == "v"


def test_create_updates_reach_the_same_rules(lake: tuple[Site, dict[str, str]]) -> None:
    """A create through a commit (Java's create transaction) checks write paths too."""
    site, tokens = lake
    admin = ice(site, tokens["admin"])
    victim = loaded(admin, "t")["metadata"]["location"]
    before = unchanged(site)
    r = admin.post("/namespaces/db/tables/c", json={
        "requirements": [{"type": "assert-create"}],
        "updates": [*create_table_updates(ID_REST_JSON),
                    {"action": "set-location", "location": f"{site.w}/db/c_1"},
                    {"action": "set-properties", "updates": {"write.data.path": victim}}]})
    assert "overlaps the location of another table" in iceberg_error(
        r, 400, "BadRequestException")
    assert unchanged(site) == before
