"""The out-of-core row merge (`rows.merge_rows.RowMerger`, running `rows.merge_sql` in DuckDB)
against the plain-Python three-way reference of `tests.rows.helpers`, for random ancestors
and random edits on both sides of a keyed and of a keyless table: the merged table (the
target's files the merge keeps plus the rows it writes) equals the reference's rows, and the
conflicts are the identities the reference finds changed differently on both sides. The rows
are real Arrow batches behind a `RowSide`; nothing is mocked."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_lakeversion.rows.merge_rows import CannotMergeRows, RowMerger
from spark_lakeversion.rows.source import FileRef, ReadCounter, RowChanges, RowSide
from tests.rows.helpers import keyless_sides, reference_keyed, reference_keyless

SCHEMA = pa.schema([("id", pa.int64()), ("a", pa.int64()), ("b", pa.string())])
VALUES = st.one_of(st.none(), st.integers(0, 2))
TEXTS = st.sampled_from([None, "x", "y"])
KEYLESS_ROW = st.tuples(st.integers(0, 2), VALUES, TEXTS)


class ArrowSide(RowSide):
    """A side whose files are Arrow tables held by path."""

    def __init__(self, files: dict[str, list[tuple[Any, ...]]]) -> None:
        super().__init__([FileRef(p) for p in files])
        self.rows = files

    def batches(self, files: Sequence[FileRef] | None = None, *,
                partition: bool = False) -> Iterator[pa.RecordBatch]:
        for ref in files if files is not None else self.files:
            rows = self.rows[ref.path]
            table = pa.Table.from_pylist([dict(zip(SCHEMA.names, r, strict=True))
                                          for r in rows], schema=SCHEMA)
            yield from table.to_batches(max_chunksize=2)  # several batches per file


def changes(base: list[tuple], side: list[tuple], keyed: bool) -> RowChanges:
    """The base's one file either untouched (the side equals it) or replaced by the side's
    rows in a file of its own."""
    before = ArrowSide({} if side == base else {"base.parquet": base})
    after = ArrowSide({} if side == base else {f"{id(side)}.parquet": side})
    return RowChanges(SCHEMA, ("id",) if keyed else (), before, after, ReadCounter())


def merged(base: list[tuple], target: list[tuple], source: list[tuple], keyed: bool,
           resolution: str | None) -> tuple[list[tuple], set, int]:
    """The engine's merged rows (sorted), conflicting identities and conflict count."""
    t = changes(base, target, keyed)
    outcome = RowMerger(t, changes(base, source, keyed), resolution=resolution,
                        memory_bytes=1).plan()
    identities = {c.identity[0] if keyed else c.identity for c in outcome.conflicts}
    if not outcome.clean:
        assert outcome.rows is None and not outcome.removed
        return sorted(target, key=repr), identities, outcome.conflict_count
    files = {"base.parquet": base} if target == base else t.after.rows  # type: ignore[attr-defined]
    kept = [r for p, rows in files.items() if p not in outcome.removed for r in rows]
    written = [tuple(r.values()) for b in (outcome.rows.batches() if outcome.rows else [])
               for r in b.to_pylist()]
    assert outcome.statistics["rows_rewritten"] == len(written)
    return sorted(kept + written, key=repr), identities, outcome.resolved


@st.composite
def keyed_sides(draw: st.DrawFn) -> tuple[list, list, list]:
    base = {k: (k, draw(VALUES), draw(TEXTS)) for k in draw(st.sets(st.integers(0, 6),
                                                                    max_size=6))}

    def edit() -> list:
        side = dict(base)
        for key in draw(st.lists(st.integers(0, 8), max_size=5)):
            action = draw(st.sampled_from(["delete", "update", "upsert"]))
            if action == "delete":
                side.pop(key, None)
            elif action == "update" and key in side:
                row = list(side[key])
                column = draw(st.integers(1, 2))
                row[column] = draw(VALUES if column == 1 else TEXTS)
                side[key] = tuple(row)
            else:
                side[key] = (key, draw(VALUES), draw(TEXTS))
        return list(side.values())

    return list(base.values()), edit(), edit()


