"""Delta's row reader for `TableFormat.row_changes`: the rows of the data files live at
exactly one of two states (their add actions), files identified across logs by `log.file_id`
(a branch log names its parent's files by absolute URI).

Row identity: the table property `lakeversion.identifierFields` (comma-separated column
names; delta-rs sets it with ``DeltaTable.alter.set_table_properties(...,
raise_if_not_exists=False)``, Spark with ``ALTER TABLE ... SET TBLPROPERTIES``); without it
rows are a counted multiset. Columns are matched by `delta.columnMapping.id` when column
mapping is on (a rename keeps the id), by name otherwise. Partition values come from the
add actions. Deletion vectors are refused (`UnsupportedTableFeature`): their rows cannot be
read here without risking wrong rows. Files open through the pyarrow file system of the
server's FileIO properties (`fileio.pyarrow_filesystem`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa

from spark_lakeversion.errors import InvalidInput, UnsupportedTableFeature
from spark_lakeversion.fileio import pyarrow_filesystem
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.model import Content
from spark_lakeversion.rows.schema import align, union_schema, with_field_id
from spark_lakeversion.rows.source import (
    PARTITION_COLUMN,
    EmptySide,
    FileRef,
    ReadCounter,
    RowChanges,
    RowSide,
    partition_labels,
)

#: the table property naming the identifier columns (README documents it)
IDENTIFIER_PROPERTY = "lakeversion.identifierFields"


@dataclass(frozen=True)
class DeltaSnapshot:
    """One side: its logical Arrow schema (field ids when column mapping is on), physical
    column names, partition columns, identifier and live files (file id -> add row)."""

    location: str
    schema: pa.Schema
    physical: dict[str, str]  # logical name -> physical column name in the files
    partition_columns: tuple[str, ...]
    identifier: tuple[str, ...]
    files: dict[str, dict[str, Any]]


def _snapshot(content: Content, io: Mapping[str, str]) -> DeltaSnapshot:
    state = DeltaState.of(content)
    table = log.open_table(state.location, state.version, io=io)
    protocol = log.protocol_action(table)
    features = set(protocol.get("readerFeatures") or ()) | set(
        protocol.get("writerFeatures") or ())
    if "deletionVectors" in features:
        raise UnsupportedTableFeature(
            f"the Delta table at {state.location} uses deletion vectors, which the row "
            "reader cannot apply: it refuses rather than show wrong rows")
    fields_json = json.loads(table.schema().to_json())["fields"]
    arrow = pa.schema(table.schema().to_arrow())
    fields, physical = [], {}
    for f, raw in zip(arrow, fields_json, strict=True):
        meta = raw.get("metadata") or {}
        fid = meta.get(log.MAPPING_ID)
        fields.append(with_field_id(f.with_metadata({}), int(fid) if fid is not None else None))
        physical[f.name] = str(meta.get(log.PHYSICAL_NAME) or f.name)
    schema = pa.schema(fields)
    configuration = dict(table.metadata().configuration or {})
    identifier = tuple(n.strip() for n in configuration.get(IDENTIFIER_PROPERTY, "").split(",")
                       if n.strip())
    unknown = [n for n in identifier if n not in schema.names]
    if unknown:
        raise InvalidInput(f"the Delta table at {state.location} names identifier column(s) "
                           f"{', '.join(unknown)} in {IDENTIFIER_PROPERTY}, which it lacks")
    actions = pa.table(table.get_add_actions(flatten=False)).to_pylist()
    files = {log.file_id(state.location, str(a["path"])): a for a in actions}
    return DeltaSnapshot(state.location, schema, physical,
                         tuple(table.metadata().partition_columns), identifier, files)


def _open_path(uri: str) -> str:
    """The file system path of a data file URI (percent-decoded)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path)
    return unquote(parsed.netloc + parsed.path)


