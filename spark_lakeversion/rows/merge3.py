"""The three-way row rule: what merging one table's rows means, per row identity.

Format-neutral and pure, in plain Python: the definition the out-of-core engine
(`merge_sql`, run by `merge_rows` in DuckDB, or by Spark) is tested against, and the
vocabulary both share (`RowConflict`, its reasons, the resolutions). Two identities:

- keyed (the table has identifier fields): per key, Dolt's rule. Changed on one side: take
  it. The same change on both sides: take it once. Different columns of one row changed:
  merge cell by cell. The same cell changed to different values, a delete on one side and
  an update (or a re-insert) on the other, or two different inserts of one key: a
  `RowConflict`.
- keyless: the whole row is its identity and a row is counted (a multiset, so duplicates are
  kept). A row whose count changed on one side takes that side's count; a count changed
  differently on both sides is a `RowConflict`.

A conflict is resolved by `resolution` when one is given: ``source-wins`` takes the source's
row (its deletion, its count; for a cell conflict only the clashing cells come from the
source, the cells merged cleanly stay), ``target-wins`` the target's. Without a resolution,
the conflicts are returned as data and the rows are what the target has.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.errors import InvalidInput

#: a row as the rule sees it: its column values in the table's column order
Row = tuple[Any, ...]

SOURCE_WINS = "source-wins"
TARGET_WINS = "target-wins"
#: the spellings of the per-merge option ``row_conflicts``
RESOLUTIONS = (SOURCE_WINS, TARGET_WINS)

#: why a key conflicts
UPDATE_UPDATE = "update/update"  # the same cell changed to different values
DELETE_UPDATE = "delete/update"  # deleted on one side, changed on the other
INSERT_INSERT = "insert/insert"  # both sides inserted the key, with different rows
COUNT_COUNT = "count/count"  # keyless: the row's count changed differently on both sides


def parse_resolution(value: object) -> str | None:
    """``source-wins`` / ``target-wins`` (any case, ``_`` for ``-``) or None; else
    `InvalidInput` naming the choices, so every surface refuses a bad value the same way."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"row_conflicts must be a string, not {value!r}")
    normalized = value.strip().lower().replace("_", "-")
    if normalized not in RESOLUTIONS:
        raise InvalidInput(f"unknown row_conflicts {value!r}: use {' or '.join(RESOLUTIONS)}")
    return normalized


@dataclass(frozen=True)
class RowConflict:
    """One identity changed differently on both sides. Keyed: the rows (None: absent) and
    the clashing columns' positions; keyless: the row and its three counts."""

    identity: Hashable
    reason: str
    base: Row | None
    target: Row | None
    source: Row | None
    columns: tuple[int, ...] = ()
    counts: tuple[int, int, int] | None = None  # keyless: (base, target, source)


@dataclass
class RowMerge:
    """The merged rows of a region, and what it took.

    `rows` maps identity -> the merged row (keyed) or row -> count (keyless); identities the
    merge deletes are absent. `changed` holds the identities whose merged state differs from
    the target's: only files of the target holding one of them need rewriting."""

    rows: dict[Hashable, Any] = field(default_factory=dict)
    changed: set[Hashable] = field(default_factory=set)
    conflicts: list[RowConflict] = field(default_factory=list)
    resolved: int = 0  # conflicts settled by the resolution


def _cells(base: Row | None, target: Row, source: Row) -> tuple[Row, tuple[int, ...]]:
    """Cell by cell: each column takes the side that changed it; without a base (two
    inserts) every differing cell clashes. Returns the merged row (target's value in clashing
    cells) and the clashing positions."""
    merged: list[Any] = []
    clashes: list[int] = []
    for i, (t, s) in enumerate(zip(target, source, strict=True)):
        b = base[i] if base is not None else None
        if t == s or (base is not None and s == b):
            merged.append(t)
        elif base is not None and t == b:
            merged.append(s)
        else:
            merged.append(t)
            clashes.append(i)
    return tuple(merged), tuple(clashes)


def _resolve_cells(merged: Row, source: Row, clashes: Sequence[int]) -> Row:
    out = list(merged)
    for i in clashes:
        out[i] = source[i]
    return tuple(out)


def merge_keyed(base: Mapping[Hashable, Row], target: Mapping[Hashable, Row],
                source: Mapping[Hashable, Row], resolution: str | None = None) -> RowMerge:
    """The keyed rule over the three sides' rows by key (a key absent from a side is
    deleted there, or never existed)."""
    out = RowMerge()
    for key in set(base) | set(target) | set(source):
        b, t, s = base.get(key), target.get(key), source.get(key)
        if s in (b, t):
            final = t  # source made no change, or the same one as the target
        elif t == b:
            final = s  # only the source changed it
        elif t is not None and s is not None:
            merged, clashes = _cells(b, t, s)
            if not clashes:
                final = merged
            else:
                conflict = RowConflict(key, UPDATE_UPDATE if b is not None else INSERT_INSERT,
                                       b, t, s, clashes)
                final = _settle(out, conflict, resolution, t,
                                _resolve_cells(merged, s, clashes), merged)
        else:  # one side deleted it, the other changed it
            final = _settle(out, RowConflict(key, DELETE_UPDATE, b, t, s), resolution, t, s, t)
        if final is not None:
            out.rows[key] = final
        if final != t:
            out.changed.add(key)
    return out


def _settle(out: RowMerge, conflict: RowConflict, resolution: str | None, target: Any,
            source_wins: Any, target_wins: Any) -> Any:
    """The state a conflict ends in: the resolution's, or the target's (recorded)."""
    if resolution == SOURCE_WINS:
        out.resolved += 1
        return source_wins
    if resolution == TARGET_WINS:
        out.resolved += 1
        return target_wins
    out.conflicts.append(conflict)
    return target


def count_rows(rows: Iterable[Row]) -> dict[Row, int]:
    """Rows as a multiset: row -> how many times it occurs."""
    counts: dict[Row, int] = {}
    for row in rows:
        counts[row] = counts.get(row, 0) + 1
    return counts


def merge_keyless(base: Mapping[Row, int], target: Mapping[Row, int],
                  source: Mapping[Row, int], resolution: str | None = None) -> RowMerge:
    """The keyless rule over the three sides' row counts (`count_rows`)."""
    out = RowMerge()
    for row in set(base) | set(target) | set(source):
        b, t, s = base.get(row, 0), target.get(row, 0), source.get(row, 0)
        if s in (b, t):
            final = t
        elif t == b:
            final = s
        else:
            final = _settle(out, RowConflict(row, COUNT_COUNT, row if b else None,
                                             row if t else None, row if s else None,
                                             counts=(b, t, s)), resolution, t, s, t)
        if final:
            out.rows[row] = final
        if final != t:
            out.changed.add(row)
    return out
