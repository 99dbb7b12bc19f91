"""Issue 9, catalog side: no client can make the server read, write or delete a file outside
its allowed roots, or delete a file this request did not create.

Every test runs a real server over a warehouse `W` (plus one `--allowed-location`, `extra`)
next to a `victim` directory holding planted old files, and asserts what the client sees
(status, Iceberg error type, message) *and* that no pre-existing file changed or vanished.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from pyiceberg.exceptions import BadRequestError

from spark_lakeversion.locations import OUTSIDE_ROOTS, OVERLAPS
from tests.lake import ID_REST_JSON
from tests.server.files import Site
from tests.server.helpers import create_table_updates

UNREADABLE = "not a readable Iceberg metadata file under the allowed locations"


def ice(site: Site, ref: str = "main") -> httpx.Client:
    return httpx.Client(base_url=f"{site.server.iceberg_uri}/v1/{ref}", timeout=60)


def error(r: httpx.Response, status: int = 400, type_: str = "BadRequestException") -> str:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()["error"]
    assert body["type"] == type_ and body["code"] == status, body
    return str(body["message"])


def catalog(site: Site) -> Any:
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog("lv", uri=site.server.iceberg_uri)


@pytest.fixture
def db(site: Site) -> httpx.Client:
    client = ice(site)
    client.post("/namespaces", json={"namespace": ["db"]}).raise_for_status()
    return client


def table_dir(client: httpx.Client, name: str) -> Path:
    r = client.get(f"/namespaces/db/tables/{name}")
    r.raise_for_status()
    return Path(urlparse(r.json()["metadata"]["location"]).path)


def metadata_file(client: httpx.Client, name: str) -> Path:
    r = client.get(f"/namespaces/db/tables/{name}")
    r.raise_for_status()
    return Path(urlparse(r.json()["metadata-location"]).path)


# ---- 1. `?` and `#` never delete existing files --------------------------------------------
def test_question_mark_location_does_not_delete_the_file_it_points_at(
        site: Site, db: httpx.Client) -> None:
    before = site.listing()
    for location in [f"file://{site.victim}/secret.txt?", f"{site.w}/zz?",
                     f"{site.w}/db/t#frag", f"{site.w}/a%2F..%2F..%2Fvictim"]:
        r = db.post("/namespaces/db/tables",
                    json={"name": "zz", "location": location, "schema": ID_REST_JSON})
        assert "may not contain ? # % \\ or control characters" in error(r)
    with pytest.raises(BadRequestError, match="may not contain"):
        catalog(site).create_table("db.zz", schema=_schema(),
                                   location=f"file://{site.victim}/secret.txt?")
    assert site.listing() == before
    assert (site.victim / "secret.txt").read_text() == "old secret\n"


def test_a_table_name_cannot_point_at_another_tables_metadata_file(
        site: Site, db: httpx.Client) -> None:
    db.post("/namespaces/db/tables", json={"name": "victim", "schema": ID_REST_JSON}
            ).raise_for_status()
    current = metadata_file(db, "victim")
    evil = f"{current.parent.parent.name}/metadata/{current.name}#"
    httpx.post(site.server.api_url + "/refs", json={"name": "dev"}).raise_for_status()
    before = site.listing()
    for client in (db, ice(site, "dev")):  # any branch: branches share files
        r = client.post("/namespaces/db/tables", json={"name": evil, "schema": ID_REST_JSON})
        message = error(r)
        assert "table name" in message and "'#/'" in message
    with pytest.raises(BadRequestError, match="table name"):
        catalog(site).create_table(("db", evil), schema=_schema())
    assert site.listing() == before
    assert metadata_file(db, "victim") == current and current.is_file()


def test_write_metadata_path_with_a_question_mark_is_refused(
        site: Site, db: httpx.Client) -> None:
    db.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}).raise_for_status()
    before = site.listing()
    for value in [f"file://{site.victim}/file.txt?", f"{site.w}/db/file.txt?"]:
        r = db.post("/namespaces/db/tables/t", json={"updates": [
            {"action": "set-properties", "updates": {"write.metadata.path": value}}]})
        assert "may not contain" in error(r)
    table = catalog(site).load_table("db.t")
    with pytest.raises(BadRequestError, match="may not contain"), table.transaction() as tx:
        tx.set_properties({"write.metadata.path": f"file://{site.victim}/file.txt?"})
    assert site.listing() == before


def test_names_with_question_marks_are_refused_so_they_cannot_collide(
        site: Site, db: httpx.Client) -> None:
    before = site.listing()
    for name in ["a?1", "a?2", "a#1", "50%", "a\\b", "x/y", ".", "..", "tab\tname", "nul\x00"]:
        r = db.post("/namespaces/db/tables", json={"name": name, "schema": ID_REST_JSON})
        assert "table name" in error(r), name
    assert site.listing() == before
    assert db.get("/namespaces/db/tables").json()["identifiers"] == []


# ---- 2. names cannot escape the warehouse ---------------------------------------------------
@pytest.mark.parametrize("namespace", [["a/../../b"], ["..", "b"], ["ok", "."], ["a#b"],
                                       ["a%2e"], ["a?b"], ["back\\slash"]])
def test_unsafe_namespace_levels_are_refused(site: Site, namespace: list[str]) -> None:
    before = site.listing()
    r = ice(site).post("/namespaces", json={"namespace": namespace})
    assert "namespace level" in error(r)
    assert site.listing() == before
    assert ice(site).get("/namespaces").json()["namespaces"] == []


def test_unsafe_table_names_are_refused_on_every_creating_route(
        site: Site, db: httpx.Client) -> None:
    db.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}).raise_for_status()
    good = metadata_file(db, "t")
    before = site.listing()
    heads = {r.name: r.head for r in site.server.store.list_refs()}
    evil = "../../escape"
    r = db.post("/namespaces/db/tables", json={"name": evil, "schema": ID_REST_JSON,
                                               "stage-create": True})
    assert "table name" in error(r)
    r = db.post("/namespaces/db/register",
                json={"name": evil, "metadata-location": f"file://{good}"})
    assert "table name" in error(r)
    r = db.post("/tables/rename", json={"source": {"namespace": ["db"], "name": "t"},
                                        "destination": {"namespace": ["db"], "name": evil}})
    assert "table name" in error(r)
    r = db.post("/namespaces/db/tables/a%23b", json={  # `a#b`, created by a commit
        "requirements": [{"type": "assert-create"}], "updates": []})
    assert "table name 'a#b'" in error(r)
    assert site.listing() == before
    assert {r.name: r.head for r in site.server.store.list_refs()} == heads
    assert not (site.root / "escape").exists()


def test_unicode_names_keep_working(site: Site) -> None:
    client = ice(site)
    client.post("/namespaces", json={"namespace": ["données"]}).raise_for_status()
    r = client.post("/namespaces/données/tables",
                    json={"name": "tábla_ü 1", "schema": ID_REST_JSON})
    assert r.status_code == 200, r.text
    location = Path(urlparse(r.json()["metadata"]["location"]).path)
    assert location.parent == site.warehouse / "données"
    assert location.name.startswith("tábla_ü 1_")


# ---- 3. allowed roots ---------------------------------------------------------------------
def test_every_client_location_must_lie_under_an_allowed_root(
        site: Site, db: httpx.Client) -> None:
    db.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}).raise_for_status()
    outside = f"file://{site.victim}/t"
    roots = f"{site.w}, file://{site.extra}"
    before = site.listing()
    heads = {r.name: r.head for r in site.server.store.list_refs()}

    def refused(r: httpx.Response) -> None:
        message = error(r)
        assert OUTSIDE_ROOTS in message and roots in message, message

    refused(db.post("/namespaces/db/tables",
                    json={"name": "x", "schema": ID_REST_JSON, "location": outside}))
    refused(db.post("/namespaces/db/tables",
                    json={"name": "x", "schema": ID_REST_JSON, "location": outside,
                          "stage-create": True}))
    refused(db.post("/namespaces/db/tables", json={
        "name": "x", "schema": ID_REST_JSON, "properties": {"write.data.path": outside}}))
    refused(ice(site).post("/namespaces", json={"namespace": ["ns2"],
                                                "properties": {"location": outside}}))
    refused(db.post("/namespaces/db/properties", json={"updates": {"location": outside}}))
    refused(db.post("/namespaces/db/tables/t", json={"updates": [
        {"action": "set-location", "location": outside}]}))
    for prop in ["write.data.path", "write.metadata.path", "write.object-storage.path"]:
        refused(db.post("/namespaces/db/tables/t", json={"updates": [
            {"action": "set-properties", "updates": {prop: outside}}]}))
    refused(db.post("/transactions/commit", json={"table-changes": [
        {"identifier": {"namespace": ["db"], "name": "t"},
         "updates": [{"action": "set-location", "location": "/etc"}]}]}))
    # a table exactly at a root would own every other table's files
    r = db.post("/namespaces/db/tables", json={"name": "x", "schema": ID_REST_JSON,
                                               "location": site.w})
    assert "inside (not at)" in error(r)
    assert site.listing() == before
    assert {r.name: r.head for r in site.server.store.list_refs()} == heads


def test_locations_under_an_extra_allowed_root_work(site: Site, db: httpx.Client) -> None:
    before = site.listing()
    cat = catalog(site)
    table = cat.create_table("db.x", schema=_schema(), location=f"file://{site.extra}/x")
    import pyarrow as pa

    table.append(pa.table({"id": pa.array([1, 2], pa.int64())}))
    assert cat.load_table("db.x").scan().to_arrow().num_rows == 2
    new = site.new_files(before)
    assert new and all(p.startswith(f"{site.extra}/x/") for p in new)
    # a namespace location under a root: its tables go there, named by the one builder
    ice(site).post("/namespaces", json={"namespace": ["n2"], "properties": {
        "location": f"file://{site.extra}/n2"}}).raise_for_status()
    r = ice(site).post("/namespaces/n2/tables", json={"name": "y", "schema": ID_REST_JSON})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["location"].startswith(f"file://{site.extra}/n2/y_")


# ---- 4. no overlap between tables ------------------------------------------------------------
def test_a_location_cannot_overlap_another_tables_on_any_ref(
        site: Site, db: httpx.Client) -> None:
    a = f"{site.w}/shared/a"
    db.post("/namespaces/db/tables", json={"name": "a", "schema": ID_REST_JSON, "location": a}
            ).raise_for_status()
    httpx.post(site.server.api_url + "/refs", json={"name": "dev"}).raise_for_status()
    # drop it on main: its files live on in history and on dev, so it still owns them
    db.delete("/namespaces/db/tables/a").raise_for_status()
    before = site.listing()
    for client in (db, ice(site, "dev")):
        for location in [a, f"{a}/sub", f"{site.w}/shared", f"file:{site.warehouse}/shared/a/"]:
            r = client.post("/namespaces/db/tables",
                            json={"name": "b", "schema": ID_REST_JSON, "location": location})
            assert OVERLAPS in error(r), location
    dev = ice(site, "dev")
    dev.post("/namespaces/db/tables", json={"name": "c", "schema": ID_REST_JSON}).raise_for_status()
    r = dev.post("/namespaces/db/tables/c", json={"updates": [
        {"action": "set-location", "location": f"{a}/inside"}]})
    assert OVERLAPS in error(r)
    r = dev.post("/namespaces/db/tables/c", json={"updates": [
        {"action": "set-properties", "updates": {"write.data.path": f"{a}/data"}}]})
    assert OVERLAPS in error(r)
    assert site.new_files(before) == {str(p) for p in _files(site.warehouse / "db")
                                      if "/c_" in str(p)}
    # a sibling sharing a name prefix is not inside: `shared/ab` is fine
    r = db.post("/namespaces/db/tables",
                json={"name": "b", "schema": ID_REST_JSON, "location": f"{a}b"})
    assert r.status_code == 200, r.text
    # the same table keeps its own location on another branch
    r = dev.post("/namespaces/db/tables/a", json={"updates": [
        {"action": "set-properties", "updates": {"k": "v"}}]})
    assert r.status_code == 200, r.text


# ---- 5. committed snapshots: manifest lists must be real files under a root ----------------
def test_a_snapshot_whose_manifest_list_is_outside_missing_or_garbage_is_refused(
        site: Site, db: httpx.Client) -> None:
    db.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}).raise_for_status()
    tdir = table_dir(db, "t")
    (tdir / "metadata").mkdir(exist_ok=True)
    (tdir / "metadata" / "garbage.avro").write_text("not avro")
    before = site.listing()

    def add(manifest_list: str, snapshot_id: int) -> httpx.Response:
        snapshot = {"snapshot-id": snapshot_id, "timestamp-ms": 1_700_000_000_000,
                    "manifest-list": manifest_list, "summary": {"operation": "append"},
                    "schema-id": 0, "sequence-number": 1}
        return db.post("/namespaces/db/tables/t", json={"updates": [
            {"action": "add-snapshot", "snapshot": snapshot},
            {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch",
             "snapshot-id": snapshot_id}]})

    assert OUTSIDE_ROOTS in error(add("/etc/passwd", 1))
    assert OUTSIDE_ROOTS in error(add(f"file://{site.victim}/secret.txt", 2))
    for n, missing in enumerate([f"file://{tdir}/metadata/snap-missing.avro",
                                 f"file://{tdir}/metadata/garbage.avro",
                                 f"file://{tdir}/metadata"]):
        assert "is not a readable Iceberg manifest list" in error(add(missing, 10 + n))
    assert site.listing() == before
    # a real append (pyiceberg writes real manifests under the table) still commits
    import pyarrow as pa

    table = catalog(site).load_table("db.t")
    table.append(pa.table({"id": pa.array([7], pa.int64())}))
    assert catalog(site).load_table("db.t").scan().to_arrow().num_rows == 1


# ---- 6. register reads only regular files under a root ---------------------------------------
def test_register_gives_one_generic_error_and_never_hangs_on_special_files(
        site: Site, db: httpx.Client) -> None:
    db.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}).raise_for_status()
    good = metadata_file(db, "t")
    fifo = site.warehouse / "pipe.metadata.json"
    os.mkfifo(fifo)
    (site.warehouse / "big.metadata.json").write_bytes(b" " * (16 * 1024 * 1024 + 1))
    (site.warehouse / "link.metadata.json").symlink_to(site.victim / "secret.txt")
    before = site.listing()
    heads = {r.name: r.head for r in site.server.store.list_refs()}
    candidates = [str(fifo), f"file://{fifo}", str(site.warehouse / "missing.json"),
                  str(site.warehouse), str(site.warehouse / "planted.txt"),
                  str(site.warehouse / "big.metadata.json"),
                  str(site.warehouse / "link.metadata.json"), "/etc/passwd",
                  f"file://{site.victim}/secret.txt", "relative.json", "http://x/y.json",
                  f"{good}?", "/dev/zero"]
    messages = set()
    for location in candidates:
        r = db.post("/namespaces/db/register", json={"name": "r", "metadata-location": location})
        messages.add(error(r))
    assert messages == {f"cannot register db.r: {UNREADABLE} (file://{site.warehouse}, "
                        f"file://{site.extra})"}
    started = time.monotonic()
    for _ in range(50):  # each answers at once; the worker pool stays free
        r = db.post("/namespaces/db/register", json={"name": "r", "metadata-location": str(fifo)})
        assert r.status_code == 400
    assert time.monotonic() - started < 30
    assert httpx.get(site.server.api_url + "/refs", timeout=5).status_code == 200
    assert site.listing() == before
    assert {r.name: r.head for r in site.server.store.list_refs()} == heads
    # a real metadata file the catalog owns is not registered again (it moves by merge)
    r = db.post("/namespaces/db/register", json={"name": "r", "metadata-location": str(good)})
    assert "register is for files the catalog does not own yet" in error(r)
    assert site.listing() == before
    assert {r.name: r.head for r in site.server.store.list_refs()} == heads


# ---- /api/v1/commits validates contents through their format ----------------------------------
def test_api_commits_validate_iceberg_contents(site: Site, db: httpx.Client) -> None:
    db.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}).raise_for_status()
    api = httpx.Client(base_url=site.server.api_url, timeout=60)
    content = api.post("/contents/lookup", json={"ref": "main", "keys": [["db", "t"]]}
                       ).json()["entries"][0]["content"]
    before = site.listing()
    head = api.get("/refs/get", params={"name": "main"}).json()["head"]

    def put(key: list[str], value: dict[str, Any]) -> httpx.Response:
        return api.post("/commits", json={"branch": "main", "message": "m", "operations": [
            {"op": "put", "key": key, "content": value}]})

    def api_error(r: httpx.Response, code: str) -> str:
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == code, r.text
        return str(r.json()["error"]["message"])

    for bad in ["/etc/passwd", f"file://{site.victim}/secret.txt", "relative",
                str(site.warehouse / "planted.txt"), str(site.warehouse)]:
        message = api_error(put(["db", "u"], {**content, "metadata_location": bad}),
                            "INVALID_INPUT")
        assert UNREADABLE in message
    assert "not the table UUID" in api_error(put(["db", "u"], {**content, "id": "x"}),
                                             "INVALID_INPUT")
    assert "is not the table location" in api_error(
        put(["db", "u"], {**content, "location": f"{site.w}/else"}), "INVALID_INPUT")
    assert "key element" in api_error(put(["db", "a/b"], content), "INVALID_KEY")
    assert OUTSIDE_ROOTS in api_error(
        put(["ns"], {"type": "NAMESPACE", "id": "n", "properties": {"location": "/etc"}}),
        "LOCATION_NOT_ALLOWED")
    assert "must be an absolute URI" in api_error(
        put(["d"], {"type": "DELTA_TABLE", "id": "d", "location": "rel"}), "INVALID_INPUT")
    # a Delta state inside the Iceberg table's directory with no Delta log there: refused
    # (tests/formats/delta/test_catalog.py shows the overlap refusal for a real Delta log)
    assert "no Delta table at" in api_error(
        put(["d"], {"type": "DELTA_TABLE", "id": "d", "version": 0,
                    "location": content["location"] + "/x"}), "INVALID_INPUT")
    assert api.get("/refs/get", params={"name": "main"}).json()["head"] == head
    assert site.listing() == before
    # the same table under a second key is fine; a content without `location` gets it
    legacy = {k: v for k, v in content.items() if k != "location"}
    r = put(["db", "u"], legacy)
    assert r.status_code == 201, r.text
    stored = api.post("/contents/lookup", json={"ref": "main", "keys": [["db", "u"]]}
                      ).json()["entries"][0]["content"]
    assert stored == content


# ---- helpers ---------------------------------------------------------------------------------
def _schema() -> Any:
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    return Schema(NestedField(1, "id", LongType(), required=False))


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# ---- `lakeversion serve --allowed-location` ----------------------------------------------------
def test_serve_takes_allowed_locations_and_refuses_bad_ones(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from spark_lakeversion.cli.main import cli
    from spark_lakeversion.server.embedded import serve_in_subprocess

    store = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(cli, ["serve", "--store", store, "--warehouse",
                                      str(tmp_path / "W"), "--allowed-location", "s3://b/x?"])
    assert result.exit_code == 1, result.output  # 1: bad input or usage
    assert "--allowed-location" in result.output and "may not contain" in result.output
    extra, victim = tmp_path / "extra", tmp_path / "victim"
    extra.mkdir()
    victim.mkdir()
    proc, url = serve_in_subprocess(store, tmp_path / "W", allowed_locations=(str(extra),))
    try:
        client = httpx.Client(base_url=url + "/iceberg/v1/main", timeout=60)
        client.post("/namespaces", json={"namespace": ["db"]}).raise_for_status()
        r = client.post("/namespaces/db/tables", json={"name": "x", "schema": ID_REST_JSON,
                                                       "location": f"file://{extra}/x"})
        assert r.status_code == 200, r.text
        assert list((extra / "x" / "metadata").iterdir())
        r = client.post("/namespaces/db/tables", json={"name": "y", "schema": ID_REST_JSON,
                                                       "location": f"file://{victim}/y"})
        assert OUTSIDE_ROOTS in error(r) and f"file://{extra}" in error(r)
        assert not list(victim.iterdir())
    finally:
        proc.terminate()
        proc.wait(30)


def test_one_transaction_cannot_create_two_tables_in_one_directory(
        site: Site, db: httpx.Client) -> None:
    create = create_table_updates(ID_REST_JSON)
    before = site.listing()

    def change(name: str, location: str, uuid: str) -> dict[str, Any]:
        return {"identifier": {"namespace": ["db"], "name": name},
                "requirements": [{"type": "assert-create"}],
                "updates": [{"action": "assign-uuid", "uuid": uuid}, *create,
                            {"action": "set-location", "location": location}]}

    r = db.post("/transactions/commit", json={"table-changes": [
        change("a", f"{site.w}/same", "00000000-0000-0000-0000-00000000000a"),
        change("b", f"{site.w}/same/b", "00000000-0000-0000-0000-00000000000b")]})
    assert OVERLAPS in error(r) and "same transaction" in error(r)
    assert site.listing() == before
    assert db.get("/namespaces/db/tables").json()["identifiers"] == []