@settings(max_examples=150, deadline=None)
@given(keyed_sides(), st.sampled_from([None, "source-wins", "target-wins"]))
def test_keyed_engine_matches_the_plain_reference(sides: tuple[list, list, list],
                                                  resolution: str | None) -> None:
    base, target, source = sides
    got, conflicts, count = merged(base, target, source, True, resolution)
    want, want_conflicts = reference_keyed({r[0]: r for r in base}, {r[0]: r for r in target},
                                           {r[0]: r for r in source}, resolution)
    assert count == len(want_conflicts)
    if resolution is None and want_conflicts:
        assert conflicts == want_conflicts
        return
    assert got == sorted(want.values(), key=repr)


@settings(max_examples=150, deadline=None)
@given(keyless_sides(KEYLESS_ROW), st.sampled_from([None, "source-wins", "target-wins"]))
def test_keyless_engine_matches_the_plain_reference(sides: tuple[list, list, list],
                                                    resolution: str | None) -> None:
    base, target, source = sides
    got, conflicts, count = merged(base, target, source, False, resolution)
    want, want_conflicts = reference_keyless(base, target, source, resolution)
    assert count == len(want_conflicts)
    if resolution is None and want_conflicts:
        assert conflicts == want_conflicts
        return
    assert got == sorted(want, key=repr)


def test_conflicts_are_listed_up_to_100_and_all_counted() -> None:
    base = [(k, 0, "b") for k in range(250)]
    target = [(k, 1, "b") for k in range(250)]
    source = [(k, 2, "b") for k in range(250)]
    t, s = changes(base, target, True), changes(base, source, True)
    outcome = RowMerger(t, s).plan()
    assert outcome.conflict_count == 250 and len(outcome.conflicts) == 100
    assert [c.identity for c in outcome.conflicts] == [(k,) for k in range(100)]
    assert outcome.rows is None


def test_a_key_twice_on_one_side_cannot_go_down_to_rows() -> None:
    base = [(1, 0, "b")]
    with pytest.raises(CannotMergeRows, match="do not name one row on the target"):
        RowMerger(changes(base, [(1, 0, "b"), (1, 1, "b")], True),
                  changes(base, [(1, 2, "b")], True)).plan()


def test_past_the_row_merge_limit_nothing_is_merged_and_spark_is_named() -> None:
    base = [(k, 0, "b") for k in range(50)]
    with pytest.raises(CannotMergeRows, match="--max-row-memory-bytes"):
        RowMerger(changes(base, base[1:], True), changes(base, base[:-1], True),
                  max_bytes=100).plan()


class TableSide(RowSide):
    """A side whose files are Arrow tables, read in batches."""

    def __init__(self, files: dict[str, pa.Table]) -> None:
        super().__init__([FileRef(p) for p in files])
        self.tables = files

    def batches(self, files: Sequence[FileRef] | None = None, *,
                partition: bool = False) -> Iterator[pa.RecordBatch]:
        for ref in files if files is not None else self.files:
            yield from self.tables[ref.path].to_batches(max_chunksize=50_000)


def test_a_keyed_region_larger_than_the_memory_budget_merges_out_of_core() -> None:
    """700,000 rows per state (about 165 MB of Arrow over the three) merged within a
    128 MiB budget: DuckDB spills to the merge's own directory instead of failing. (Far
    smaller budgets fail inside DuckDB: 64 MiB is not reliably enough for its operators.)"""
    import pyarrow.compute as pc

    n = 700_000
    ids = pa.array(range(n), pa.int64())
    base = pa.table({"id": ids, "v": pc.binary_join_element_wise(
        pc.cast(ids, pa.string()), pa.scalar("x" * 60), "-")})
    assert 3 * base.nbytes > 128 * 1024 * 1024

    def side(changed: int) -> RowChanges:
        after = base.set_column(1, "v", pc.if_else(pc.equal(base["id"], changed),
                                                   pa.scalar("changed"), base["v"]))
        return RowChanges(base.schema, ("id",), TableSide({"base": base}),
                          TableSide({f"after-{changed}": after}), ReadCounter())

    outcome = RowMerger(side(1), side(2), memory_bytes=128 * 1024 * 1024).plan()
    assert outcome.clean and outcome.statistics["rows_read"] == 3 * n
    assert list(outcome.removed) == ["after-1"] and outcome.rows is not None
    changed = {}
    for batch in outcome.rows.batches():
        for row in batch.filter(pc.less(batch.column("id"), 3)).to_pylist():
            changed[row["id"]] = row["v"]
    assert changed == {0: base["v"][0].as_py(), 1: "changed", 2: "changed"}
