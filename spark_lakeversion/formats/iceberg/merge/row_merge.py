"""Down to rows: an Iceberg merge whose file-level rules found both sides rewriting the same
files (CONCURRENT_REWRITE, CONCURRENT_DELETE, or serializable's
CONCURRENT_APPEND_IN_READ_PARTITION caused by a rewrite's new files) merges those rows.

The region. Only the data files a side changed are read: the ancestor's files either side
removed or added position deletes to, as each state has them (with that state's position
deletes applied), and every data file a side added. Files both sides left alone are never
opened. The ancestor's region rows, the target's and the source's go through the three-way
row rule (`rows.merge3`), keyed by the table's identifier fields, else counted.

What is written. The target keeps every file whose rows the merge leaves as they are; a
target file holding a row the merge changes is rewritten once, together with the rows the
source brought, into new data files under the table's location (pyiceberg's writer, the
server's FileIO). The source's data and delete files are not replayed: its changes arrived
as rows. Metadata changes (properties, a schema the target lacks) replay as before.

Serializable isolation keeps its meaning at row grain: a row the target inserted (a new key;
without identifier fields, a row whose count grew) in a partition where the source removed
rows conflicts, unless the source recorded its delete predicate and the row does not match
it (`rules.DELETE_PREDICATE_PROPERTY`). Updates of a keyed row are not inserts.

What cannot go down to rows keeps its file-level conflict: equality deletes, schemas that
differ between the states, or a region past the memory budget.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import ArrowScan, expression_to_pyarrow, schema_to_pyarrow
from pyiceberg.manifest import DataFileContent, ManifestContent, ManifestEntry
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask
from pyiceberg.table.delete_file_index import DeleteFileIndex

from spark_lakeversion.formats.iceberg.codes import CONCURRENT_APPEND_IN_READ_PARTITION
from spark_lakeversion.formats.iceberg.merge.diff import (
    FileChange,
    ManifestReader,
    PartitionKey,
    TableState,
    partition_key,
    position_delete_targets,
)
from spark_lakeversion.model import Conflict, Key
from spark_lakeversion.rows.conflicts import row_conflict
from spark_lakeversion.rows.merge3 import (
    Row,
    RowMerge,
    count_rows,
    merge_keyed,
    merge_keyless,
)

#: the file-level conflicts a row-level merge may settle
ROW_MERGEABLE = ("CONCURRENT_REWRITE", "CONCURRENT_DELETE",
                 "CONCURRENT_APPEND_IN_READ_PARTITION")


class CannotMergeRows(Exception):
    """The region cannot go down to rows; the file-level conflict stands (the reason)."""


@dataclass
class RowOutcome:
    """What the row merge decided: conflicts, or the target files to replace and the rows
    that replace them (`rows`, in the target schema's Arrow form)."""

    conflicts: list[Conflict] = field(default_factory=list)
    removed_paths: set[str] = field(default_factory=set)
    rows: pa.Table | None = None
    statistics: dict[str, Any] = field(default_factory=dict)


def _freeze(value: Any) -> Hashable:
    """A cell as a hashable value (nested lists, maps and structs included)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value  # type: ignore[no-any-return]


@dataclass
class _FileRows:
    """The live rows of one data file in one state."""

    path: str
    partition: PartitionKey
    rows: list[Row]


class RowMerger:
    """One row-level merge of a planner's three states; reads, decides, writes nothing."""

    def __init__(self, key: Key, io: FileIO, reader: ManifestReader, base: TableState,
                 target: TableState, source: TableState, src: FileChange, tgt: FileChange,
                 *, resolution: str | None, serializable: bool,
                 source_predicate: BooleanExpression | None, budget_bytes: int) -> None:
        self.key = key
        self.io = io
        self.reader = reader
        self.base, self.target, self.source = base, target, source
        self.src, self.tgt = src, tgt
        self.resolution = resolution
        self.serializable = serializable
        self.source_predicate = source_predicate
        self.budget_bytes = budget_bytes
        self.schema: Schema = target.metadata.schema()
        self.columns = [f.name for f in self.schema.fields]
        names = {f.field_id: f.name for f in self.schema.fields}
        self.identifier = [names[i] for i in self.schema.identifier_field_ids if i in names]
        self.key_positions = [self.columns.index(c) for c in self.identifier]
        self._originals: dict[Row, Row] = {}
        self.files_read = 0
        self.bytes_read = 0

    # ---- the region -----------------------------------------------------------------------
    def _check_schemas(self) -> None:
        structs = {s.metadata.schema().as_struct() for s in (self.base, self.target,
                                                              self.source)}
        if len(structs) > 1:
            raise CannotMergeRows("the schema differs between the states")
        if len(self.identifier) != len(self.schema.identifier_field_ids):
            raise CannotMergeRows("an identifier field is nested")

    def _pointed(self, change: FileChange) -> set[str]:
        """Data files the side's new position deletes point at."""
        paths: set[str] = set()
        for entry in change.added_deletes():
            if entry.data_file.content == DataFileContent.EQUALITY_DELETES:
                raise CannotMergeRows("a side added equality deletes")
            paths |= position_delete_targets(self.io, entry.data_file)
        return paths

    def _locate(self, paths: set[str]) -> dict[str, ManifestEntry]:
        """Entries of ancestor data files not in either side's diff (a side only added
        position deletes to them): looked up in the target's, then the source's, data
        manifests."""
        found: dict[str, ManifestEntry] = {}
        for state in (self.target, self.source, self.base):
            todo = paths - set(found)
            if not todo:
                break
            for manifest in self.reader.manifests(state.snapshot):
                if manifest.content != ManifestContent.DATA:
                    continue
                for entry in self.reader.live_entries(manifest):
                    if entry.data_file.file_path in todo:
                        found[entry.data_file.file_path] = entry
        return found

    def _deletes(self, state: TableState) -> DeleteFileIndex:
        """Every position delete live in the state; equality deletes stop the row merge."""
        index = DeleteFileIndex()
        for manifest in self.reader.manifests(state.snapshot):
            if manifest.content != ManifestContent.DELETES:
                continue
            for entry in self.reader.live_entries(manifest):
                if entry.data_file.content == DataFileContent.EQUALITY_DELETES:
                    raise CannotMergeRows("the table has equality deletes")
                index.add_delete_file(entry, partition_key=entry.data_file.partition)
        return index

    def _read(self, state: TableState, entries: Iterable[ManifestEntry]) -> list[_FileRows]:
        index = self._deletes(state)
        scan = ArrowScan(state.metadata, self.io, self.schema, AlwaysTrue())
        out: list[_FileRows] = []
        for entry in entries:
            data_file = entry.data_file
            deletes = index.for_data_file(entry.sequence_number or 0, data_file,
                                          partition_key=data_file.partition)
            table = scan.to_table([FileScanTask(data_file, deletes)])
            self.files_read += 1
            self.bytes_read += data_file.file_size_in_bytes
            columns = [table.column(c).to_pylist() for c in self.columns]
            out.append(_FileRows(data_file.file_path, partition_key(data_file),
                                 list(zip(*columns, strict=True)) if columns else []))
        return out

    def plan(self) -> RowOutcome:
        self._check_schemas()
        pointed = self._pointed(self.src) | self._pointed(self.tgt)
        removed = {p: e for p, e in {**self.src.removed, **self.tgt.removed}.items()
                   if e.data_file.content == DataFileContent.DATA}
        side_added = set(self.src.added) | set(self.tgt.added)
        unknown = {p for p in pointed if p not in removed and p not in side_added}
        region = {**removed, **self._locate(unknown)}
        src_added = [e for e in self.src.added.values()
                     if e.data_file.content == DataFileContent.DATA]
        tgt_added = [e for e in self.tgt.added.values()
                     if e.data_file.content == DataFileContent.DATA]
        size = sum(e.data_file.file_size_in_bytes for e in
                   [*region.values(), *src_added, *tgt_added])
        if size > self.budget_bytes:
            raise CannotMergeRows(f"the files to merge by row hold {size} bytes, over the "
                                  f"row merge's memory budget of {self.budget_bytes}")
        base_rows = self._read(self.base, region.values())
        target_rows = self._read(self.target, [
            *(e for p, e in region.items() if p not in self.tgt.removed), *tgt_added])
        source_rows = self._read(self.source, [
            *(e for p, e in region.items() if p not in self.src.removed), *src_added])
        merged = self._merge(base_rows, target_rows, source_rows)
        outcome = RowOutcome()
        outcome.statistics = {"files_read": self.files_read, "bytes_read": self.bytes_read,
                              "rows_read": sum(len(f.rows) for f in
                                               [*base_rows, *target_rows, *source_rows]),
                              "conflicts": len(merged.conflicts),
                              "resolved": merged.resolved}
        if merged.conflicts:
            outcome.conflicts.append(row_conflict(self.key, merged.conflicts, self.columns,
                                                  self.identifier))
        inserted = self._serializable_conflict(base_rows, target_rows, source_rows)
        if inserted is not None:
            outcome.conflicts.append(inserted)
        if not outcome.conflicts:
            self._rewrite(outcome, merged, target_rows)
        return outcome

    # ---- the rule -------------------------------------------------------------------------
    def _identity(self, row: Row) -> Row:
        """The identifier fields' values (keyed), else the whole row, hashable."""
        if self.identifier:
            return tuple(_freeze(row[i]) for i in self.key_positions)
        return tuple(_freeze(v) for v in row)

    def _counted(self, files: list[_FileRows]) -> dict[Row, int]:
        return count_rows(self._identity(r) for f in files for r in f.rows)

    def _merge(self, base: list[_FileRows], target: list[_FileRows],
               source: list[_FileRows]) -> RowMerge:
        if self.identifier:
            def keyed(files: list[_FileRows]) -> dict[Hashable, Row]:
                return {self._identity(r): r for f in files for r in f.rows}

            return merge_keyed(keyed(base), keyed(target), keyed(source), self.resolution)
        self._originals = {self._identity(r): r for f in [*base, *target, *source]
                           for r in f.rows}
        return merge_keyless(self._counted(base), self._counted(target),
                             self._counted(source), self.resolution)

    def _serializable_conflict(self, base: list[_FileRows], target: list[_FileRows],
                               source: list[_FileRows]) -> Conflict | None:
        """Rows the target inserted where the source removed rows (serializable only)."""
        if not self.serializable:
            return None
        base_ids, source_ids = self._counted(base), self._counted(source)
        removed_in = {f.partition for f in base for r in f.rows
                      if source_ids.get(self._identity(r), 0) < base_ids[self._identity(r)]}
        if not removed_in:
            return None
        seen: dict[Row, int] = {}
        inserted: list[tuple[_FileRows, Row]] = []
        for f in target:
            near = any(_overlap(f.partition, p) for p in removed_in)
            for r in f.rows:
                ident = self._identity(r)
                seen[ident] = seen.get(ident, 0) + 1
                # keyed: a key the ancestor lacked; keyless: one more copy than it had
                new = base_ids.get(ident, 0) == 0 if self.identifier \
                    else seen[ident] > base_ids.get(ident, 0)
                if new and near:
                    inserted.append((f, r))
        if inserted and self.source_predicate is not None:
            inserted = self._matching(inserted)
        if not inserted:
            return None
        return Conflict(
            CONCURRENT_APPEND_IN_READ_PARTITION, self.key,
            f"under serializable isolation: the target inserted {len(inserted)} row(s) in "
            "partitions where the source deleted or overwrote rows since the common ancestor",
            {"files": sorted({f.path for f, _ in inserted})[:20], "rows": len(inserted)})

    def _matching(self, inserted: list[tuple[_FileRows, Row]]) -> list[tuple[_FileRows, Row]]:
        """The inserted rows the source's recorded delete predicate matches."""
        from pyiceberg.expressions.visitors import bind

        assert self.source_predicate is not None
        try:
            bound = bind(self.schema, self.source_predicate, case_sensitive=True)
            table = pa.Table.from_pylist([dict(zip(self.columns, r, strict=True))
                                          for _, r in inserted],
                                         schema=schema_to_pyarrow(self.schema,
                                                                  include_field_ids=False))
            table = table.append_column("__row", pa.array(range(len(inserted)), pa.int64()))
            hits = set(table.filter(expression_to_pyarrow(bound, self.schema))
                       .column("__row").to_pylist())
        except Exception:  # noqa: BLE001 - unusable predicate: stay conservative
            return inserted
        return [x for i, x in enumerate(inserted) if i in hits]

    # ---- what to write --------------------------------------------------------------------
    def _rewrite(self, outcome: RowOutcome, merged: RowMerge,
                 target: list[_FileRows]) -> None:
        changed = merged.changed
        rows: list[Row] = []
        for f in target:
            if any(self._identity(r) in changed for r in f.rows):
                outcome.removed_paths.add(f.path)
                rows += [r for r in f.rows if self._identity(r) not in changed]
        if self.identifier:
            rows += [merged.rows[k] for k in changed if k in merged.rows]
        else:
            for ident, original in self._originals.items():
                if ident in changed:
                    rows += [original] * merged.rows.get(ident, 0)
        outcome.statistics.update(files_rewritten=len(outcome.removed_paths),
                                  rows_rewritten=len(rows), bytes_written=0)
        if not rows and not outcome.removed_paths:
            return
        arrow_schema = schema_to_pyarrow(self.schema)
        by_column: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            for c, v in zip(self.columns, r, strict=True):
                by_column[c].append(v)
        outcome.rows = pa.Table.from_pydict({c: by_column[c] for c in self.columns},
                                            schema=arrow_schema) if rows else None


def _overlap(a: PartitionKey, b: PartitionKey) -> bool:
    return a[0] != b[0] or a[1] == b[1]
