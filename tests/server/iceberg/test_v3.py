"""Format-v3 tables through the REST catalog: the server writes the v3 metadata pyiceberg
0.12 refuses to serialise, keeps row lineage (`next-row-id`) as the spec requires, and
answers a request it cannot serve with 400 and the reason (never "outcome unknown")."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pyarrow as pa
import pytest

from spark_lakeversion.server.embedded import EmbeddedServer
from tests.lake import ID_REST_JSON
from tests.server.helpers import create_table_updates, iceberg_error


@pytest.fixture
def ice(server: EmbeddedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.iceberg_uri + "/v1/main", timeout=60) as client:
        client.post("/namespaces", json={"namespace": ["db"]}).raise_for_status()
        yield client


def _file(location: str) -> dict[str, Any]:
    return json.loads(Path(urlparse(location).path).read_text())  # type: ignore[no-any-return]


def _metadata_files(server: EmbeddedServer) -> set[Path]:
    return set(Path(urlparse(server.warehouse).path).rglob("*.metadata.json"))


def _snapshot(snapshot_id: int, location: str, **lineage: int) -> dict[str, Any]:
    return {"action": "add-snapshot", "snapshot": {
        "snapshot-id": snapshot_id, "sequence-number": 1, "timestamp-ms": 1_700_000_000_000,
        "manifest-list": f"{location}/metadata/snap-{snapshot_id}.avro",
        "summary": {"operation": "append"}, "schema-id": 0,
        **{k.replace("_", "-"): v for k, v in lineage.items()}}}


def test_create_and_load_a_v3_table(server: EmbeddedServer, ice: httpx.Client,
                                    rest_catalog: Callable[..., Any]) -> None:
    r = ice.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON,
                                                "properties": {"format-version": "3"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["metadata"]["format-version"], body["metadata"]["next-row-id"]) == (3, 0)
    written = _file(body["metadata-location"])
    assert (written["format-version"], written["next-row-id"]) == (3, 0)
    loaded = rest_catalog(server).load_table("db.t")
    assert (loaded.metadata.format_version, loaded.metadata.next_row_id) == (3, 0)
    assert loaded.scan().to_arrow().num_rows == 0


def test_stage_create_commit_of_a_v3_table(ice: httpx.Client) -> None:
    """What Spark's CTAS sends: the create as a commit with `upgrade-format-version` 3."""
    staged = ice.post("/namespaces/db/tables", json={"name": "s", "schema": ID_REST_JSON,
                                                     "stage-create": True,
                                                     "properties": {"format-version": "3"}})
    assert staged.status_code == 200, staged.text
    location = staged.json()["metadata"]["location"]
    updates = [{"action": "upgrade-format-version", "format-version": 3},
               *create_table_updates(ID_REST_JSON)[1:],
               {"action": "set-location", "location": location}]
    r = ice.post("/namespaces/db/tables/s",
                 json={"requirements": [{"type": "assert-create"}], "updates": updates})
    assert r.status_code == 200, r.text
    assert (r.json()["metadata"]["format-version"], r.json()["metadata"]["next-row-id"]) == (3, 0)
    assert _file(r.json()["metadata-location"])["next-row-id"] == 0


def test_upgrade_to_v3_starts_row_lineage(ice: httpx.Client) -> None:
    ice.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}).raise_for_status()
    r = ice.post("/namespaces/db/tables/t", json={
        "updates": [{"action": "upgrade-format-version", "format-version": 3}]})
    assert r.status_code == 200, r.text
    written = _file(r.json()["metadata-location"])
    assert (written["format-version"], written["next-row-id"]) == (3, 0)


