"""Table formats are plugins: one declared by an entry point is found, and a registered
format is what `/api/v1/commits` validation and gc ask."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.formats.delta.format import DeltaFormat
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.formats.iceberg.format import IcebergFormat
from spark_lakeversion.gc import collect_garbage
from spark_lakeversion.locations import AllowedRoots, normalize_path
from spark_lakeversion.model import ConflictType, Content, ContentType, Key, Put
from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.tableformat.base import (
    ENTRY_POINT_GROUP,
    FORMATS,
    FormatRegistry,
    StateFiles,
    TableFormat,
)
from spark_lakeversion.wiring import open_store


class ListedFiles(StateFiles):
    """A state reaches exactly the files its `files` field lists; its table owns `location`."""

    def add(self, content: Content) -> None:
        self.table_ids.add(content.id)
        self.table_locations.setdefault(content.id, set()).add(content.fields["location"])
        for path in content.fields.get("files", []):
            self.mark(normalize_path(path))


class StrictDelta(TableFormat):
    """A third party's Delta format: locations under the roots only, files it can list."""

    content_type = DELTA_TABLE

    def validate(self, key: Key, content: Content, roots: AllowedRoots,
                 io_properties: Mapping[str, str]) -> Content:
        roots.check(content.fields.get("location"), f"strict Delta table {key} location")
        if not isinstance(content.fields.get("files"), list):
            raise InvalidInput(f"put {key}: a strict Delta table lists its files")
        return content

    def state_files(self, reachable: set[str], roots: AllowedRoots | None,
                    io_properties: object) -> StateFiles:
        return ListedFiles(reachable)


def test_a_format_declared_by_an_entry_point_is_found(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "strict_delta-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: strict-delta\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nstrict = tests.formats.test_registry:StrictDelta\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = FormatRegistry()
    assert type(registry.require(DELTA_TABLE)) is StrictDelta  # replaces ours
    assert type(registry.require(ICEBERG_TABLE)) is IcebergFormat


def test_without_the_plugin_our_own_formats_are_found() -> None:
    registry = FormatRegistry()
    assert {type(f) for f in registry.all()} >= {IcebergFormat, DeltaFormat}


@pytest.fixture
def strict_delta() -> Iterator[None]:
    FORMATS.register(StrictDelta())
    try:
        yield
    finally:
        FORMATS.register(DeltaFormat())


def test_api_commits_validate_through_the_registered_format(strict_delta: None,
                                                            tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    inside = (warehouse / "delta" / "t").as_uri()
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(warehouse)) as server, \
            httpx.Client(base_url=server.api_url, timeout=60) as api:
        def put(content: dict[str, object]) -> httpx.Response:
            return api.post("/commits", json={"branch": "main", "message": "m", "operations": [
                {"op": "put", "key": ["t"], "content": content}]})

        outside = put({"type": "DELTA_TABLE", "id": "d", "location": "/elsewhere/t",
                       "files": []})
        assert outside.status_code == 400
        assert outside.json()["error"]["code"] == "LOCATION_NOT_ALLOWED"
        unlisted = put({"type": "DELTA_TABLE", "id": "d", "location": inside})
        assert unlisted.status_code == 400
        assert "lists its files" in unlisted.json()["error"]["message"]
        assert put({"type": "DELTA_TABLE", "id": "d", "location": inside,
                    "files": []}).status_code == 201


def test_gc_asks_the_registered_format_which_files_a_state_reaches(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    table = warehouse / "delta" / "t"
    (table / "_delta_log").mkdir(parents=True)
    kept, dropped = table / "_delta_log" / "0.json", table / "part-0.parquet"
    for path in (kept, dropped):
        path.write_text("x")
        old = time.time() - 3 * 86400
        os.utime(path, (old, old))
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.commit("main", [Put(Key.of("t"), Content(DELTA_TABLE, "d", {
        "location": table.as_uri(), "files": [kept.as_uri()]}))], message="m")
    roots = [warehouse.as_uri()]

    ours = collect_garbage(store, roots=roots, dry_run=True)
    assert ours.garbage == []  # our Delta format cannot read this log: it leaves it alone
    assert [s["content_id"] for s in ours.skipped_tables] == ["d"]

    FORMATS.register(StrictDelta())
    try:
        theirs = collect_garbage(store, roots=roots, dry_run=True)
    finally:
        FORMATS.register(DeltaFormat())
    assert [f.path for f in theirs.garbage] == [dropped.as_uri()]
    assert theirs.locations == [table.as_uri()] and theirs.protected_locations == []
    store.close()


class ListedTable(TableFormat):
    """A third party's own type, beside the built-in ones: codes spelled as plain strings,
    as a plugin that knows nothing of our registry writes them."""

    content_type = "LISTED_TABLE"  # type: ignore[assignment]
    conflict_types = ("LISTED_FILES_DIFFER",)  # type: ignore[assignment]

    def validate(self, key: Key, content: Content, roots: AllowedRoots,
                 io_properties: Mapping[str, str]) -> Content:
        roots.check(content.fields.get("location"), f"listed table {key} location")
        return content

    def state_files(self, reachable: set[str], roots: AllowedRoots | None,
                    io_properties: object) -> StateFiles:
        return ListedFiles(reachable)


def test_a_plugin_adds_a_content_type_beside_the_built_in_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "listed-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: listed\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nlisted = tests.formats.test_registry:ListedTable\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = FormatRegistry()
    assert {type(f) for f in registry.all()} >= {ListedTable, IcebergFormat, DeltaFormat}
    listed = ContentType("LISTED_TABLE")  # loading the format registered its codes
    assert type(registry.require(listed)) is ListedTable
    assert type(registry.require(DELTA_TABLE)) is DeltaFormat  # nothing was replaced
    assert type(registry.require(ICEBERG_TABLE)) is IcebergFormat
    assert ConflictType("LISTED_FILES_DIFFER").value == "LISTED_FILES_DIFFER"
    assert listed is ContentType("LISTED_TABLE") and listed == "LISTED_TABLE"


def test_a_plugin_type_commits_and_reads_back_and_unknown_types_stay_refused(
        tmp_path: Path) -> None:
    FORMATS.register(ListedTable())
    warehouse = tmp_path / "warehouse"
    inside = (warehouse / "listed" / "t").as_uri()
    try:
        with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                                   warehouse=str(warehouse)) as server, \
                httpx.Client(base_url=server.api_url, timeout=60) as api:
            def put(content: dict[str, object]) -> httpx.Response:
                return api.post("/commits", json={
                    "branch": "main", "message": "m",
                    "operations": [{"op": "put", "key": ["t"], "content": content}]})

            assert put({"type": "LISTED_TABLE", "id": "l", "location": inside}
                       ).status_code == 201
            head = api.get("/refs/get", params={"name": "main"}).json()["head"]
            entries = api.get("/contents", params={"ref": "main"}).json()["entries"]
            assert [e["content"] for e in entries] == [
                {"type": "LISTED_TABLE", "id": "l", "location": inside}]
            refused = put({"type": "NOPE_TABLE", "id": "n", "location": inside})
            assert refused.status_code == 400
            assert refused.json()["error"]["code"] == "INVALID_INPUT"
            assert "'NOPE_TABLE' is not a valid ContentType" in refused.json()["error"][
                "message"]
            assert api.get("/refs/get", params={"name": "main"}).json()["head"] == head
            assert api.get("/contents", params={"ref": "main"}).json()["entries"] == entries
    finally:
        FORMATS.unregister(ContentType("LISTED_TABLE"))