class DeltaSide(RowSide):
    """One side's files live only there, read with pyarrow through the server's FileIO."""

    def __init__(self, snap: DeltaSnapshot, files: Sequence[FileRef], counter: ReadCounter,
                 target: pa.Schema, io: Mapping[str, str]) -> None:
        super().__init__(files)
        self.snap = snap
        self.arrow = snap.schema
        self.counter = counter
        self.target = target
        self.io = io

    def batches(self, files: Sequence[FileRef] | None = None, *,
                partition: bool = False) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq

        snap = self.snap
        stored = [n for n in snap.schema.names if n not in snap.partition_columns]
        for ref in self.files if files is None else files:
            add = ref.handle if isinstance(ref.handle, dict) else {}
            self.counter.record(ref.path)
            fs = pyarrow_filesystem(ref.path, self.io)
            with fs.open_input_file(_open_path(ref.path)) as stream:
                parquet = pq.ParquetFile(stream)
                present = set(parquet.schema_arrow.names)
                wanted = [snap.physical[n] for n in stored if snap.physical[n] in present]
                for raw in parquet.iter_batches(columns=wanted):
                    yield self._logical(raw, add, ref, partition)

    def _logical(self, raw: pa.RecordBatch, add: Mapping[str, Any], ref: FileRef,
                 partition: bool) -> pa.RecordBatch:
        snap = self.snap
        arrays, fields = [], []
        by_physical = {p: n for n, p in snap.physical.items()}
        for name in raw.schema.names:
            fields.append(snap.schema.field(by_physical[name]))
            arrays.append(raw.column(name))
        values = add.get("partition") or {}
        for name in snap.partition_columns:
            f = snap.schema.field(name)
            fields.append(f)
            arrays.append(pa.array([values.get(name)] * raw.num_rows).cast(f.type)
                          if values.get(name) is not None else pa.nulls(raw.num_rows, f.type))
        batch = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(
            [pa.field(f.name, a.type, metadata=f.metadata) for f, a in zip(fields, arrays,
                                                                             strict=True)]))
        extra = [(PARTITION_COLUMN, partition_labels(ref.partition, raw.num_rows))] \
            if partition else []
        return align(batch, snap.schema, self.target, extra)


def _ref(snap: DeltaSnapshot, fid: str) -> FileRef:
    add = snap.files[fid]
    values = add.get("partition") or {}
    label = "/".join(f"{c}={log.partition_text(values.get(c))}" for c in snap.partition_columns)
    records = add.get("num_records")
    return FileRef(log.absolute(snap.location, str(add["path"])), label,
                   int(records) if records is not None else None, (), add)


def row_changes(before: Content | None, after: Content | None,
                io_properties: Mapping[str, str]) -> RowChanges:
    """`TableFormat.row_changes` for Delta tables (see the module's docstring)."""
    if before is not None and after is not None and before.id != after.id:
        raise InvalidInput("the table was dropped and created again between the two states "
                           "(different table ids): its rows have no common schema")
    snaps = [_snapshot(c, io_properties) if c is not None else None for c in (before, after)]
    present = [s for s in snaps if s is not None]
    if not present:
        raise InvalidInput("a row diff needs the table on at least one side")
    target = union_schema(present[0].schema, present[-1].schema)
    counter = ReadCounter()
    snap_b, snap_a = snaps
    ids_b = set(snap_b.files) if snap_b else set()
    ids_a = set(snap_a.files) if snap_a else set()
    sides: list[RowSide] = []
    for snap, only in ((snap_b, ids_b - ids_a), (snap_a, ids_a - ids_b)):
        sides.append(DeltaSide(snap, [_ref(snap, f) for f in sorted(only)], counter, target,
                               io_properties) if snap is not None else EmptySide())
    identifier = present[-1].identifier
    return RowChanges(target, identifier, sides[0], sides[1], counter, len(ids_b & ids_a))


__all__ = ["IDENTIFIER_PROPERTY", "DeltaSide", "row_changes"]