def test_snapshots_that_break_row_lineage_are_refused(server: EmbeddedServer,
                                                      ice: httpx.Client) -> None:
    created = ice.post("/namespaces/db/tables", json={
        "name": "t", "schema": ID_REST_JSON, "properties": {"format-version": "3"}})
    location = created.json()["metadata"]["location"]
    before = _metadata_files(server)
    without = ice.post("/namespaces/db/tables/t", json={"updates": [_snapshot(1, location)]})
    assert "first row id" in iceberg_error(without, 400, "BadRequestException")
    r = ice.post("/namespaces/db/tables/t", json={
        "updates": [_snapshot(1, location, first_row_id=0, added_rows=5),
                    _snapshot(2, location, first_row_id=3, added_rows=1)]})
    message = iceberg_error(r, 400, "BadRequestException")
    assert "first row id smaller than the table's next-row-id 3 < 5" in message
    negative = ice.post("/namespaces/db/tables/t", json={
        "updates": [_snapshot(1, location, first_row_id=0, added_rows=-1)]})
    assert "added-rows -1 is negative" in iceberg_error(negative, 400, "BadRequestException")
    assert _metadata_files(server) == before  # nothing written


def test_a_create_the_server_cannot_serve_is_a_400_with_the_reason(
        server: EmbeddedServer, ice: httpx.Client, rest_catalog: Callable[..., Any]) -> None:
    before = _metadata_files(server)
    r = ice.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON,
                                                "properties": {"format-version": "4"}})
    assert "Unknown format version: 4" in iceberg_error(r, 400, "BadRequestException")
    r = ice.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON,
                                                "properties": {"format-version": "x"}})
    iceberg_error(r, 400, "BadRequestException")
    r = ice.post("/namespaces/db/tables/u", json={
        "requirements": [{"type": "assert-create"}],
        "updates": [{"action": "upgrade-format-version", "format-version": 4},
                    *create_table_updates(ID_REST_JSON)[1:],
                    {"action": "set-location", "location": server.warehouse + "/db/u"}]})
    assert "Unsupported table format version: 4" in iceberg_error(r, 400, "BadRequestException")
    assert _metadata_files(server) == before
    assert not rest_catalog(server).table_exists("db.t")
    # pyiceberg 0.12 itself cannot append to a v3 table (a client-side limit): the table the
    # server created stays readable and empty
    ice.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON,
                                            "properties": {"format-version": "3"}}
             ).raise_for_status()
    table = rest_catalog(server).load_table("db.t")
    with pytest.raises(ValueError, match="Cannot write manifest for table version: 3"):
        table.append(pa.table({"id": pa.array([1], pa.int64())}))
    assert rest_catalog(server).load_table("db.t").scan().to_arrow().num_rows == 0


def test_register_a_v3_table_and_refuse_fields_that_would_be_lost(
        server: EmbeddedServer, ice: httpx.Client, rest_catalog: Callable[..., Any]) -> None:
    created = ice.post("/namespaces/db/tables", json={
        "name": "t", "schema": ID_REST_JSON, "properties": {"format-version": "3"}}).json()
    raw = _file(created["metadata-location"])
    folder = Path(urlparse(server.warehouse).path) / "elsewhere" / "metadata"
    folder.mkdir(parents=True)
    plain, encrypted = folder / "00001-a.metadata.json", folder / "00002-b.metadata.json"
    plain.write_text(json.dumps({**raw, "location": str(folder.parent),
                                 "table-uuid": "6f6ea6a4-1b4e-4b8c-9d1c-1df0a0b7a001"}))
    encrypted.write_text(json.dumps({**raw, "encryption-keys": [{"key-id": "k"}]}))
    r = ice.post("/namespaces/db/register", json={"name": "r", "metadata-location": str(plain)})
    assert r.status_code == 200, r.text
    assert rest_catalog(server).load_table("db.r").metadata.next_row_id == 0
    r = ice.post("/namespaces/db/register", json={"name": "e",
                                                  "metadata-location": str(encrypted)})
    assert "encryption-keys" in iceberg_error(r, 400, "BadRequestException")
    assert not rest_catalog(server).table_exists("db.e")
