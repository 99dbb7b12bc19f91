"""Iceberg's row reader for `TableFormat.row_changes`: the rows in the data files whose
rows differ between two states of one table, each side's deletes applied.

Which files, from metadata alone (manifests): a data file live on exactly one side, and a
data file live on both to which a delete file live on one side only applies (position
deletes by path bounds or referenced data file, deletion vectors by referenced data file,
equality deletes by partition and sequence number), planned by `row_plan.plan`, which opens
only the manifests the change needs (a manifest on both sides is skipped). Every data
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
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import FileScanTask

from spark_lakeversion.errors import InvalidInput, UnsupportedTableFeature
from spark_lakeversion.filecache import local_path
from spark_lakeversion.formats.iceberg.files import file_io
from spark_lakeversion.formats.iceberg.merge.diff import TableState
from spark_lakeversion.formats.iceberg.row_plan import (
    ListReader,
    Targets,
    applies,
    load_state,
    plan,
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
    read_ahead,
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


#: files at most this large (on disk) are read ahead in parallel, whole (`read_ahead`); a
#: side with a larger one streams every file batch by batch, one at a time
READ_AHEAD_FILE_BYTES = 16 * 1024 * 1024


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

        def stream(ref: FileRef) -> Iterator[pa.RecordBatch]:
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

        refs = self.files if files is None else files
        if any(_handle(r)[0].file_size_in_bytes > READ_AHEAD_FILE_BYTES for r in refs):
            # a large file streams batch by batch: the row merge's memory bound holds
            for ref in refs:
                yield from stream(ref)
            return
        for batches in read_ahead(refs, lambda ref: list(stream(ref))):
            yield from batches

    def plain_parquet(self) -> list[str] | None:
        """The files' local paths when every one is a local (`file:` or absolute path)
        Parquet file with no delete applied, in a table of format version 1 or 2 (no column
        defaults to fill); None otherwise (S3 and other schemes stay with the FileIO)."""
        if self.state.metadata.format_version > 2:
            return None
        paths = []
        for ref in self.files:
            data, deletes = _handle(ref)
            local = local_path(ref.path)
            if deletes or data.file_format != FileFormat.PARQUET or local is None:
                return None
            paths.append(local)
        for ref in self.files:
            self.io.counter.record(ref.path)
        return paths

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
    b_files, a_files, skipped = plan(ListReader(io), state_b, state_a, Targets(counting))
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


__all__ = ["CountingFileIO", "IcebergSide", "Targets", "applies", "row_changes"]
