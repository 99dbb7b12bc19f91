"""Writes through the Iceberg facade of a Delta table meet every guard of a commit:
protected branches and grants refuse them before anything lands, and a refused commit
leaves the Delta log as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import ForbiddenError

from spark_lakeversion.api import connect
from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.formats.delta.helpers import ID_P_V_ARROW, data
from tests.server.access_helpers import write_auth_config


def _log_files(root: str) -> list[str]:
    return sorted(p.name for p in (Path(root.removeprefix("file://")) / "_delta_log").iterdir())


def test_a_protected_branch_refuses_an_iceberg_commit_on_a_delta_table(
        tmp_path: Path) -> None:
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh")) as srv, \
            connect(srv.url, warehouse=str(tmp_path / "wh")) as catalog:
        events = catalog.branch("main").delta("db.events")
        events.create(ID_P_V_ARROW)
        events.append(data((1, "a", 10)))
        catalog.branch("main").protect()
        table = RestCatalog("lv", uri=srv.iceberg_uri).load_table("db.events")
        head, logs = catalog.branch("main").head.id, _log_files(events.state().location)
        with pytest.raises(ForbiddenError, match="protected"):
            table.append(data((2, "b", 20)))
        assert catalog.branch("main").head.id == head
        assert _log_files(events.state().location) == logs
        assert events.to_arrow().num_rows == 1


@pytest.fixture
def authed(tmp_path: Path) -> Iterator[tuple[EmbeddedServer, dict[str, str]]]:
    config = tmp_path / "auth.toml"
    tokens = write_auth_config(config)
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               auth=load_auth_config(config)) as srv:
        yield srv, tokens


def test_grants_apply_to_iceberg_reads_and_writes_of_delta_tables(
        authed: tuple[EmbeddedServer, dict[str, str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    srv, tokens = authed
    monkeypatch.setenv("LAKEVERSION_TOKEN", tokens["admin"])
    with connect(srv.url, warehouse=str(tmp_path / "wh")) as admin:
        admin.branch("etl-1").create("main")
        events = admin.branch("etl-1").delta("db.events")
        events.create(ID_P_V_ARROW)
        events.append(data((1, "a", 10)))
        analyst = RestCatalog("a", uri=srv.iceberg_uri, token=tokens["analyst"])
        table = analyst.load_table(("db@etl-1", "events"))  # analysts read every ref
        assert table.scan().to_arrow().num_rows == 1
        with pytest.raises(ForbiddenError):
            table.append(data((2, "b", 20)))
        assert events.to_arrow().num_rows == 1
        etl = RestCatalog("e", uri=srv.iceberg_uri, token=tokens["etl"])
        etl.load_table(("db@etl-1", "events")).append(data((2, "b", 20)))
        assert events.to_arrow().num_rows == 2
        with pytest.raises(ForbiddenError, match="lacks 'read'"):
            RestCatalog("n", uri=srv.iceberg_uri, token=tokens["nobody"]).load_table(
                ("db@etl-1", "events"))


def test_limits_apply_to_iceberg_commits_on_delta_tables(tmp_path: Path) -> None:
    from spark_lakeversion.limits import Limits

    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               limits=Limits(max_message_bytes=100)) as srv, \
            connect(srv.url, warehouse=str(tmp_path / "wh")) as catalog:
        events = catalog.branch("main").delta("db.events")
        events.create(ID_P_V_ARROW)
        loud = RestCatalog("lv", uri=srv.iceberg_uri,
                           **{"header.X-Lakeversion-Message": "m" * 200})
        table = loud.load_table("db.events")
        head, logs = catalog.branch("main").head.id, _log_files(events.state().location)
        with pytest.raises(Exception, match="TOO_LARGE.*commit message is 200 bytes"):
            table.append(data((1, "a", 10)))
        assert catalog.branch("main").head.id == head
        assert _log_files(events.state().location) == logs
        RestCatalog("lv", uri=srv.iceberg_uri).load_table("db.events").append(
            data((1, "a", 10)))
        assert events.to_arrow().num_rows == 1


def test_a_commit_with_delete_files_is_refused_naming_the_properties(tmp_path: Path) -> None:
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.manifest import ManifestContent, ManifestFile, write_manifest_list

    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh")) as srv, \
            connect(srv.url, warehouse=str(tmp_path / "wh")) as catalog:
        events = catalog.branch("main").delta("db.events")
        events.create(ID_P_V_ARROW)
        table = RestCatalog("lv", uri=srv.iceberg_uri).load_table("db.events")
        base = table.metadata
        new_id = 4242
        listing = f"{base.properties['write.metadata.path']}/snap-{new_id}.avro"
        deletes = ManifestFile.from_args(
            manifest_path=f"{base.properties['write.metadata.path']}/d.avro",
            manifest_length=1, partition_spec_id=0, content=ManifestContent.DELETES,
            sequence_number=base.last_sequence_number + 1,
            min_sequence_number=base.last_sequence_number + 1, added_snapshot_id=new_id,
            added_files_count=1, existing_files_count=0, deleted_files_count=0,
            added_rows_count=1, existing_rows_count=0, deleted_rows_count=0)
        with write_manifest_list(2, PyArrowFileIO().new_output(listing), new_id,
                                 base.current_snapshot_id,
                                 base.last_sequence_number + 1, "null") as writer:
            writer.add_manifests([deletes])
        body = {"requirements": [{"type": "assert-ref-snapshot-id", "ref": "main",
                                  "snapshot-id": base.current_snapshot_id}],
                "updates": [
                    {"action": "add-snapshot", "snapshot": {
                        "snapshot-id": new_id, "parent-snapshot-id": base.current_snapshot_id,
                        "sequence-number": base.last_sequence_number + 1,
                        "timestamp-ms": 1, "manifest-list": listing,
                        "summary": {"operation": "delete"}, "schema-id": 0}},
                    {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch",
                     "snapshot-id": new_id}]}
        version = events.version
        answer = httpx.post(f"{srv.iceberg_uri}/v1/namespaces/db/tables/events", json=body)
        assert answer.status_code == 400
        assert "write.delete.mode" in answer.json()["error"]["message"]
        assert events.version == version
