"""Iceberg's row reader for `TableFormat.row_changes`: the rows in the data files whose
rows differ between two states of one table, each side's deletes applied.

Which files, from metadata alone (manifests): a data file live on exactly one side, and a
data file live on both to which a delete file live on one side only applies (position
deletes by path bounds or referenced data file, deletion vectors by referenced data file,
equality deletes by partition and sequence number). When neither side has delete
manifests, only the manifests that differ are read (`merge.diff.live_file_diff`). Every data
or delete file opened goes through a `CountingFileIO` over the server's FileIO
(`files.file_io`), never the table's properties.

Each side reads with its own schema, and its batches are matched to the union schema by
field id (`rows.schema.align`), so a renamed column is one column. Position deletes and
deletion vectors are applied by pyiceberg's reader; equality deletes here (null equals
null, as the spec says).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import FileIO, InputFile, OutputFile
from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
)
from pyiceberg.table import FileScanTask

from spark_lakeversion.errors import InvalidInput, UnsupportedTableFeature
from spark_lakeversion.formats.iceberg.files import file_io
from spark_lakeversion.formats.iceberg.merge.diff import (
    ManifestReader,
    TableState,
    live_file_diff,
    load_state,
    position_delete_may_reference,
    referenced_data_file,
)
from spark_lakeversion.model import Content
from spark_lakeversion.rows.schema import align, field_id, union_schema
from spark_lakeversion.rows.source import (
    PARTITION_COLUMN,
    EmptySide,
    FileRef,
    ReadCounter,
    RowChanges,
    RowSide,
    partition_labels,
)


class CountingFileIO(FileIO):
    """The server's FileIO, recording every file opened for reading in a `ReadCounter`."""

    def __init__(self, inner: FileIO, counter: ReadCounter) -> None:
        super().__init__(inner.properties)
        self.inner = inner
        self.counter = counter

    def new_input(self, location: str) -> InputFile:
        self.counter.record(location)
        return self.inner.new_input(location)

    def new_output(self, location: str) -> OutputFile:
        raise UnsupportedTableFeature("the row reader never writes")

    def delete(self, location: str | InputFile | OutputFile) -> None:
        raise UnsupportedTableFeature("the row reader never deletes")


def _live(reader: ManifestReader, state: TableState | None) -> dict[str, ManifestEntry]:
    if state is None:
        return {}
    manifests = reader.manifests(state.snapshot)
    reader.read(manifests)
    return {e.data_file.file_path: e for m in manifests for e in reader.live_entries(m)}


def _has_deletes(reader: ManifestReader, state: TableState | None) -> bool:
    return state is not None and any(m.content == ManifestContent.DELETES
                                     for m in reader.manifests(state.snapshot))


class Targets:
    """The data files each delete file is scoped to, when it says so: a position-delete file
    by its `file_path` bounds, a deletion-vector (Puffin) file by its blobs'
    ``referenced-data-file`` (pyiceberg reads manifests with the v2 schema, which drops the
    entry's own field, so the Puffin footer is read, through the counting FileIO, once)."""

    def __init__(self, io: FileIO) -> None:
        self.io = io
        self._cache: dict[str, frozenset[str] | None] = {}

    def of(self, delete: DataFile) -> frozenset[str] | None:
        path = delete.file_path
        if path not in self._cache:
            self._cache[path] = self._read(delete)
        return self._cache[path]

    def _read(self, delete: DataFile) -> frozenset[str] | None:
        if delete.content == DataFileContent.EQUALITY_DELETES:
            return None
        if delete.file_format == FileFormat.PUFFIN:
            from pyiceberg.table.puffin import PuffinFile

            with self.io.new_input(delete.file_path).open() as stream:
                footer = PuffinFile(stream.read()).footer
            return frozenset(str(b.properties.get("referenced-data-file"))
                             for b in footer.blobs if b.properties.get("referenced-data-file"))
        single = referenced_data_file(delete)
        return frozenset({single}) if single is not None else None


def _seq(entry: ManifestEntry) -> int:
    return int(entry.sequence_number or 0)


