"""The Iceberg view format's gc answers: what a view state reaches and which directory its
view owns, and refusal to follow a state that points outside the allowed roots."""

from __future__ import annotations

from pathlib import Path

from spark_lakeversion.formats.iceberg.codes import ICEBERG_VIEW
from spark_lakeversion.formats.iceberg.view import IcebergViewFormat, ViewStateFiles
from spark_lakeversion.locations import AllowedRoots, normalize_path
from spark_lakeversion.model import Content
from spark_lakeversion.tableformat.base import FORMATS


def view(location: str, metadata: str) -> Content:
    return Content(ICEBERG_VIEW, "00000000-0000-0000-0000-0000000000aa",
                   {"metadata_location": metadata, "version_id": 1, "location": location})


def test_the_view_format_is_registered_by_its_entry_point() -> None:
    assert isinstance(FORMATS.get(ICEBERG_VIEW), IcebergViewFormat)


def test_a_view_state_reaches_its_metadata_file_and_owns_its_location(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    files = ViewStateFiles(set(), AllowedRoots([root.as_uri()]))
    location = (root / "db" / "v_1").as_uri()
    metadata = f"{location}/metadata/00001-x.metadata.json"
    state = view(location, metadata)
    files.add(state)
    assert files.reachable == {normalize_path(metadata)}
    assert files.table_locations == {state.id: {location}}
    assert files.table_errors == {state.id: {}}
    assert files.followed(state)
    assert files.dropped(state, known=False) == (None, {})  # retained: known already
    other = view(location, f"{location}/metadata/00000-y.metadata.json")
    assert files.dropped(other, known=False) == ([location], {})
    assert files.dropped(other, known=True) == (None, {})


def test_a_view_state_outside_the_roots_is_an_error_never_followed(tmp_path: Path) -> None:
    files = ViewStateFiles(set(), AllowedRoots([(tmp_path / "wh").as_uri()]))
    state = view("file:///etc", "file:///etc/passwd")
    files.add(state)
    assert files.reachable == set() and files.table_locations == {}
    assert set(files.table_errors[state.id]) == {f"content {state.id}",
                                                 f"content {state.id} location"}
    locations, errors = files.dropped(state, known=False)
    assert locations is None and "outside the allowed locations" in next(iter(errors.values()))
