"""The row diff between refs of Iceberg tables written by pyiceberg through a real server:
equal to a plain diff of two full scans for random histories, shared files never opened,
every surface's bad input typed."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_lakeversion.api import connect
from spark_lakeversion.errors import Forbidden, InvalidInput, KeyNotFound, RefNotFound
from spark_lakeversion.model import Key
from spark_lakeversion.rows.source import ReadCounter
from tests.lake import ServerLake
from tests.rows.helpers import (
    KEYED_ARROW,
    as_counter,
    reference_diff,
    scan,
    team_reader_server,
    update,
)


def test_one_update_in_a_copy_on_write_file_is_one_pair(lake: ServerLake) -> None:
    lake.store.create_ref("dev")
    update(lake, "dev", "db.k", 7, "seven")
    rows = connect(lake.server.url).ref("main").diff_rows("dev", "db.k")
    assert rows.column_names == ["change", "id", "v"]
    assert rows.to_pylist() == [{"change": "update_before", "id": 7, "v": "v7"},
                                {"change": "update_after", "id": 7, "v": "seven"}]


def test_shared_files_are_never_opened(lake: ServerLake) -> None:
    """db.k has 4 data files; dev rewrites one: only that file and its replacement open."""
    from spark_lakeversion.formats.iceberg.rows import row_changes

    lake.store.create_ref("dev")
    update(lake, "dev", "db.k", 2, "two")
    before = lake.store.get_content("main", "db.k")
    after = lake.store.get_content("dev", "db.k")
    changes = row_changes(before, after, lake.store.io_properties)
    list(changes.before.batches())
    list(changes.after.batches())
    main_files = {f.file_path for f in lake.catalog("main").load_table("db.k")
                  .scan().plan_files() for f in [f.file]}
    dev_files = {f.file.file_path for f in lake.catalog("dev").load_table("db.k")
                 .scan().plan_files()}
    shared = main_files & dev_files
    assert len(shared) == 3 and changes.skipped == 3
    assert changes.counter.paths() == main_files ^ dev_files
    assert not changes.counter.paths() & shared


def _count_opened(monkeypatch: pytest.MonkeyPatch) -> ReadCounter:
    """From here on, every file the Iceberg row reader opens (metadata, manifest lists,
    manifests, data and delete files) is recorded in the counter returned."""
    from spark_lakeversion.formats.iceberg import rows

    opened = ReadCounter()
    real = getattr(rows.file_io, "real", rows.file_io)

    def counting(location: str, properties: Any) -> Any:
        return rows.CountingFileIO(real(location, properties), opened)

    counting.real = real  # type: ignore[attr-defined]
    monkeypatch.setattr(rows, "file_io", counting)
    return opened


def test_a_manifest_on_both_sides_is_never_opened(lake: ServerLake,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Every metadata, manifest list and manifest the planner opens is recorded: of the
    manifests, only those listed on exactly one side are opened."""
    from spark_lakeversion.formats.iceberg import rows

    lake.store.create_ref("dev")
    update(lake, "dev", "db.k", 2, "two")
    opened = _count_opened(monkeypatch)
    before = lake.store.get_content("main", "db.k")
    after = lake.store.get_content("dev", "db.k")
    rows.row_changes(before, after, lake.store.io_properties)
    listed = [{m.manifest_path for m in lake.catalog(ref).load_table("db.k")
               .current_snapshot().manifests(lake.catalog(ref).load_table("db.k").io)}
              for ref in ("main", "dev")]
    shared = listed[0] & listed[1]
    assert len(shared) >= 3 and listed[0] ^ listed[1]
    assert opened.paths() & (listed[0] | listed[1]) == listed[0] ^ listed[1]