def applies(delete: ManifestEntry, data: ManifestEntry, specs: Mapping[int, Any],
            targets: Targets) -> bool:
    """Whether `delete` applies to `data` on one side (Iceberg's scan-planning rules)."""
    d, f = delete.data_file, data.data_file
    if d.content == DataFileContent.EQUALITY_DELETES:
        if _seq(data) >= _seq(delete):
            return False
        spec = specs.get(d.spec_id)
        return spec is None or not spec.fields or (
            d.spec_id == f.spec_id and d.partition == f.partition)
    if _seq(data) > _seq(delete):
        return False
    scoped = targets.of(d)
    if scoped is not None:
        return f.file_path in scoped
    return d.spec_id == f.spec_id and d.partition == f.partition and \
        position_delete_may_reference(d, f.file_path)


class IcebergSide(RowSide):
    """One side's changed data files, read with pyiceberg's reader under a counting FileIO."""

    def __init__(self, state: TableState, files: Sequence[FileRef], io: CountingFileIO,
                 target: pa.Schema) -> None:
        super().__init__(files)
        self.state = state
        self.io = io
        self.target = target
        self.schema = state.metadata.schema()
        self.arrow = schema_to_pyarrow(self.schema, include_field_ids=True)

    def batches(self, files: Sequence[FileRef] | None = None, *,
                partition: bool = False) -> Iterator[pa.RecordBatch]:
        scan = ArrowScan(self.state.metadata, self.io, self.schema, AlwaysTrue())
        for ref in self.files if files is None else files:
            data, deletes = _handle(ref)
            positional = {d for d in deletes if d.content != DataFileContent.EQUALITY_DELETES}
            equality = [d for d in deletes if d.content == DataFileContent.EQUALITY_DELETES]
            dropped = [self._equality_rows(d) for d in equality]
            for batch in scan.to_record_batches([FileScanTask(data, positional)]):
                for names, rows in dropped:
                    batch = _drop_equal(batch, names, rows)
                extra = [(PARTITION_COLUMN, partition_labels(ref.partition, batch.num_rows))] \
                    if partition else []
                yield align(batch, self.arrow, self.target, extra)

    def _equality_rows(self, delete: DataFile) -> tuple[list[str], set[tuple[Any, ...]]]:
        """The column names (this side's) and value tuples an equality-delete file deletes."""
        import pyarrow.parquet as pq

        ids = list(delete.equality_ids or [])
        names = [self.schema.find_column_name(i) for i in ids]
        if not ids or any(n is None or "." in n for n in names):
            raise UnsupportedTableFeature(
                f"equality deletes on nested or unknown fields ({delete.file_path})")
        with self.io.new_input(delete.file_path).open() as stream:
            table = pq.read_table(stream)
        by_id = {field_id(f): f.name for f in table.schema}
        columns = [by_id.get(i) for i in ids]
        if any(c is None for c in columns):
            raise UnsupportedTableFeature(f"an equality-delete file without field ids: "
                                          f"{delete.file_path}")
        values = zip(*(table.column(c).to_pylist() for c in columns if c is not None))
        return [n for n in names if n is not None], set(values)


def _handle(ref: FileRef) -> tuple[DataFile, list[DataFile]]:
    handle = ref.handle
    if not isinstance(handle, tuple) or len(handle) != 2:
        raise InvalidInput(f"{ref.path} is not a file of this Iceberg table's row changes")
    return handle[0], list(handle[1])


def _drop_equal(batch: pa.RecordBatch, names: list[str], rows: set[tuple[Any, ...]]
                ) -> pa.RecordBatch:
    keys = zip(*(batch.column(n).to_pylist() for n in names))
    keep = pa.array([k not in rows for k in keys], pa.bool_())
    return batch.filter(keep)


def _ref(state: TableState, entry: ManifestEntry, deletes: list[DataFile]) -> FileRef:
    data = entry.data_file
    spec = state.metadata.specs().get(data.spec_id)
    label = spec.partition_to_path(data.partition, state.metadata.schema()) \
        if spec is not None and spec.fields else ""
    return FileRef(data.file_path, label, int(data.record_count),
                   tuple(sorted(d.file_path for d in deletes)), (data, deletes))


def _deletes_for(entry: ManifestEntry, live: Mapping[str, ManifestEntry],
                 specs: Mapping[int, Any], targets: Targets) -> list[DataFile]:
    return [e.data_file for e in live.values()
            if e.data_file.content != DataFileContent.DATA and applies(e, entry, specs, targets)]


