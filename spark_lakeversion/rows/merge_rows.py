"""The row-level merge of one table, format-neutral: which rows to read, the three-way row
rule over them, and what the target must rewrite. The format reads and writes.

Input: the target's and the source's `RowChanges` against the common ancestor (each format's
`TableFormat.row_changes(base, side)`): the files a side changed, read on demand. The region
is the ancestor's files either side changed; each side's rows of the region are its changed
files' rows plus the ancestor's rows of the region files it left alone. Files no side
changed are never opened.

Output (`RowMergeOutcome`): the conflicts (`rows.merge3`), and, when there are none, the
target's files to replace and the rows replacing them. A target file is replaced only when
it holds a row whose merged state differs from the target's; its other rows are written
again with the merged ones, so each affected file is rewritten once.

Serializable isolation at row grain: a row the target inserted (a key the ancestor lacked;
keyless, a row added beyond those the target removed in that partition, so an UPDATE is no
insert) in a partition where the source removed a row is a conflict (`inserted`), unless
the caller's `matches` says the source's recorded delete predicate does not match it.
Memory: the region's rows are held in memory up to `budget_bytes` (their Arrow size); past
it the merge is `CannotMergeRows`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from spark_lakeversion.rows.merge3 import Row, RowMerge, count_rows, merge_keyed, merge_keyless
from spark_lakeversion.rows.source import FileRef, RowChanges, RowSide


class CannotMergeRows(Exception):
    """The region cannot go down to rows (the message says why); the caller's file-level
    conflict stands."""


@dataclass
class _FileRows:
    """The rows of one data file as one state has them."""

    path: str
    partition: str
    rows: list[Row]
    ids: list[Row]  # each row's identity (`RowMerger._identity`), computed once

    def pairs(self) -> Iterator[tuple[Row, Row]]:
        return zip(self.ids, self.rows, strict=True)


@dataclass
class RowMergeOutcome:
    """What the row merge decided.

    `merge` holds the rule's result (its `conflicts`); `inserted` the target's rows that
    serializable isolation refuses (partition label, row); `removed` the target's data
    files to replace and `rows` their replacement (None: nothing to write)."""

    merge: RowMerge
    inserted: list[tuple[str, Row]] = field(default_factory=list)
    removed: dict[str, FileRef] = field(default_factory=dict)
    rows: pa.Table | None = None
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.merge.conflicts and not self.inserted


def _freeze(value: Any) -> Hashable:
    """A cell as a hashable value (nested lists, maps and structs included)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value  # type: ignore[no-any-return]