def test_a_second_diff_of_the_same_states_reads_no_metadata_again(
        lake: ServerLake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Metadata files, manifest lists and manifests never change once written: what the
    first diff parsed is kept (`filecache`), so the next diff (or `changes.` check) of the
    same states opens none of them, and gives the same rows."""
    from spark_lakeversion.formats.iceberg import rows
    from spark_lakeversion.rows.diff import diff_table

    lake.store.create_ref("dev")
    update(lake, "dev", "db.k", 2, "two")
    opened = _count_opened(monkeypatch)
    before = lake.store.get_content("main", "db.k")
    after = lake.store.get_content("dev", "db.k")
    first = diff_table(rows.row_changes(before, after, lake.store.io_properties))
    metadata = {str(c.fields["metadata_location"]) for c in (before, after)}
    parsed = {p for p in opened.paths() if not p.endswith(".parquet")}
    assert metadata < parsed and any(p.endswith(".avro") for p in parsed)
    again = _count_opened(monkeypatch)
    second = diff_table(rows.row_changes(before, after, lake.store.io_properties))
    assert second.to_pylist() == first.to_pylist() == [
        {"change": "update_before", "id": 2, "v": "v2"},
        {"change": "update_after", "id": 2, "v": "two"}]
    assert {p for p in again.paths() if not p.endswith(".parquet")} == set()


def test_summary_paging_and_columns(lake: ServerLake) -> None:
    lake.store.create_ref("dev")
    for key in (1, 6, 11):
        update(lake, "dev", "db.k", key, "x")
    lake.catalog("dev").load_table("db.k").delete("id = 16")
    main = connect(lake.server.url).ref("main")
    summary = main.diff_rows("dev", "db.k", summary=True).to_pylist()
    assert summary == [{"partition": "", "inserted": 0, "deleted": 1, "updated": 3}]
    assert main.diff_rows("dev", "db.k", columns=["id"], limit=3).to_pylist() == [
        {"change": "update_before", "id": 1}, {"change": "update_after", "id": 1},
        {"change": "update_before", "id": 6}]
    first = lake.store.diff_rows("main", "dev", "db.k", limit=4)
    second = lake.store.diff_rows("main", "dev", "db.k", limit=4,
                                  page_token=first.next_page_token)
    assert first.total == 7 and second.next_page_token is None
    assert first.rows.num_rows + second.rows.num_rows == 7


def test_bad_input_is_typed(lake: ServerLake) -> None:
    main = connect(lake.server.url).ref("main")
    with pytest.raises(RefNotFound):
        main.diff_rows("nope", "db.k")
    with pytest.raises(KeyNotFound):
        main.diff_rows("main", "db.missing")
    with pytest.raises(InvalidInput, match="unknown column"):
        main.diff_rows("main", "db.k", columns=["nope"])
    with pytest.raises(InvalidInput, match="limit"):
        main.diff_rows("main", "db.k", limit=-1)
    with pytest.raises(InvalidInput, match="page_token"):
        lake.store.diff_rows("main", "main", "db.k", page_token="!!")


def test_reading_a_diff_needs_read_on_both_refs(tmp_path: Path) -> None:
    """`viewer` reads team-* only: a diff against main is Forbidden, over Python and REST,
    and the refusal names no row."""
    import httpx

    from spark_lakeversion.versioning.http import RestVersionStore

    with team_reader_server(tmp_path) as (server, tokens):
        viewer = RestVersionStore(server.url, tokens["viewer"])
        with pytest.raises(Forbidden):
            viewer.diff_rows("main", "team-1", "db.k")
        assert viewer.diff_rows("team-1", "team-1", "db.k").total == 0
        answer = httpx.get(f"{server.api_url}/diff/rows", params={
            "from": "team-1", "to": "main", "table": "db.k"},
            headers={"Authorization": f"Bearer {tokens['viewer']}"})
        assert answer.status_code == 403 and "secret" not in answer.text
        assert answer.json()["error"]["type"] == "Forbidden"
        rows = RestVersionStore(server.url, tokens["root"]).diff_rows("main", "team-1", "db.k")
        assert rows.rows.column("v").to_pylist() == ["secret", "changed"]


def test_rest_pages_json_and_bad_parameters(lake: ServerLake) -> None:
    import httpx

    lake.store.create_ref("dev")
    for key in (3, 4):
        update(lake, "dev", "db.k", key, "x")
    url = f"{lake.server.api_url}/diff/rows"
    base = {"from": "main", "to": "dev", "table": "db.k"}
    first = httpx.get(url, params={**base, "limit": "3"}).json()
    assert first["total"] == 4 and len(first["rows"]) == 3
    assert first["rows"][0] == {"change": "update_before", "id": 3, "v": "v3"}
    assert [c["name"] for c in first["columns"]] == ["change", "id", "v"]
    rest = httpx.get(url, params={**base, "limit": "3",
                                  "page_token": first["next_page_token"]}).json()
    assert rest["rows"] == [{"change": "update_after", "id": 4, "v": "x"}]
    assert rest["next_page_token"] is None
    for params, status, code in (({**base, "limit": "x"}, 400, "INVALID_INPUT"),
                                 ({**base, "summary": "maybe"}, 400, "INVALID_INPUT"),
                                 ({**base, "columns": "id,,v"}, 400, "INVALID_INPUT"),
                                 ({**base, "columns": "nope"}, 400, "INVALID_INPUT"),
                                 ({**base, "page_token": "zz"}, 400, "INVALID_INPUT"),
                                 ({**base, "to": "nope"}, 404, "REF_NOT_FOUND"),
                                 ({**base, "table": "db.none"}, 404, "KEY_NOT_FOUND"),
                                 ({"from": "main", "to": "dev"}, 400, "INVALID_INPUT")):
        answer = httpx.get(url, params=params)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), params
    update(lake, "dev", "db.k", 5, "moved")
    moved = httpx.get(url, params={**base, "limit": "3",
                                   "page_token": first["next_page_token"]})
    assert moved.status_code == 409
    assert moved.json()["error"]["code"] == "REFERENCE_CONFLICT"


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, int, str]]:
    ops = st.tuples(st.sampled_from(["update", "delete", "insert"]),
                    st.integers(0, 25), st.sampled_from(["a", "b", "c"]))
    return draw(st.lists(ops, min_size=1, max_size=4))


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_diff_equals_the_plain_diff_of_full_scans(lake: ServerLake,
                                                  history: list[tuple[str, int, str]]) -> None:
    """Random inserts, updates and deletes on a fresh branch of the keyed table; the keyless
    one gets the same rows appended (duplicates allowed)."""
    branch = f"h{uuid.uuid4().hex[:12]}"
    lake.store.create_ref(branch)
    table = lake.catalog(branch).load_table("db.k")
    for op, key, value in history:
        table = lake.catalog(branch).load_table("db.k")
        present = key in table.scan().to_arrow()["id"].to_pylist()
        if op == "delete" and present:
            table.delete(f"id = {key}")
        elif op == "update" and present:
            update(lake, branch, "db.k", key, value)
        elif op != "delete" and not present:
            table.append(pa.table({"id": [key], "v": [value]}, schema=KEYED_ARROW))
        lake.append(branch, "db.t", [key % 4])
    for name, key in (("db.k", "id"), ("db.t", None)):
        got = lake.store.diff_rows("main", branch, Key.of(name)).rows
        assert as_counter(got) == reference_diff(scan(lake, "main", name),
                                                 scan(lake, branch, name), key), name


def test_a_renamed_column_is_matched_by_field_id(lake: ServerLake) -> None:
    lake.store.create_ref("dev")
    table = lake.catalog("dev").load_table("db.k")
    with table.update_schema() as update:
        update.rename_column("v", "label")
    table = lake.catalog("dev").load_table("db.k")
    table.overwrite(pa.table({"id": [5], "label": ["five"]},
                             schema=table.schema().as_arrow()), overwrite_filter="id = 5")
    rows = lake.store.diff_rows("main", "dev", "db.k").rows
    assert rows.column_names == ["change", "id", "label"]
    assert rows.to_pylist() == [{"change": "update_before", "id": 5, "label": "v5"},
                                {"change": "update_after", "id": 5, "label": "five"}]
    # the other direction names it as main does
    back = lake.store.diff_rows("dev", "main", "db.k").rows
    assert back.column_names == ["change", "id", "v"]


def test_a_table_on_one_side_only_is_all_inserts_or_deletes(lake: ServerLake) -> None:
    lake.store.create_ref("dev")
    lake.catalog("dev").create_table("db.new", schema=KEYED_ARROW).append(
        pa.table({"id": [1, 2], "v": ["a", "b"]}, schema=KEYED_ARROW))
    added = lake.store.diff_rows("main", "dev", "db.new").rows
    assert [r["change"] for r in added.to_pylist()] == ["insert", "insert"]
    dropped = lake.store.diff_rows("dev", "main", "db.new").rows
    assert [r["change"] for r in dropped.to_pylist()] == ["delete", "delete"]
