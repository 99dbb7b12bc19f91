"""Writing a replayed merge: new manifests, one manifest list, one metadata file.

Everything goes through pyiceberg's own writers (`write_manifest`, `write_manifest_list`,
`update_table_metadata`, `ToOutputFile`); the only addition is a delete-manifest writer,
because pyiceberg 0.12 can read delete manifests but only writes data manifests.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import pyarrow as pa
from pyiceberg.catalog import MetastoreCatalog
from pyiceberg.io import FileIO
from pyiceberg.manifest import (
    DataFileContent,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestWriter,
    ManifestWriterV2,
    write_manifest,
    write_manifest_list,
)
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.serializers import ToOutputFile
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import (
    Operation,
    Snapshot,
    SnapshotSummaryCollector,
    Summary,
    update_snapshot_summaries,
)
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    SetSnapshotRefUpdate,
    TableUpdate,
    update_table_metadata,
)
from pyiceberg.typedef import TableVersion
from pyiceberg.types import IntegerType, ListType, NestedField, StructType

#: the data_file field holding an equality-delete file's field ids (the spec's
#: ``135 equality_ids list<136: int>``)
_EQUALITY_IDS = 135


class _DeleteManifestWriterV2(ManifestWriterV2):
    """pyiceberg's v2 manifest writer, labelled as a delete manifest (content=deletes).

    pyiceberg 0.12 declares ``equality_ids`` as ``list<long>``; the spec says ``list<int>``
    and DuckDB's reader fails on a long there (the values encode alike in Avro: only the
    declared type changes, and pyiceberg reads an int as a long)."""

    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}

    def _with_partition(self, format_version: TableVersion) -> Schema:
        schema = super()._with_partition(format_version)
        return Schema(*(_int_equality_ids(f) for f in schema.fields),
                      schema_id=schema.schema_id)


def _int_equality_ids(entry_field: NestedField) -> NestedField:
    """`entry_field` (of a manifest entry) with its data file's equality ids typed int."""
    data_file = entry_field.field_type
    if not isinstance(data_file, StructType):
        return entry_field
    fields = [NestedField(f.field_id, f.name, ListType(element_id=f.field_type.element_id,
                                                        element_type=IntegerType(),
                                                        element_required=True),
                          required=f.required, doc=f.doc)
              if f.field_id == _EQUALITY_IDS and isinstance(f.field_type, ListType) else f
              for f in data_file.fields]
    return NestedField(entry_field.field_id, entry_field.name, StructType(*fields),
                       required=entry_field.required, doc=entry_field.doc)


@dataclass
class ReplayInput:
    """Everything `write_replay` needs; computed (and checked) by the planner."""

    target_metadata: TableMetadata
    target_metadata_location: str
    target_snapshot: Snapshot | None
    metadata_updates: list[TableUpdate]
    #: target manifests kept as they are, and those to rewrite (with their live entries)
    kept_manifests: list[ManifestFile]
    rewritten_manifests: list[tuple[ManifestFile, list[ManifestEntry]]]
    removed_paths: set[str]
    #: source entries to add, each with its data sequence number (None: inherit the merge's)
    added: list[tuple[ManifestEntry, int | None]]
    summary_properties: dict[str, str]
    avoid_snapshot_ids: set[int] = field(default_factory=set)
    #: rows a row-level merge writes into new data files of this snapshot: chunks in the
    #: target schema's Arrow form, streamed (each chunk written before the next is read)
    new_rows: Iterable[pa.Table] | None = None


@dataclass
class ReplayOutput:
    metadata: TableMetadata
    metadata_location: str
    snapshot_id: int | None
    written_files: list[str]
    data_bytes_written: int = 0


def _metadata_dir(metadata_location: str) -> str:
    return metadata_location.rsplit("/", 1)[0]


def write_replay(io: FileIO, spec: ReplayInput) -> ReplayOutput:
    """Write manifests, manifest list and metadata for one merge snapshot; return the result."""
    written: list[str] = []
    directory = _metadata_dir(spec.target_metadata_location)
    base = spec.target_metadata
    staged = (update_table_metadata(base, tuple(spec.metadata_updates))
              if spec.metadata_updates else base)
    updates: list[TableUpdate] = list(spec.metadata_updates)
    snapshot_id: int | None = None
    data_bytes = 0
    try:
        if spec.new_rows is not None:
            new, data_bytes = _write_rows(io, staged, spec.new_rows, written)
            spec = replace(spec, added=[*spec.added, *new])
        if spec.added or spec.removed_paths:
            snapshot_id = staged.new_snapshot_id()
            while snapshot_id in spec.avoid_snapshot_ids:
                snapshot_id = staged.new_snapshot_id()
            snapshot = _write_snapshot(io, spec, staged, snapshot_id, directory, written)
            updates += [
                AddSnapshotUpdate(snapshot=snapshot),
                SetSnapshotRefUpdate(  # type: ignore[call-arg]
                    ref_name=MAIN_BRANCH, type=SnapshotRefType.BRANCH, snapshot_id=snapshot_id),
            ]
        final = update_table_metadata(base, tuple(updates),
                                      metadata_location=spec.target_metadata_location)
        version = MetastoreCatalog._parse_metadata_version(spec.target_metadata_location) + 1
        location = f"{directory}/{version:05d}-{uuid.uuid4()}.metadata.json"
        ToOutputFile.table_metadata(final, io.new_output(location))
        written.append(location)
    except BaseException:
        discard_files(io, written)
        raise
    return ReplayOutput(final, location, snapshot_id, written, data_bytes)


