"""`diff_table`'s join on the identifier gives exactly the counting diff's rows, in the same
order, for random sides of plain Parquet files (the sides DuckDB reads itself, so twice):
keys repeated on one side or both, NULL keys, NaN and -0.0, two identifier columns. Where
a key repeats with rows on both sides the join is not exact and the counting decides."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_lakeversion.rows import FileRef, ReadCounter, RowChanges, RowDiff, RowSide
from spark_lakeversion.rows import diff as diff_module
from spark_lakeversion.rows.diff import diff_table
from spark_lakeversion.rows.schema import with_field_id
from spark_lakeversion.rows.source import PARTITION_COLUMN, partition_labels

SCHEMA = pa.schema([with_field_id(pa.field("k1", pa.int64()), 1),
                    with_field_id(pa.field("k2", pa.string()), 2),
                    with_field_id(pa.field("x", pa.float64()), 3),
                    with_field_id(pa.field("s", pa.string()), 4)])

Row = tuple[int | None, str | None, float | None, str | None]

ROWS = st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 3)),
                          st.sampled_from(["a", "b", None]),
                          st.sampled_from([None, 0.0, -0.0, 1.5, math.nan]),
                          st.sampled_from([None, "", "p", "q"])), max_size=12)


class ParquetSide(RowSide):
    """A side whose rows are one local Parquet file with field ids: DuckDB reads it itself;
    its Arrow reader is the same rows, for the counting diff."""

    arrow = SCHEMA

    def __init__(self, rows: list[Row], path: Path) -> None:
        super().__init__([FileRef(str(path))] if rows else [])
        self.table = pa.Table.from_pylist(
            [dict(zip(SCHEMA.names, row, strict=True)) for row in rows], schema=SCHEMA)
        if rows:
            pq.write_table(self.table, path)

    def plain_parquet(self) -> list[str] | None:
        return [f.path for f in self.files]

    def batches(self, files: Sequence[FileRef] | None = None, *,
                partition: bool = False) -> Iterator[pa.RecordBatch]:
        for batch in self.table.to_batches():
            yield batch.append_column(PARTITION_COLUMN, partition_labels("", batch.num_rows)) \
                if partition else batch


def sides(tmp: Path, before: list[Row], after: list[Row], identifier: tuple[str, ...],
          name: str) -> RowChanges:
    return RowChanges(SCHEMA, identifier, ParquetSide(before, tmp / f"{name}-b.parquet"),
                      ParquetSide(after, tmp / f"{name}-a.parquet"), ReadCounter())


def repeats_across(before: list[Row], after: list[Row], width: int) -> bool:
    """Whether some key has rows on both sides and more than one on one of them."""
    b, a = Counter(r[:width] for r in before), Counter(r[:width] for r in after)
    return any(b[k] and a[k] and b[k] + a[k] > 2 for k in b)


def _same(left: pa.Table, right: pa.Table) -> bool:
    """Equal tables, NaN equal to NaN and -0.0 to 0.0 (as the diff's equality has it)."""
    def norm(table: pa.Table) -> list[tuple[object, ...]]:
        return [tuple("nan" if isinstance(v, float) and math.isnan(v) else
                      (0.0 if v == 0.0 and isinstance(v, float) else v) for v in row.values())
                for row in table.to_pylist()]
    return left.schema == right.schema and norm(left) == norm(right)


@pytest.mark.parametrize("identifier", [("k1",), ("k1", "k2")])
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=ROWS, after=ROWS, data=st.data())
def test_the_join_gives_the_counting_diffs_rows(tmp_path: Path, identifier: tuple[str, ...],
                                                before: list[Row], after: list[Row],
                                                data: st.DataObject,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # carry-over rows: some rows of `before` again in `after`, as a rewrite puts them back
    after = after + data.draw(st.lists(st.sampled_from(before), max_size=6)) if before \
        else after
    name = str(abs(hash((tuple(before), tuple(after), identifier))))
    changes = sides(tmp_path, before, after, identifier, name)
    with RowDiff(changes) as counting:
        expected = counting.rows()
    taken: list[bool] = []
    real = diff_module.joined_exact

    def spy(table: pa.Table) -> pa.Table | None:
        answer = real(table)
        taken.append(answer is not None)
        return answer

    monkeypatch.setattr(diff_module, "joined_exact", spy)
    got = diff_table(sides(tmp_path, before, after, identifier, name))
    assert _same(got, expected), (got.to_pylist(), expected.to_pylist())
    # the join was asked, and kept exactly when no key repeats with rows on both sides
    assert taken == [not repeats_across(before, after, len(identifier))]


def test_a_key_twice_before_and_once_after_is_left_to_the_counting(tmp_path: Path) -> None:
    """Two equal rows of one key before, one after: the join would pair both with the one
    and see no change; the counting sees one delete, and it is the answer."""
    row: Row = (1, "a", 1.5, "p")
    changes = sides(tmp_path, [row, row], [row], ("k1",), "twice")
    assert diff_table(changes).to_pylist() == [
        {"change": "delete", "k1": 1, "k2": "a", "x": 1.5, "s": "p"}]


def test_without_identifier_or_with_a_stream_side_the_counting_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The join needs an identifier and sides DuckDB may read twice (an Arrow stream is
    read once): otherwise it is never asked."""
    monkeypatch.setattr(diff_module, "joined_exact", lambda _: pytest.fail("join asked"))
    rows: list[Row] = [(1, "a", 1.5, "p"), (2, "b", None, None)]
    keyless = diff_table(sides(tmp_path, rows, rows[:1], (), "keyless"))
    assert keyless.to_pylist() == [{"change": "delete", "k1": 2, "k2": "b", "x": None,
                                    "s": None}]

    class Stream(ParquetSide):
        def plain_parquet(self) -> list[str] | None:
            return None

    streamed = RowChanges(SCHEMA, ("k1",), Stream(rows, tmp_path / "s-b.parquet"),
                          Stream(rows[:1], tmp_path / "s-a.parquet"), ReadCounter())
    assert diff_table(streamed).to_pylist() == keyless.to_pylist()
