"""Row-level three-way merge of Iceberg tables (issue 23, section 2), pyiceberg tables through
the real store: keyed (identifier field `id`) and keyless, copy-on-write rewrites and
merge-on-read position deletes. After every merge the rows are read back with pyiceberg and
with DuckDB's `iceberg_scan`; the target is unchanged (store and disk) after a conflict."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.table import StaticTable

from spark_lakeversion.errors import ConflictError, InvalidInput
from spark_lakeversion.limits import Limits
from spark_lakeversion.model import ConflictType
from tests.formats.iceberg.helpers import (
    KEY,
    RowLake,
    add_delete_file,
    arrow,
    expected,
    row_merged,
)


def test_updates_of_different_ids_in_one_cow_file_merge_to_both(lake: RowLake) -> None:
    lake.update(lake.main, (1, "main", 1))
    lake.commit("main", lake.main)
    lake.update(lake.dev, (2, "dev", 2))
    lake.commit("dev", lake.dev)
    dry = lake.store.merge("dev", "main", dry_run=True)
    assert dry.successful and dry.stats["files_rewritten"] == 1
    assert dry.stats["bytes_written"] == 0
    result = lake.store.merge("dev", "main")
    stats = row_merged(result)
    assert "CONCURRENT_REWRITE" in stats["file_conflicts"]
    assert result.stats["bytes_written"] > 0
    assert result.stats["files_rewritten"] == 1
    # the target file holding id 2 (nine rows) is written again, with the source's id 2
    assert result.stats["rows_rewritten"] == dry.stats["rows_rewritten"] == 9
    assert lake.rows() == expected(lake.base, {1: (1, "main", 1)}, {2: (2, "dev", 2)})


def test_deletes_of_different_ids_in_one_cow_file_merge_to_both(lake: RowLake) -> None:
    lake.main.delete("id = 3")
    lake.commit("main", lake.main)
    lake.dev.delete("id = 4")
    lake.commit("dev", lake.dev)
    row_merged(lake.store.merge("dev", "main"))
    assert lake.rows() == expected(lake.base, {3: None, 4: None})


def test_same_update_on_both_sides_merges_once(lake: RowLake) -> None:
    for table, ref in ((lake.main, "main"), (lake.dev, "dev")):
        lake.update(table, (5, "same", 50))
        lake.commit(ref, table)
    lake.store.merge("dev", "main")
    assert lake.rows() == expected(lake.base, {5: (5, "same", 50)})


def test_merge_on_read_delete_on_one_side_copy_on_write_on_the_other(lake: RowLake) -> None:
    [data_file] = [t.file.file_path for t in lake.dev.scan().plan_files()]
    lake.dev = add_delete_file(lake.dev, None, positions={data_file: [6]})  # id 7
    lake.commit("dev", lake.dev)
    lake.update(lake.main, (1, "main", 1))
    lake.commit("main", lake.main)
    row_merged(lake.store.merge("dev", "main"))
    assert lake.rows() == expected(lake.base, {1: (1, "main", 1)}, {7: None})


def test_keyed_same_cell_different_values_is_a_row_conflict(tmp_path: Path) -> None:
    lake = RowLake(tmp_path, keyed=True)
    lake.update(lake.main, (5, "main", 5))
    lake.commit("main", lake.main)
    lake.update(lake.dev, (5, "dev", 5))
    lake.commit("dev", lake.dev)
    head, files = lake.store.get_ref("main").head, lake.files_on_disk()
    with pytest.raises(ConflictError) as caught:
        lake.store.merge("dev", "main")
    [conflict] = caught.value.conflicts
    assert conflict.type is ConflictType.ROW_CONFLICT and conflict.key == KEY
    assert conflict.details["count"] == 1
    assert conflict.details["keys"] == [{
        "key": {"id": 5}, "reason": "update/update", "columns": ["a"],
        "base": {"id": 5, "a": "a5", "b": 5}, "target": {"id": 5, "a": "main", "b": 5},
        "source": {"id": 5, "a": "dev", "b": 5}}]
    assert lake.store.get_ref("main").head == head and lake.files_on_disk() == files
    # the option settles it, either way
    lake.store.merge("dev", "main", row_conflicts="target-wins", dry_run=True)
    lake.store.merge("dev", "main", row_conflicts="source-wins")
    assert lake.rows() == expected(lake.base, {5: (5, "dev", 5)})


def test_keyed_different_cells_of_one_row_merge_cell_by_cell(tmp_path: Path) -> None:
    lake = RowLake(tmp_path, keyed=True)
    lake.update(lake.main, (5, "main", 5))
    lake.commit("main", lake.main)
    lake.update(lake.dev, (5, "a5", 500))
    lake.commit("dev", lake.dev)
    lake.store.merge("dev", "main")
    assert lake.rows() == expected(lake.base, {5: (5, "main", 500)})


def test_keyed_delete_against_update_is_a_row_conflict(tmp_path: Path) -> None:
    lake = RowLake(tmp_path, keyed=True)
    lake.main.delete("id = 5")
    lake.commit("main", lake.main)
    lake.update(lake.dev, (5, "dev", 5))
    lake.commit("dev", lake.dev)
    with pytest.raises(ConflictError) as caught:
        lake.store.merge("dev", "main")
    [conflict] = caught.value.conflicts
    assert conflict.details["keys"][0]["reason"] == "delete/update"
    assert conflict.details["keys"][0]["target"] is None
    lake.store.merge("dev", "main", row_conflicts="target-wins")
    assert lake.rows() == expected(lake.base, {5: None})


def test_keyless_rows_whose_count_changed_differently_conflict(tmp_path: Path) -> None:
    """Without identifier fields an update is a delete and an insert of whole rows: two
    different updates of one id keep both new rows; a row deleted on one side and
    duplicated on the other changed its count differently: ROW_CONFLICT."""
    lake = RowLake(tmp_path, keyed=False)
    lake.main.delete("id = 5")
    lake.commit("main", lake.main)
    lake.dev.append(arrow(lake.schema, [(5, "a5", 5)]))
    lake.dev.delete("id = 6")
    lake.commit("dev", lake.dev)
    with pytest.raises(ConflictError) as caught:
        lake.store.merge("dev", "main", isolation_level="snapshot")
    [conflict] = caught.value.conflicts
    assert conflict.type is ConflictType.ROW_CONFLICT
    assert conflict.details["keys"] == [{"key": {"id": 5, "a": "a5", "b": 5},
                                         "reason": "count/count", "base": 1, "target": 0,
                                         "source": 2}]
    lake.store.merge("dev", "main", isolation_level="snapshot", row_conflicts="source-wins")
    assert lake.rows() == sorted([*expected(lake.base, {6: None}), (5, "a5", 5)])


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "keyless"])
def test_serializable_delete_conflicts_with_rows_the_other_side_inserted(
        tmp_path: Path, keyed: bool) -> None:
    lake = RowLake(tmp_path, keyed=keyed)
    lake.main.append(arrow(lake.schema, [(11, "new", 11), (12, "new", 12)]))
    lake.main.delete("id = 1")  # keyless: one row out, two in: one net insert
    lake.commit("main", lake.main)
    lake.dev.delete("id = 2")
    lake.commit("dev", lake.dev)
    with pytest.raises(ConflictError) as caught:
        lake.store.merge("dev", "main")
    [conflict] = caught.value.conflicts
    assert conflict.type.value == "CONCURRENT_APPEND_IN_READ_PARTITION"
    assert conflict.details["rows"] == (2 if keyed else 1)
    lake.store.merge("dev", "main", isolation_level="snapshot")
    assert lake.rows() == expected(lake.base, {1: None, 2: None, 11: (11, "new", 11),
                                               12: (12, "new", 12)})


def test_recorded_delete_predicate_spares_rows_it_does_not_match(tmp_path: Path) -> None:
    from spark_lakeversion.formats.iceberg.merge.rules import DELETE_PREDICATE_PROPERTY

    lake = RowLake(tmp_path, keyed=True)
    lake.main.append(arrow(lake.schema, [(11, "new", 11)]))
    lake.main.delete("id = 1")
    lake.commit("main", lake.main)
    lake.dev.delete("id = 2", snapshot_properties={DELETE_PREDICATE_PROPERTY: "id = 2"})
    lake.commit("dev", lake.dev)
    lake.store.merge("dev", "main")
    assert lake.rows() == expected(lake.base, {1: None, 2: None, 11: (11, "new", 11)})


def test_past_the_row_merge_limit_the_file_level_conflict_stands(tmp_path: Path) -> None:
    lake = RowLake(tmp_path, keyed=True, limits=Limits(max_row_merge_bytes=10))
    lake.main.delete("id = 3")
    lake.commit("main", lake.main)
    lake.dev.delete("id = 4")
    lake.commit("dev", lake.dev)
    with pytest.raises(ConflictError) as caught:
        lake.store.merge("dev", "main")
    assert caught.value.conflicts[0].type.value == "CONCURRENT_REWRITE"
    [detail] = caught.value.result.details  # type: ignore[union-attr]
    reason = detail.statistics["row_merge"]["not_merged"]
    assert "--max-row-merge-bytes" in reason and "--max-row-memory-bytes" in reason


def test_the_smallest_memory_budget_still_merges_out_of_core(tmp_path: Path) -> None:
    """`max_row_memory_bytes` caps DuckDB (past it, it spills); it never refuses a merge."""
    lake = RowLake(tmp_path, keyed=True, limits=Limits(max_row_memory_bytes=1))
    lake.main.delete("id = 3")
    lake.commit("main", lake.main)
    lake.dev.delete("id = 4")
    lake.commit("dev", lake.dev)
    result = lake.store.merge("dev", "main")
    assert result.stats["files_rewritten"] == 1
    assert lake.rows() == expected(lake.base, {3: None, 4: None})


@pytest.mark.parametrize("value", ["theirs", "", "source wins"])
def test_a_bad_row_conflicts_value_is_refused_before_anything(tmp_path: Path,
                                                              value: str) -> None:
    lake = RowLake(tmp_path, keyed=True)
    head = lake.store.get_ref("main").head
    with pytest.raises(InvalidInput, match="row_conflicts"):
        lake.store.merge("dev", "main", row_conflicts=value)
    assert lake.store.get_ref("main").head == head


def test_rewritten_files_are_new_files_under_the_table_location(tmp_path: Path) -> None:
    lake = RowLake(tmp_path, keyed=True)
    lake.update(lake.main, (1, "main", 1))
    lake.commit("main", lake.main)
    lake.update(lake.dev, (2, "dev", 2))
    lake.commit("dev", lake.dev)
    before = lake.files_on_disk()
    result = lake.store.merge("dev", "main")
    new_data = {f for f in lake.files_on_disk() - before if f.endswith(".parquet")}
    assert len(new_data) == 1 and result.stats["files_rewritten"] == 1
    table_dir = lake.location().removeprefix("file://").rsplit("/metadata/", 1)[0]
    assert all(f.startswith(table_dir + "/data/") for f in new_data)
    live = {t.file.file_path.removeprefix("file://")
            for t in StaticTable.from_metadata(lake.location()).scan().plan_files()}
    assert new_data <= live
    assert before >= {f for f in live if f not in new_data}  # the rest reused


def test_both_sides_appending_one_new_key_take_it_once(tmp_path: Path) -> None:
    """Each side appended a file of its own with the same new row: the files commute, the
    key does not; the merge goes down to rows and keeps the row once."""
    lake = RowLake(tmp_path, keyed=True)
    for table, ref, rows in ((lake.main, "main", [(11, "new", 11), (12, "m", 12)]),
                             (lake.dev, "dev", [(11, "new", 11), (13, "d", 13)])):
        table.append(arrow(lake.schema, rows))
        lake.commit(ref, table)
    result = lake.store.merge("dev", "main")
    assert row_merged(result)["file_conflicts"] == ["SHARED_NEW_KEYS"]
    assert lake.rows() == expected(lake.base, {11: (11, "new", 11), 12: (12, "m", 12),
                                               13: (13, "d", 13)})


def test_both_sides_appending_one_new_key_differently_is_a_row_conflict(
        tmp_path: Path) -> None:
    lake = RowLake(tmp_path, keyed=True)
    for table, ref, value in ((lake.main, "main", "m"), (lake.dev, "dev", "d")):
        table.append(arrow(lake.schema, [(11, value, 11)]))
        lake.commit(ref, table)
    head, files = lake.store.get_ref("main").head, lake.files_on_disk()
    with pytest.raises(ConflictError) as caught:
        lake.store.merge("dev", "main")
    [conflict] = caught.value.conflicts
    assert conflict.type is ConflictType.ROW_CONFLICT
    assert conflict.details["keys"] == [{
        "key": {"id": 11}, "reason": "insert/insert", "columns": ["a"], "base": None,
        "target": {"id": 11, "a": "m", "b": 11}, "source": {"id": 11, "a": "d", "b": 11}}]
    assert lake.store.get_ref("main").head == head and lake.files_on_disk() == files
    lake.store.merge("dev", "main", row_conflicts="source-wins")
    assert lake.rows() == expected(lake.base, {11: (11, "d", 11)})


def test_appends_of_different_new_keys_still_replay_files(tmp_path: Path) -> None:
    """No key in common: the source's file is reused as it is (no row merge, nothing
    rewritten)."""
    lake = RowLake(tmp_path, keyed=True)
    for table, ref, key in ((lake.main, "main", 11), (lake.dev, "dev", 12)):
        table.append(arrow(lake.schema, [(key, "x", key)]))
        lake.commit(ref, table)
    result = lake.store.merge("dev", "main")
    [detail] = result.details
    assert "row_merge" not in detail.statistics
    assert result.stats["files_rewritten"] == 0
    assert lake.rows() == expected(lake.base, {11: (11, "x", 11), 12: (12, "x", 12)})


def test_equality_deletes_are_row_diffed_and_row_merged(tmp_path: Path) -> None:
    """A real equality-delete file (on `id`, with field ids, committed through the catalog
    with pyiceberg's own writers) on one side: the row diff shows the rows it deletes, and
    the row merge (both sides position-deleted rows of the same file) reads that side's rows
    with it applied, so every delete lands."""
    lake = RowLake(tmp_path, keyed=True)
    [data_file] = [t.file.file_path for t in lake.dev.scan().plan_files()]
    lake.dev = add_delete_file(lake.dev, None, equality_ids=[1], properties={"ids": "7,8"})
    lake.dev = add_delete_file(lake.dev, None, positions={data_file: [2]})  # id 3
    lake.commit("dev", lake.dev)
    page = lake.store.diff_rows("main", "dev", KEY)
    assert sorted((r["change"], r["id"]) for r in page.rows.to_pylist()) == [
        ("delete", 3), ("delete", 7), ("delete", 8)]
    lake.main = add_delete_file(lake.main, None, positions={data_file: [3]})  # id 4
    lake.commit("main", lake.main)
    assert row_merged(lake.store.merge("dev", "main"))["file_conflicts"] == [
        "SHARED_POSITION_DELETES"]
    assert lake.rows() == expected(lake.base, {3: None, 4: None, 7: None, 8: None})
    page = lake.store.diff_rows("dev", "main", KEY)
    assert [(r["change"], r["id"]) for r in page.rows.to_pylist()] == [("delete", 4)]