def _write_rows(io: FileIO, metadata: TableMetadata, chunks: Iterable[pa.Table],
                written: list[str]) -> tuple[list[tuple[ManifestEntry, int | None]], int]:
    """Write a row-level merge's rows with pyiceberg's writer, chunk by chunk as they
    stream in: new data files under the table's data location (its location provider, the
    server's FileIO), partitioned by the current spec. Returns their entries for the
    snapshot and the bytes written."""
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    entries: list[tuple[ManifestEntry, int | None]] = []
    size = 0
    for rows in chunks:
        if not rows.num_rows:
            continue
        for data_file in _dataframe_to_data_files(metadata, rows, io):
            data_file.spec_id = metadata.default_spec_id  # pyiceberg's committer sets it
            written.append(data_file.file_path)
            size += data_file.file_size_in_bytes
            entries.append((ManifestEntry.from_args(
                status=ManifestEntryStatus.ADDED, snapshot_id=None, data_file=data_file),
                None))
    return entries, size


def _write_snapshot(io: FileIO, spec: ReplayInput, staged: TableMetadata, snapshot_id: int,
                    directory: str, written: list[str]) -> Snapshot:
    commit_uuid = uuid.uuid4()
    counter = itertools.count(0)
    format_version = staged.format_version
    schema = staged.schema()
    specs = staged.specs()
    compression = staged.properties.get("write.avro.compression-codec", "gzip")

    def new_writer(partition_spec: PartitionSpec, deletes: bool) -> ManifestWriter:
        path = f"{directory}/{commit_uuid}-m{next(counter)}.avro"
        written.append(path)
        output = io.new_output(path)
        if deletes:
            return _DeleteManifestWriterV2(partition_spec, schema, output, snapshot_id,
                                           compression)  # type: ignore[arg-type]
        return write_manifest(format_version=format_version, spec=partition_spec, schema=schema,
                              output_file=output, snapshot_id=snapshot_id,
                              avro_compression=compression)  # type: ignore[arg-type]

    manifests: list[ManifestFile] = []
    collector = SnapshotSummaryCollector(partition_summary_limit=int(
        staged.properties.get("write.summary.partition-limit", "0")))

    # 1. new manifests for the source's files: ADDED in this snapshot, original spec ids kept
    groups: dict[tuple[int, bool], list[tuple[ManifestEntry, int | None]]] = defaultdict(list)
    for entry, seq in spec.added:
        is_delete = entry.data_file.content != DataFileContent.DATA
        groups[(entry.data_file.spec_id, is_delete)].append((entry, seq))
    for (spec_id, is_delete), entries in sorted(groups.items()):
        with new_writer(specs[spec_id], is_delete) as writer:
            for entry, seq in entries:
                writer.add_entry(ManifestEntry.from_args(
                    status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id,
                    sequence_number=seq, file_sequence_number=None,
                    data_file=entry.data_file))
                collector.add_file(entry.data_file, schema, specs[spec_id])
        manifests.append(writer.to_manifest_file())

    # 2. target manifests that hold files the source removed: rewritten, DELETED entries
    for manifest, live in spec.rewritten_manifests:
        is_delete = manifest.content == ManifestContent.DELETES
        kept = [e for e in live if e.data_file.file_path not in spec.removed_paths]
        gone = [e for e in live if e.data_file.file_path in spec.removed_paths]
        with new_writer(specs[manifest.partition_spec_id], is_delete) as writer:
            for entry in gone:
                writer.delete(entry)
                collector.remove_file(entry.data_file, schema, specs[manifest.partition_spec_id])
            for entry in kept:
                writer.existing(entry)
        manifests.append(writer.to_manifest_file())

    # 3. the target's untouched manifests, reused by reference
    manifests += spec.kept_manifests

    sequence_number = staged.next_sequence_number()
    list_path = f"{directory}/snap-{snapshot_id}-0-{commit_uuid}.avro"
    written.append(list_path)
    parent_id = spec.target_snapshot.snapshot_id if spec.target_snapshot else None
    with write_manifest_list(format_version=format_version, output_file=io.new_output(list_path),
                             snapshot_id=snapshot_id, parent_snapshot_id=parent_id,
                             sequence_number=sequence_number,
                             avro_compression=compression) as list_writer:  # type: ignore[arg-type]
        list_writer.add_manifests(manifests)

    operation = _operation(spec)
    previous = spec.target_snapshot.summary if spec.target_snapshot else None
    summary = update_snapshot_summaries(
        Summary(operation=operation, **collector.build(), **spec.summary_properties),
        previous_summary=previous,
    )
    return Snapshot(  # type: ignore[call-arg]
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent_id,
        sequence_number=sequence_number,
        timestamp_ms=max(int(time.time() * 1000), staged.last_updated_ms),
        manifest_list=list_path,
        summary=summary,
        schema_id=staged.current_schema_id,
    )


def _operation(spec: ReplayInput) -> Operation:
    adds_data = any(e.data_file.content == DataFileContent.DATA for e, _ in spec.added)
    adds_deletes = any(e.data_file.content != DataFileContent.DATA for e, _ in spec.added)
    if not spec.removed_paths and not adds_deletes:
        return Operation.APPEND
    if not adds_data:
        return Operation.DELETE
    return Operation.OVERWRITE


def discard_files(io: FileIO, paths: Sequence[str]) -> None:
    """Best-effort removal of files a merge wrote but never published."""
    for path in paths:
        try:
            io.delete(path)
        except Exception:  # noqa: BLE001 - orphan cleanup must not mask the real outcome
            pass