class RowMerger:
    """One table's row merge over the target's and source's `RowChanges`."""

    def __init__(self, target: RowChanges, source: RowChanges, *,
                 resolution: str | None = None, serializable: bool = False,
                 matches: Callable[[pa.Table], Sequence[bool]] | None = None,
                 budget_bytes: int = 256 * 1024 * 1024) -> None:
        if target.schema.remove_metadata() != source.schema.remove_metadata() or \
                [f.metadata for f in target.schema] != [f.metadata for f in source.schema]:
            raise CannotMergeRows("the table's schema differs between the states")
        if target.identifier != source.identifier:
            raise CannotMergeRows("the identifier fields differ between the sides")
        self.target, self.source = target, source
        self.schema = target.schema
        self.columns = list(self.schema.names)
        self.identifier = list(target.identifier)
        self.key_positions = [self.columns.index(c) for c in self.identifier]
        identity = [self.schema.field(c) for c in (self.identifier or self.columns)]
        self.nested = any(pa.types.is_nested(f.type) for f in identity)
        self.resolution = resolution
        self.serializable = serializable
        self.matches = matches
        self.budget_bytes = budget_bytes
        self.bytes_held = 0
        self.files_read = 0

    # ---- reading --------------------------------------------------------------------------
    def _read(self, side: RowSide, ref: FileRef) -> _FileRows:
        table = pa.Table.from_batches(list(side.batches([ref])), schema=self.schema)
        self.files_read += 1
        self.bytes_held += table.nbytes
        if self.bytes_held > self.budget_bytes:
            raise CannotMergeRows(f"the rows to merge exceed the row merge's memory budget "
                                  f"of {self.budget_bytes} bytes")
        columns = [table.column(c).to_pylist() for c in self.columns]
        rows = list(zip(*columns, strict=True))
        if not self.nested:  # flat values hash as they are
            ids = list(zip(*(columns[i] for i in self.key_positions), strict=True)) \
                if self.identifier else rows
        else:
            ids = [self._identity(r) for r in rows]
        return _FileRows(ref.path, ref.partition, rows, ids)

    def _identity(self, row: Row) -> Row:
        """The identifier fields' values (keyed), else the whole row; hashable."""
        if self.identifier:
            return tuple(_freeze(row[i]) for i in self.key_positions)
        return tuple(_freeze(v) for v in row)

    def _counted(self, files: list[_FileRows]) -> dict[Row, int]:
        return count_rows(i for f in files for i in f.ids)

    # ---- the merge ------------------------------------------------------------------------
    def plan(self) -> RowMergeOutcome:
        tb = {r.path: r for r in self.target.before.files}
        sb = {r.path: r for r in self.source.before.files}
        region = sorted(set(tb) | set(sb))
        base_by_path = {p: self._read(self.target.before if p in tb else self.source.before,
                                      tb.get(p) or sb[p]) for p in region}
        base = list(base_by_path.values())
        target = [base_by_path[p] for p in region if p not in tb] + \
            [self._read(self.target.after, r) for r in self.target.after.files]
        source = [base_by_path[p] for p in region if p not in sb] + \
            [self._read(self.source.after, r) for r in self.source.after.files]
        merged = self._rule(base, target, source)
        outcome = RowMergeOutcome(merged)
        outcome.statistics = {
            "files_read": self.files_read,
            "rows_read": sum(len(f.rows) for f in base)
            + sum(len(f.rows) for f in target if f.path not in base_by_path)
            + sum(len(f.rows) for f in source if f.path not in base_by_path),
            "conflicts": len(merged.conflicts), "resolved": merged.resolved,
            "files_rewritten": 0, "rows_rewritten": 0, "bytes_written": 0}
        if self.serializable:
            outcome.inserted = self._inserted(base, target, source)
        if outcome.clean:
            target_refs = {**{p: tb.get(p) or sb[p] for p in region if p not in tb},
                           **{r.path: r for r in self.target.after.files}}
            self._rewrite(outcome, target, target_refs)
        return outcome

    def _rule(self, base: list[_FileRows], target: list[_FileRows],
              source: list[_FileRows]) -> RowMerge:
        if self.identifier:
            def keyed(files: list[_FileRows]) -> dict[Hashable, Row]:
                return {i: r for f in files for i, r in f.pairs()}

            return merge_keyed(keyed(base), keyed(target), keyed(source), self.resolution)
        self._originals = {i: r for f in [*base, *target, *source] for i, r in f.pairs()}
        return merge_keyless(self._counted(base), self._counted(target),
                             self._counted(source), self.resolution)

    def _inserted(self, base: list[_FileRows], target: list[_FileRows],
                  source: list[_FileRows]) -> list[tuple[str, Row]]:
        """The target's new rows in partitions where the source removed rows."""
        base_ids, source_ids = self._counted(base), self._counted(source)
        removed_in = {f.partition for f in base for i in f.ids
                      if source_ids.get(i, 0) < base_ids[i]}
        if not removed_in:
            return []
        source_rows = {i: r for f in source for i, r in f.pairs()} \
            if self.identifier else {}
        seen: dict[Row, int] = {}
        inserted: list[tuple[str, Row]] = []
        for f in target:
            near = f.partition in removed_in or not f.partition
            for ident, r in f.pairs():
                seen[ident] = seen.get(ident, 0) + 1
                # keyed: a key the ancestor lacked; keyless: one more copy than it had; a
                # row the source inserted the same way is no surprise to it
                new = (base_ids.get(ident, 0) == 0 and source_rows.get(ident) != r) \
                    if self.identifier else \
                    seen[ident] > max(base_ids.get(ident, 0), source_ids.get(ident, 0))
                if new and near:
                    inserted.append((f.partition, r))
        if not self.identifier:
            inserted = self._net(inserted, base, target)
        if inserted and self.matches is not None:
            table = pa.Table.from_pylist([dict(zip(self.columns, r, strict=True))
                                          for _, r in inserted], schema=self.schema)
            flags = self.matches(table)
            inserted = [x for x, hit in zip(inserted, flags, strict=True) if hit]
        return inserted

    def _net(self, inserted: list[tuple[str, Row]], base: list[_FileRows],
             target: list[_FileRows]) -> list[tuple[str, Row]]:
        """Keyless: an UPDATE is a row out and a row in; per partition, only the rows the
        target added beyond those it removed count as inserts (keyed updates keep their key
        and are never inserts either)."""
        def by_partition(files: list[_FileRows]) -> dict[str, dict[Row, int]]:
            out: dict[str, dict[Row, int]] = {}
            for f in files:
                counts = out.setdefault(f.partition, {})
                for ident in f.ids:
                    counts[ident] = counts.get(ident, 0) + 1
            return out

        before, after = by_partition(base), by_partition(target)
        kept: list[tuple[str, Row]] = []
        for label in dict.fromkeys(p for p, _ in inserted):
            b, t = before.get(label, {}), after.get(label, {})
            removed = sum(max(0, n - t.get(i, 0)) for i, n in b.items())
            here = [x for x in inserted if x[0] == label]
            kept += here[removed:] if removed < len(here) else []
        return kept

    # ---- what the target rewrites --------------------------------------------------------
    def _rewrite(self, outcome: RowMergeOutcome, target: list[_FileRows],
                 refs: dict[str, FileRef]) -> None:
        merged = outcome.merge
        changed = merged.changed
        rows: list[Row] = []
        for f in target:
            if any(i in changed for i in f.ids):
                outcome.removed[f.path] = refs[f.path]
                rows += [r for i, r in f.pairs() if i not in changed]
        if self.identifier:
            rows += [merged.rows[k] for k in changed if k in merged.rows]
        else:
            for ident, original in self._originals.items():
                if ident in changed:
                    rows += [original] * merged.rows.get(ident, 0)
        outcome.statistics.update(files_rewritten=len(outcome.removed),
                                  rows_rewritten=len(rows))
        if rows:
            columns = list(zip(*rows, strict=True))
            outcome.rows = pa.Table.from_arrays(
                [pa.array(c, type=f.type) for c, f in zip(columns, self.schema, strict=True)],
                schema=self.schema)
