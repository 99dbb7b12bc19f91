"""Delta tables on every surface: `/api/v1` (create, register, contents with the version,
the HTTP client writing through `/api/v1/commits`), the Iceberg REST catalog (listing omits
them, loading one answers 400), the CLI, and PostgreSQL as the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from spark_lakeversion.api import connect
from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import LocationNotAllowed
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.formats.delta.helpers import ID_P_V_ARROW, data, independent_rows, rows
from tests.helpers import make_store_url
from tests.s3.helpers import MotoS3

DELTA_SCHEMA = {"type": "struct", "fields": [
    {"name": "id", "type": "long", "nullable": True, "metadata": {}},
    {"name": "p", "type": "string", "nullable": True, "metadata": {}},
    {"name": "v", "type": "long", "nullable": True, "metadata": {}}]}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "warehouse"),
                               allowed_locations=[str(tmp_path / "extra")]) as srv:
        yield srv


@pytest.fixture
def api(server: EmbeddedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, timeout=60) as client:
        yield client


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code
    return str(body["message"])


def test_api_v1_creates_and_registers_delta_tables(server: EmbeddedServer, api: httpx.Client,
                                                    tmp_path: Path) -> None:
    created = api.post("/delta/create", json={"table": "db.events", "schema": DELTA_SCHEMA,
                                              "partition_by": ["p"]})
    assert created.status_code == 201, created.text
    entries = api.get("/contents", params={"ref": "main"}).json()["entries"]
    by_key = {e["key"]: e["content"] for e in entries}
    assert by_key["db"]["type"] == "NAMESPACE"
    content = by_key["db.events"]
    assert content["type"] == "DELTA_TABLE" and content["version"] == 0
    assert content["location"].startswith((tmp_path / "warehouse").as_uri() + "/db/events_")
    assert "already" in error(api.post("/delta/create", json={
        "table": "db.events", "schema": DELTA_SCHEMA}), 409, "ALREADY_EXISTS")
    assert error(api.post("/delta/create", json={"table": "db.x", "schema": {"bad": 1}}),
                 400, "INVALID_INPUT")
    assert error(api.post("/delta/create", json={"table": "db.x", "schema": DELTA_SCHEMA,
                                                 "branch": "main~1"}), 403, "READ_ONLY_REF")

    from deltalake import write_deltalake

    outside = tmp_path / "outside"
    write_deltalake(str(outside), data((1, "a", 1)))
    assert error(api.post("/delta/register", json={"table": "db.out",
                                                   "location": str(outside)}),
                 400, "LOCATION_NOT_ALLOWED")
    extra = tmp_path / "extra" / "t"
    write_deltalake(str(extra), data((1, "a", 1)))
    write_deltalake(str(extra), data((2, "b", 2)), mode="append")
    registered = api.post("/delta/register", json={"table": "db.ext",
                                                   "location": str(extra)})
    assert registered.status_code == 201, registered.text
    content = api.post("/contents/lookup", json={"ref": "main", "keys": [["db", "ext"]]}
                       ).json()["entries"][0]["content"]
    assert (content["location"], content["version"]) == (extra.as_uri(), 1)
    # another table may not live inside its directory (tables never share files)
    nested = extra / "nested"
    write_deltalake(str(nested), data((3, "c", 3)))
    assert "register is for files the catalog does not own yet" in error(api.post(
        "/delta/register", json={"table": "db.nested", "location": str(nested)}),
        400, "LOCATION_NOT_ALLOWED")
    # nor is a table the catalog owns registered again, on any key
    assert "register is for files the catalog does not own yet" in error(api.post(
        "/delta/register", json={"table": "db.again", "location": str(extra)}),
        400, "LOCATION_NOT_ALLOWED")


def test_the_http_client_writes_through_api_v1_commits(server: EmbeddedServer,
                                                       tmp_path: Path) -> None:
    with connect(server.url, warehouse=str(tmp_path / "warehouse")) as catalog:
        main = catalog.branch("main").delta("db.events")
        main.create(ID_P_V_ARROW, partition_by=["p"])
        main.append(data((1, "a", 1), (2, "b", 2)))
        catalog.branch("dev").create()
        dev = catalog.branch("dev").delta("db.events")
        dev.delete("id = 1")
        main.append(data((3, "c", 3)))
        result = catalog.store.merge("dev", "main")
        assert result.successful
        assert rows(main) == [(2, "b", 2), (3, "c", 3)]
        assert independent_rows(main.state()) == rows(main)
        main.rollback("main~2")  # through /api/v1/rollback: the server writes the version
        assert rows(main) == [(1, "a", 1), (2, "b", 2)]
    with connect(server.url, warehouse=str(tmp_path / "elsewhere")) as catalog, \
            pytest.raises(LocationNotAllowed):
        catalog.branch("main").delta("db.other").create(ID_P_V_ARROW)


def test_iceberg_rest_lists_and_loads_delta_tables(server: EmbeddedServer,
                                                   api: httpx.Client) -> None:
    assert api.post("/delta/create", json={"table": "db.events",
                                           "schema": DELTA_SCHEMA}).status_code == 201
    with httpx.Client(base_url=server.iceberg_uri, timeout=60) as iceberg:
        listed = iceberg.get("/v1/namespaces/db/tables")
        assert listed.status_code == 200
        assert listed.json()["identifiers"] == [{"namespace": ["db"], "name": "events"}]
        loaded = iceberg.get("/v1/namespaces/db/tables/events")
        assert loaded.status_code == 200
        metadata = loaded.json()["metadata"]
        assert metadata["format-version"] == 2
        assert metadata["snapshots"][0]["summary"]["delta-version"] == "0"
        assert "/_lakeversion_iceberg/" in loaded.json()["metadata-location"]


def cli_run(url: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--store", url, "--output", "json", *args])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_cli_creates_registers_and_shows_delta_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    warehouse = str(tmp_path / "warehouse")
    cli_run(url, "delta", "create", "db.events", "--schema", json.dumps(DELTA_SCHEMA),
            "--partition-by", "p", "--warehouse", warehouse)
    with connect(url, warehouse=warehouse) as catalog:
        catalog.branch("main").delta("db.events").append(data((1, "a", 1)))
    shown = cli_run(url, "delta", "show", "db.events")
    assert (shown["version"], shown["rows"], shown["writer"]) == (1, 1, "main")
    entries = {e["key"]: e["content"] for e in cli_run(url, "show", "main")["entries"]}
    assert entries["db.events"]["version"] == 1
    text = CliRunner().invoke(cli, ["--store", url, "show", "main"]).stdout
    assert "DELTA_TABLE" in text and "version=1" in text
    log = cli_run(url, "log", "main", "--table", "db.events")["commits"]
    assert log[0]["message"] == "Delta append on db.events (version 1)"
    assert log[0]["properties"]["lakeversion.delta.version"] == "1"
    from deltalake import write_deltalake

    existing = tmp_path / "warehouse" / "existing"
    write_deltalake(str(existing), data((5, "b", 5)))
    cli_run(url, "delta", "register", "db.existing", str(existing), "--warehouse", warehouse)
    assert cli_run(url, "delta", "show", "db.existing")["rows"] == 1
    bad = CliRunner().invoke(cli, ["--store", url, "--output", "json", "delta", "show",
                                   "db.nope"])
    assert bad.exit_code != 0 and json.loads(bad.stdout)["error"]["type"] == "KeyNotFound"


def test_delta_branches_on_postgresql(tmp_path: Path) -> None:
    url = make_store_url("postgres", tmp_path)
    with connect(url, warehouse=str(tmp_path / "warehouse")) as catalog:
        main = catalog.branch("main").delta("db.events")
        main.create(ID_P_V_ARROW, partition_by=["p"])
        main.append(data((1, "a", 1), (2, "b", 2)))
        catalog.branch("dev").create()
        dev = catalog.branch("dev").delta("db.events")
        dev.update({"v": "v + 1"}, "p = 'a'")
        main.append(data((3, "c", 3)))
        assert catalog.store.merge("dev", "main").successful
        assert rows(main) == [(1, "a", 2), (2, "b", 2), (3, "c", 3)]


def test_api_v1_creates_and_registers_delta_tables_on_s3(moto_s3: MotoS3,
                                                          tmp_path: Path) -> None:
    """The server creates and registers Delta tables in an S3 warehouse, opening them with
    its own FileIO properties (the client sends none)."""
    from deltalake import DeltaTable, write_deltalake

    from spark_lakeversion.fileio import deltalake_storage_options

    bucket = moto_s3.bucket()
    io = moto_s3.io()
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=f"s3://{bucket}/wh",
                               allowed_locations=[f"s3://{bucket}/extra"], io=io) as srv, \
            httpx.Client(base_url=srv.api_url, timeout=60) as api:
        created = api.post("/delta/create", json={"table": "db.events",
                                                  "schema": DELTA_SCHEMA,
                                                  "partition_by": ["p"]})
        assert created.status_code == 201, created.text
        content = {e["key"]: e["content"] for e in api.get(
            "/contents", params={"ref": "main"}).json()["entries"]}["db.events"]
        location = content["location"]
        assert location.startswith(f"s3://{bucket}/wh/db/events_")
        table = DeltaTable(location, storage_options=deltalake_storage_options(location, io))
        assert (table.version(), table.metadata().partition_columns) == (0, ["p"])
        before = moto_s3.keys(bucket)
        assert error(api.post("/delta/create", json={"table": "db.x", "schema": {"bad": 1}}),
                     400, "INVALID_INPUT")
        assert moto_s3.keys(bucket) == before  # a refused create writes nothing
        extra = f"s3://{bucket}/extra/t"
        write_deltalake(extra, data((1, "a", 1)), partition_by=["p"],
                        storage_options=deltalake_storage_options(extra, io))
        registered = api.post("/delta/register", json={"table": "db.t", "location": extra})
        assert registered.status_code == 201, registered.text
        with connect(srv.url) as catalog:
            state = catalog.ref("main").delta("db.t").state()
            assert (state.location, state.version) == (extra, 0)
