"""gc through its three doors: the CLI, `POST /api/v1/gc`, and a real REST server whose
tables pyiceberg's stock RestCatalog wrote on branches."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from spark_lakeversion.cli.main import cli
from spark_lakeversion.model import RefType
from spark_lakeversion.server.app import create_app
from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.wiring import open_store
from tests.gc.helpers import StoreLake


@pytest.fixture
def dropped_branch(tmp_path: Path) -> Iterator[tuple[str, StoreLake, set[str]]]:
    """A store where a deleted branch left files only it reached (aged past any grace)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    lake = StoreLake(tmp_path, store)
    lake.create("main", "a", [1])
    before = lake.files()
    store.create_ref("dev", RefType.BRANCH, "main")
    lake.append("dev", "a", [2])
    garbage = lake.files() - before
    store.delete_ref("dev", force=True)
    lake.age()
    yield url, lake, garbage
    store.close()


def test_cli_dry_run_json_then_text_delete(dropped_branch: tuple[str, StoreLake, set[str]]) -> None:
    url, lake, garbage = dropped_branch
    runner = CliRunner()
    result = runner.invoke(cli, ["--store", url, "gc", "--dry-run", "--output", "json",
                                 "--warehouse", lake.warehouse.as_uri()])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dry_run"] is True
    assert {f["path"] for f in report["files"]} == garbage
    assert report["deleted_files"] == 0 and report["garbage_bytes"] > 0
    assert report["max_reads_per_file"] == 1
    assert garbage <= lake.files()

    result = runner.invoke(cli, ["--store", url, "gc", "--older-than", "3h",
                                 "--warehouse", str(lake.warehouse)])
    assert result.exit_code == 0, result.output
    assert f"deleted {len(garbage)} file(s)" in result.output
    assert "reclaimed" in result.output
    assert not (garbage & lake.files())
    assert lake.read("main") == {"db.a": [(1, "v1")]}


def test_cli_bad_duration_is_invalid_input(dropped_branch: tuple[str, StoreLake, set[str]]) -> None:
    url, lake, garbage = dropped_branch
    result = CliRunner().invoke(cli, ["--store", url, "--output", "json", "gc",
                                      "--older-than", "soon"])
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "INVALID_INPUT"
    assert garbage <= lake.files()


def test_api_v1_gc(dropped_branch: tuple[str, StoreLake, set[str]], tmp_path: Path) -> None:
    url, lake, garbage = dropped_branch
    store = open_store(url)
    with TestClient(create_app(store, str(tmp_path / "warehouse"))) as client:
        bad = client.post("/api/v1/gc", json={"older_than": "soon"})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "INVALID_INPUT"
        assert client.post("/api/v1/gc", json={"purge": True}).status_code == 400
        dry = client.post("/api/v1/gc", json={"older_than": "1d", "dry_run": True})
        assert dry.status_code == 200
        assert {f["path"] for f in dry.json()["files"]} == garbage
        assert garbage <= lake.files()
        done = client.post("/api/v1/gc", json={"older_than": 3600,
                                               "keep_commits_since": "7d"}).json()
        assert done["deleted_files"] == len(garbage)
    assert not (garbage & lake.files())
    store.close()


def _warehouse_files(root: Path) -> set[str]:
    return {Path(d, f).as_uri() for d, _, fs in os.walk(root) for f in fs}


def _age(paths: set[str]) -> None:
    stamp = time.time() - 3 * 86400
    for uri in paths:
        os.utime(uri[len("file://"):], (stamp, stamp))


def test_tables_written_through_the_rest_server(tmp_path: Path) -> None:
    """pyiceberg -> our REST catalog on main, a tag and a branch; gc after dropping the
    branch reclaims exactly what only the branch wrote, and every ref reads the same."""
    from pyiceberg.catalog.rest import RestCatalog

    from spark_lakeversion.gc import collect_garbage
    from spark_lakeversion.versioning.http import RestVersionStore

    warehouse = tmp_path / "warehouse"
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False)])

    def ids(catalog: RestCatalog) -> list[int]:
        return sorted(catalog.load_table("db.t").scan().to_arrow()["id"].to_pylist())

    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(warehouse)) as server, \
            httpx.Client(base_url=server.api_url, timeout=60) as api:
        main = RestCatalog("main", uri=server.iceberg_uri)
        main.create_namespace("db")
        table = main.create_table("db.t", schema=schema)
        table.append(pa.table({"id": [1, 2]}, schema=schema))
        api.post("/refs", json={"name": "v1", "type": "TAG"}).raise_for_status()
        api.post("/refs", json={"name": "dev"}).raise_for_status()
        before_dev = _warehouse_files(warehouse)
        dev = RestCatalog("dev", uri=server.iceberg_uri, warehouse="dev")
        dev.load_table("db.t").append(pa.table({"id": [3]}, schema=schema))
        dev.load_table("db.t").append(pa.table({"id": [4]}, schema=schema))
        dev_files = _warehouse_files(warehouse) - before_dev
        main.load_table("db.t").append(pa.table({"id": [5]}, schema=schema))
        assert ids(dev) == [1, 2, 3, 4]
        _age(_warehouse_files(warehouse))

        assert api.post("/gc", json={"older_than": "1d"}).json()["garbage_files"] == 0
        api.post("/refs/delete", json={"name": "dev", "force": True}).raise_for_status()
        # a client over http runs gc on the server: Python API and CLI
        remote = RestVersionStore(server.url)
        dry = collect_garbage(remote, older_than="1d", dry_run=True)
        remote.close()
        assert {f.path for f in dry.garbage} == dev_files and dry.deleted == 0
        cli_run = CliRunner().invoke(cli, ["--store", server.url, "-o", "json", "gc",
                                           "--dry-run", "--older-than", "1d"])
        assert cli_run.exit_code == 0, cli_run.output
        assert json.loads(cli_run.output)["garbage_files"] == len(dev_files)
        assert dev_files <= _warehouse_files(warehouse)
        report = api.post("/gc", json={"older_than": "1d"}).json()
        assert {f["path"] for f in report["files"]} == dev_files
        assert report["deleted_files"] == len(dev_files) > 0
        assert ids(main) == [1, 2, 5]
        assert ids(RestCatalog("tag", uri=server.iceberg_uri, warehouse="v1")) == [1, 2]


def test_bench_gc_small_catalog_reads_each_manifest_once() -> None:
    """The benchmark's catalog and figures, at toy size (timings are the bench's business)."""
    from spark_lakeversion.bench.gc import run

    figures = run(tables=3, snapshots=6, branches=3, full_gc=True)
    assert figures["snapshots_per_table"] == 6
    assert figures["manifests_total"] == figures["manifests_written"] == 18
    assert figures["manifests_read"] == 18 and figures["max_reads_per_file"] == 1
    assert figures["each_manifest_read_at_most_once"] is True
    assert figures["table_states"] == 18 and figures["refs"] == 4
    assert figures["gc_garbage_files"] == 0  # everything is reachable from some ref
