"""The row algorithms over plain Arrow sides: counting cancels carry-over rows and keeps
duplicates, identifiers pair updates, pages never overlap, bad input is typed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pytest

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.rows import (
    PARTITION_COLUMN,
    FileRef,
    ReadCounter,
    RowChanges,
    RowDiff,
    RowSide,
    diff_rows,
)
from spark_lakeversion.rows.schema import union_schema, with_field_id

SCHEMA = pa.schema([with_field_id(pa.field("id", pa.int64()), 1),
                    with_field_id(pa.field("v", pa.string()), 2)])


class ListSide(RowSide):
    def __init__(self, rows: list[tuple[int, str]], partition: str = "") -> None:
        super().__init__([FileRef("mem", partition)] if rows else [])
        self.rows = rows

    def batches(self, files: Sequence[FileRef] | None = None, *,
                partition: bool = False) -> Iterator[pa.RecordBatch]:
        if not self.rows:
            return
        ids, vs = zip(*self.rows, strict=True)
        arrays = [pa.array(ids, pa.int64()), pa.array(vs, pa.string())]
        fields = list(SCHEMA)
        if partition:
            arrays.append(pa.array([self.files[0].partition] * len(ids), pa.string()))
            fields.append(pa.field(PARTITION_COLUMN, pa.string()))
        yield pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def changes(before: list[tuple[int, str]], after: list[tuple[int, str]],
            identifier: tuple[str, ...] = ()) -> RowChanges:
    return RowChanges(SCHEMA, identifier, ListSide(before, "p=1"), ListSide(after, "p=1"),
                      ReadCounter())


def test_carry_over_rows_cancel_and_one_update_is_a_pair() -> None:
    before = [(i, f"v{i}") for i in range(100)]
    after = [(i, f"v{i}") if i != 7 else (7, "new") for i in range(100)]
    result = diff_rows(changes(before, after, ("id",)))
    assert result.column_names == ["change", "id", "v"]
    assert result.to_pylist() == [{"change": "update_before", "id": 7, "v": "v7"},
                                  {"change": "update_after", "id": 7, "v": "new"}]
    assert result.schema.field("id").metadata == SCHEMA.field("id").metadata


def test_without_identifier_duplicates_are_counted() -> None:
    before = [(1, "a"), (1, "a"), (2, "b")]
    after = [(1, "a"), (2, "b"), (2, "b"), (3, "c")]
    result = diff_rows(changes(before, after))
    got = Counter((r["change"], r["id"], r["v"]) for r in result.to_pylist())
    assert got == Counter({("delete", 1, "a"): 1, ("insert", 2, "b"): 1,
                           ("insert", 3, "c"): 1})


def test_pages_cover_the_diff_once_and_summary_counts() -> None:
    before = [(i, "x") for i in range(50)]
    after = [(i, "y") for i in range(25)] + [(i, "x") for i in range(25, 40)] + \
        [(i, "z") for i in range(100, 110)]
    with RowDiff(changes(before, after, ("id",)), memory_bytes=64 * 1024 * 1024) as diff:
        whole = diff.rows()
        pages = [diff.rows(["id"], limit=7, offset=o) for o in range(0, diff.total, 7)]
        summary = diff.summary().to_pylist()
    assert whole.num_rows == diff_total(25, 10, 10)
    assert [r for p in pages for r in p.column("id").to_pylist()] == \
        whole.column("id").to_pylist()
    assert summary == [{"partition": "p=1", "inserted": 10, "deleted": 10, "updated": 25}]


def diff_total(updated: int, deleted: int, inserted: int) -> int:
    return 2 * updated + deleted + inserted


def test_bad_columns_limit_and_change_column_are_typed() -> None:
    with RowDiff(changes([(1, "a")], [(2, "b")])) as diff:
        with pytest.raises(InvalidInput, match="unknown column"):
            diff.rows(["nope"])
        with pytest.raises(InvalidInput, match="limit"):
            diff.rows(limit=-1)
    with pytest.raises(InvalidInput, match="named 'change'"):
        union_schema(pa.schema([("change", pa.int64())]), pa.schema([("change", pa.int64())]))


def test_columns_match_by_field_id_across_a_rename() -> None:
    before = pa.schema([with_field_id(pa.field("name", pa.string()), 2)])
    after = pa.schema([with_field_id(pa.field("full_name", pa.string()), 2),
                       with_field_id(pa.field("name", pa.int32()), 3)])
    union = union_schema(before, after)
    assert union.names == ["full_name", "name"]


def test_the_memory_budget_is_the_databases_limit_and_its_spill_directory_its_own() -> None:
    """A diff's database spills to a directory of its own, under the process's spill
    directory: made only if it spills (DuckDB makes it), gone with the database."""
    with RowDiff(changes([(1, "a")], [(1, "b")]), memory_bytes=48 * 1024 * 1024) as diff:
        limit, spill = diff._con.execute("SELECT current_setting('memory_limit'), "
                                         "current_setting('temp_directory')").fetchone()
        with RowDiff(changes([(1, "a")], [(2, "a")])) as other:
            assert other.total == 2
            assert other._con.execute("SELECT current_setting('temp_directory')"
                                      ).fetchone()[0] != spill
    assert limit.startswith("48")
    assert Path(spill).parent.name.startswith("lakeversion-rows-")
    assert not Path(spill).exists()


def test_limits_and_offsets_past_64_bits_are_refused() -> None:
    from spark_lakeversion.rows.page import PageToken

    with RowDiff(changes([(1, "a")], [(2, "b")])) as diff:
        with pytest.raises(InvalidInput, match="limit"):
            diff.rows(limit=10**30)
        with pytest.raises(InvalidInput, match="offset"):
            diff.rows(offset=10**30)
    with pytest.raises(InvalidInput, match="page_token"):
        PageToken.decode(PageToken("a", "b", 10**30).encode())


class FailingSide(ListSide):
    """A side whose reader refuses a file midway (as the Iceberg reader refuses a delete file
    it cannot apply): the diff must raise that typed error, not DuckDB's wrapping of it."""

    def batches(self, files: Sequence[FileRef] | None = None, *,
                partition: bool = False) -> Iterator[pa.RecordBatch]:
        yield from super().batches(files, partition=partition)
        raise InvalidInput("the delete file names no field ids")


def test_a_reader_error_inside_the_stream_is_raised_typed() -> None:
    rows = [(i, f"v{i}") for i in range(10)]
    broken = RowChanges(SCHEMA, ("id",), ListSide(rows, "p=1"), FailingSide(rows, "p=1"),
                        ReadCounter())
    with pytest.raises(InvalidInput, match="names no field ids"):
        diff_rows(broken)


def test_the_process_spill_directory_is_made_again_when_cleaned_away() -> None:
    """The process's spill directory is made again when a cleaner of the temporary
    directory took it (DuckDB makes only the last level of a spill directory)."""
    import shutil

    from spark_lakeversion.rows.engine import spill_directory

    root = Path(spill_directory()).parent
    shutil.rmtree(root)
    spill = Path(spill_directory())
    assert spill.parent == root and root.is_dir() and not spill.exists()