def _plan(reader: ManifestReader, before: TableState | None, after: TableState | None,
          targets: Targets) -> tuple[list[FileRef], list[FileRef], int]:
    """(before files, after files, shared data files skipped)."""
    if not _has_deletes(reader, before) and not _has_deletes(reader, after):
        change = live_file_diff(reader, before.snapshot if before else None,
                                after.snapshot if after else None)
        removed = [e for e in change.removed.values()
                   if e.data_file.content == DataFileContent.DATA]
        added = [e for e in change.added.values() if e.data_file.content == DataFileContent.DATA]
        return ([_ref(before, e, []) for e in removed] if before else [],
                [_ref(after, e, []) for e in added] if after else [],
                max(_total_data_files(after) - len(added), 0))
    live_b, live_a = _live(reader, before), _live(reader, after)
    data_b = {p: e for p, e in live_b.items() if e.data_file.content == DataFileContent.DATA}
    data_a = {p: e for p, e in live_a.items() if e.data_file.content == DataFileContent.DATA}
    affected = set(data_b) ^ set(data_a)
    shared = set(data_b) & set(data_a)
    for live, other, state in ((live_b, live_a, before), (live_a, live_b, after)):
        specs = state.metadata.specs() if state else {}
        data = data_b if live is live_b else data_a
        for path, entry in live.items():
            if entry.data_file.content == DataFileContent.DATA or path in other:
                continue
            affected.update(p for p in shared if p not in affected
                            and applies(entry, data[p], specs, targets))
    refs: list[list[FileRef]] = []
    for live, data, state in ((live_b, data_b, before), (live_a, data_a, after)):
        if state is None:
            refs.append([])
            continue
        specs = state.metadata.specs()
        refs.append([_ref(state, data[p], _deletes_for(data[p], live, specs, targets))
                     for p in sorted(affected) if p in data])
    # a shared file whose deletes came out equal on both sides has equal rows: skip it
    b_refs, a_refs = refs
    same = {r.path for r in b_refs} & {r.path for r in a_refs}
    equal = {p for p in same if _deletes(b_refs, p) == _deletes(a_refs, p)}
    b_refs = [r for r in b_refs if r.path not in equal]
    a_refs = [r for r in a_refs if r.path not in equal]
    return b_refs, a_refs, len(shared) - len(same - equal)


def _deletes(refs: list[FileRef], path: str) -> tuple[str, ...]:
    return next(r.deletes for r in refs if r.path == path)


def _total_data_files(state: TableState | None) -> int:
    """The live data files of `state`, from its snapshot summary (0 when it has none)."""
    if state is None or state.snapshot is None or state.snapshot.summary is None:
        return 0
    total = state.snapshot.summary.additional_properties.get("total-data-files")
    return int(total) if total is not None and str(total).isdigit() else 0


def row_changes(before: Content | None, after: Content | None,
                io_properties: Mapping[str, str]) -> RowChanges:
    """`TableFormat.row_changes` for Iceberg tables (see the module's docstring)."""
    if before is not None and after is not None and before.id != after.id:
        raise InvalidInput("the table was dropped and created again between the two states "
                           "(different table ids): its rows have no common schema")
    anchor = after if after is not None else before
    if anchor is None:
        raise InvalidInput("a row diff needs the table on at least one side")
    io = file_io(str(anchor.fields["metadata_location"]), io_properties)
    states = [load_state(c, io) if c is not None else None for c in (before, after)]
    state_b, state_a = states
    counter = ReadCounter()
    counting = CountingFileIO(io, counter)
    reader = ManifestReader(io)
    b_files, a_files, skipped = _plan(reader, state_b, state_a, Targets(counting))
    arrows = [schema_to_pyarrow(s.metadata.schema(), include_field_ids=True)
              for s in (state_b, state_a) if s is not None]
    target = union_schema(arrows[0], arrows[-1])
    ident_state = state_a if state_a is not None else state_b
    assert ident_state is not None
    by_id = {field_id(f): f.name for f in target}
    identifier = tuple(by_id[i] for i in ident_state.metadata.schema().identifier_field_ids
                       if i in by_id)
    sides: list[RowSide] = [IcebergSide(s, files, counting, target) if s is not None
                            else EmptySide()
                            for s, files in ((state_b, b_files), (state_a, a_files))]
    return RowChanges(target, identifier, sides[0], sides[1], counter, skipped)


__all__ = ["CountingFileIO", "IcebergSide", "applies", "row_changes"]
