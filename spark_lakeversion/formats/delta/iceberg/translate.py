"""Iceberg metadata generated from a Delta log at one version.

One snapshot per Delta version of the log a state reads: its id is derived from the log's
location and the version, its sequence number is the version + 1, and `delta-version` is in
its summary, so two loads agree. Each version's `add`s become one new manifest; a version
that removes files rewrites only the manifests holding them; every other manifest is
carried forward. Files live in the log's hidden `_lakeversion_iceberg/` folder, named after
the version that wrote them (`v<version>-...`), which is how gc tells which of them a
retained state reaches (`reachable_names`).

Generated metadata is cached per (log, version) in memory, and on disk as
`v<version>.metadata.json`: a load of an unchanged table reads no log, and a load after
one append reads that version's log file only. Everything is read and written with the
server's FileIO properties; data files are named through `log.file_id`, the one resolver of
an `add` path.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.manifest import (
    DataFile,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    read_manifest_list,
    write_manifest,
    write_manifest_list,
)
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import TableMetadata, TableMetadataV2
from pyiceberg.table.refs import SnapshotRef, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, SnapshotLogEntry, Summary
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

from spark_lakeversion.fileio import FileIOConfig, pyarrow_filesystem, pyiceberg_file_io
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.iceberg.errors import untranslatable
from spark_lakeversion.formats.delta.iceberg.layout import META_DIR as META_DIR
from spark_lakeversion.formats.delta.iceberg.layout import VERSIONED
from spark_lakeversion.formats.delta.iceberg.layout import fork_of as fork_of
from spark_lakeversion.formats.delta.iceberg.layout import meta_dir as meta_dir
from spark_lakeversion.formats.delta.iceberg.layout import metadata_location as metadata_location
from spark_lakeversion.formats.delta.iceberg.layout import reachable_names as reachable_names
from spark_lakeversion.formats.delta.iceberg.schema import (
    MAPPING_MODE,
    Column,
    Translated,
    partition_spec,
    translate_schema,
)
from spark_lakeversion.formats.delta.iceberg.stats import data_file
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg import files as iceberg_files
from spark_lakeversion.locations import normalize_path

#: the hidden folder of a log's directory that holds its Iceberg metadata
#: snapshot summary and table properties the translation sets
DELTA_VERSION = "delta-version"
DELTA_METADATA = "lakeversion.delta.metadata"
DELTA_TABLE_ID = "lakeversion.delta.table-id"
DELTA_LOG = "lakeversion.delta.log"
SEQUENCE_BASE = "lakeversion.delta.sequence-base"
#: the commitInfo parameter naming the Iceberg snapshot a version was written as
ICEBERG_SNAPSHOT_ID = "icebergSnapshotId"
#: Delta reader features whose files read the same through Iceberg metadata
READABLE_FEATURES = frozenset({"columnMapping", "timestampNtz", "v2Checkpoint",
                               "vacuumProtocolCheck"})
#: what the facade tells Iceberg writers: copy-on-write only (Delta has no delete files
#: Iceberg could write), data files under the table root as Delta writes them
FACADE_PROPERTIES = {"write.delete.mode": "copy-on-write",
                     "write.update.mode": "copy-on-write",
                     "write.merge.mode": "copy-on-write",
                     "write.format.default": "parquet",
                     "write.parquet.compression-codec": "snappy"}
def snapshot_id(location: str, version: int) -> int:
    """The snapshot of `version` of the log at `location`: the same for every load."""
    digest = hashlib.sha256(f"{location.rstrip('/')}#{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF or 1


def version_of(metadata: TableMetadata, snapshot: int | None) -> int | None:
    """The Delta version a snapshot of served metadata stands for (None: not one of ours)."""
    for snap in metadata.snapshots:
        if snap.snapshot_id == snapshot and snap.summary is not None:
            text = snap.summary.additional_properties.get(DELTA_VERSION)
            return int(text) if text is not None else None
    return None


@dataclass(frozen=True)
class Served:
    metadata: TableMetadata
    location: str


@dataclass
class Counters:
    """What loads read and wrote (the bench reports them)."""

    log_files_read: int = 0
    manifests_written: int = 0
    metadata_written: int = 0
    cache_hits: int = 0


COUNTERS = Counters()
_CACHE_SIZE = 256
_cache: OrderedDict[tuple[Any, str, int], Served] = OrderedDict()
_cache_lock = threading.Lock()
_log_locks: dict[str, threading.Lock] = {}
#: the logs this thread is generating metadata for (a branch log loads its parent's first)
_generating = threading.local()


def _cached(key: tuple[Any, str, int]) -> Served | None:
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
        return found


def _remember(key: tuple[Any, str, int], served: Served) -> None:
    with _cache_lock:
        _cache[key] = served
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def load(state: DeltaState, io: Mapping[str, str] | None = None) -> Served:
    """The Iceberg metadata of `state` (generated on first ask, then cached)."""
    config = FileIOConfig.of(io)
    key = (config.cache_key, state.location, state.version)
    found = _cached(key)
    if found is not None:
        COUNTERS.cache_hits += 1
        return found
    with _cache_lock:
        lock = _log_locks.setdefault(state.location, threading.Lock())
    chain = getattr(_generating, "chain", ())
    if normalize_path(state.location) in chain:
        raise untranslatable(f"its log at {state.location} names itself as its own parent")
    with lock:
        found = _cached(key)
        if found is None:
            _generating.chain = (*chain, normalize_path(state.location))
            try:
                found = _Generator(state, config).run()
            finally:
                _generating.chain = chain
            _remember(key, found)
    return found


def _read_bytes(location: str, io: FileIOConfig) -> bytes | None:
    try:
        with pyiceberg_file_io(location, io).new_input(location).open() as stream:
            data: bytes = stream.read()
            return data
    except FileNotFoundError:
        return None


def _list_names(directory: str, io: FileIOConfig) -> list[str]:
    from pyarrow import fs as pafs

    filesystem = pyarrow_filesystem(directory, io)
    path = directory.split("://", 1)[1] if "://" in directory else directory
    if directory.startswith("file:"):
        path = "/" + path.lstrip("/")
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except (OSError, ValueError):
        return []
    return [info.base_name for info in infos]


@dataclass
class _Table:
    """The translation's running state, one Delta version after another."""

    delta_meta: dict[str, Any]
    translated: Translated
    schemas: list[Schema]
    specs: list[PartitionSpec]
    manifests: list[ManifestFile] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    log_entries: list[SnapshotLogEntry] = field(default_factory=list)
    total_records: int = 0
    total_files: int = 0
    index: dict[str, int] | None = None  # file path -> position in `manifests`
    sequence_base: int = 0  # a version's sequence number is this + version + 1

    @property
    def partition_columns(self) -> list[str]:
        return list(self.delta_meta.get("partitionColumns") or [])

    @property
    def spec(self) -> PartitionSpec:
        return self.specs[-1]

    @property
    def schema(self) -> Schema:
        return self.schemas[-1]


class _Generator:
    def __init__(self, state: DeltaState, io: FileIOConfig) -> None:
        self.state = state
        self.io = io
        self.location = state.location.rstrip("/")
        self.fio = pyiceberg_file_io(self.location, io)
        self._first: bytes | None = None  # version 0's JSON, once read

    # ---- entry --------------------------------------------------------------------------
    def run(self) -> Served:
        target = metadata_location(self.location, self.state.version)
        existing = self._read_metadata(target)
        if existing is not None:
            return Served(existing, target)
        base_version, table = self._base()
        fork = self._fork() if table is None and not self._cleaned_up() else None
        if fork is not None:
            # a branch log: its history is its parent's up to the fork (same snapshot ids
            # and manifests), then one snapshot per version after its version 0
            parent = load(DeltaState(self.state.table_id, fork[0], fork[1], self.state.root,
                                     None), self.io)
            table = self._resume(parent.metadata)
            current = parent.metadata.current_snapshot()
            table.sequence_base = (current.sequence_number or 1) - 1 if current else 0
            base_version = 0
        elif table is None and self._first is None:
            # history starts where the log does: the state at this version, in one snapshot
            from spark_lakeversion.formats.delta.iceberg.checkpoint import actions_at

            base_version = self.state.version
            table = self._apply(None, base_version,
                                actions_at(self.location, base_version, self.io))
        for version in range(base_version + 1, self.state.version + 1):
            table = self._apply(table, version)
        if table is None:
            raise untranslatable(f"its log at {self.location} has no version "
                                 f"{self.state.version}")
        metadata = self._metadata(table)
        try:
            iceberg_files.write_new_file(target, iceberg_files.metadata_bytes(metadata),
                                         self.io)
            iceberg_files.forget_created(target)  # shared by every later load: never undone
            COUNTERS.metadata_written += 1
        except FileExistsError:
            pass  # a concurrent load wrote the same version: read theirs
        served = self._read_metadata(target)
        return Served(served if served is not None else metadata, target)

    def _read_metadata(self, location: str) -> TableMetadata | None:
        try:
            return fmt.read_metadata(location, self.io)
        except (FileNotFoundError, OSError):
            return None

    def _base(self) -> tuple[int, _Table | None]:
        """The newest metadata this log has on disk below the wanted version."""
        best = -1
        for name in _list_names(meta_dir(self.location), self.io):
            match = VERSIONED.match(name)
            if match and name.endswith(".metadata.json"):
                number = int(match.group(1))
                if best < number < self.state.version:
                    best = number
        if best < 0:
            return -1, None
        metadata = self._read_metadata(metadata_location(self.location, best))
        if metadata is None:
            return -1, None
        return best, self._resume(metadata)

    def _fork(self) -> tuple[str, int] | None:
        """The parent state a branch log's version 0 was forked from, if it names one
        inside the table's root that is not already being generated on this thread (a
        crafted log naming itself, or a cycle, is served without its parent's history)."""
        fork = fork_of(self._first, self.state.root)
        chain = getattr(_generating, "chain", ())
        if fork is None or normalize_path(fork[0]) in chain:
            return None
        return fork

    def _resume(self, metadata: TableMetadata) -> _Table:
        delta_meta = json.loads(metadata.properties[DELTA_METADATA])
        previous = translated_of(metadata.schema(), metadata.last_column_id)
        translated = translate_schema(delta_meta["schemaString"],
                                      delta_meta.get("configuration") or {}, previous)
        snapshot = metadata.current_snapshot()
        manifests = list(read_manifest_list(self.fio.new_input(snapshot.manifest_list))) \
            if snapshot is not None else []
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary \
            else {}
        return _Table(delta_meta, translated, list(metadata.schemas),
                      list(metadata.partition_specs), manifests, list(metadata.snapshots),
                      list(metadata.snapshot_log),
                      int(summary.get("total-records", 0)),
                      int(summary.get("total-data-files", 0)),
                      sequence_base=int(metadata.properties.get(SEQUENCE_BASE, "0")))

    # ---- one version --------------------------------------------------------------------
    def _actions(self, version: int) -> list[dict[str, Any]]:
        if version == 0 and self._first is not None:
            data: bytes | None = self._first
        else:
            path = f"{self.location}/_delta_log/{log.log_name(version)}"
            data = _read_bytes(path, self.io)
            COUNTERS.log_files_read += 1
        if data is None:
            raise untranslatable(f"version {version} of its log at {self.location} is not "
                                 "readable")
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]

    def _cleaned_up(self) -> bool:
        """Whether the log's version 0 is gone (cleaned up behind a checkpoint)."""
        path = f"{self.location}/_delta_log/{log.log_name(0)}"
        self._first = _read_bytes(path, self.io)  # read once: replay starts with it
        COUNTERS.log_files_read += 1
        return self._first is None

    def _apply(self, table: _Table | None, version: int,
               actions: list[dict[str, Any]] | None = None) -> _Table:
        actions = self._actions(version) if actions is None else actions
        adds, removes = [], []
        info: dict[str, Any] = {}
        for action in actions:
            if "protocol" in action:
                _check_protocol(action["protocol"])
            if "metaData" in action:
                table = self._new_metadata(table, action["metaData"])
            if "add" in action:
                adds.append(action["add"])
            if "remove" in action:
                removes.append(action["remove"])
            if "commitInfo" in action:
                info = action["commitInfo"]
        if table is None:
            raise untranslatable(f"version {version} of its log has no metaData action")
        sid = _recorded_id(info, table) or snapshot_id(self.location, version)
        sequence = table.sequence_base + version + 1
        paths = {log.file_id(self.location, a["path"]): a for a in adds}
        gone = {log.file_id(self.location, r["path"]) for r in removes}
        rewritten_adds = [p for p, a in paths.items() if not a.get("dataChange", True)]
        if gone or rewritten_adds:
            gone |= self._live(table, set(rewritten_adds))
        removed_records = 0
        carried: list[ManifestFile] = []
        if gone:
            index = self._index(table)
            touched = {index[p] for p in gone if p in index}
            for position, manifest in enumerate(table.manifests):
                if position not in touched:
                    carried.append(manifest)
                    continue
                rewritten, dropped = self._rewrite(table, manifest, gone, sid, version)
                removed_records += dropped
                carried.append(rewritten)
            removed_files = sum(1 for p in gone if p in index)
        else:
            carried = list(table.manifests)
            removed_files = 0
        added_records = 0
        if paths:
            files = [data_file(a, p, table.translated, table.partition_columns,
                               len(table.spec.fields)) for p, a in paths.items()]
            added_records = sum(f.record_count for f in files)
            carried.append(self._write_manifest(table, files, sid, version))
        live = [m for m in carried if (m.added_files_count or 0) + (m.existing_files_count or 0)]
        manifest_list = f"{meta_dir(self.location)}/v{version:020d}-{uuid.uuid4().hex}-snap.avro"
        parent = table.snapshots[-1].snapshot_id if table.snapshots else None
        with write_manifest_list(2, self.fio.new_output(manifest_list), sid, parent, sequence,
                                 "deflate") as writer:
            writer.add_manifests(carried)
        table.manifests = live
        table.index = None if gone or table.index is None else table.index
        if table.index is not None and paths:
            for p in paths:
                table.index[p] = len(live) - 1
        table.total_records += added_records - removed_records
        table.total_files += len(paths) - removed_files
        timestamp = int(info.get("inCommitTimestamp") or info.get("timestamp") or 0)
        if table.snapshots:
            timestamp = max(timestamp, table.snapshots[-1].timestamp_ms)
        all_quiet = all(not a.get("dataChange", True) for a in [*adds, *removes])
        operation = Operation.REPLACE if (adds or removes) and all_quiet else \
            Operation.APPEND if not removes else \
            Operation.DELETE if not adds else Operation.OVERWRITE
        summary = Summary(operation, **{
            DELTA_VERSION: str(version),
            "added-data-files": str(len(paths)), "deleted-data-files": str(removed_files),
            "added-records": str(added_records), "deleted-records": str(removed_records),
            "total-records": str(table.total_records),
            "total-data-files": str(table.total_files),
            "total-delete-files": "0", "total-position-deletes": "0",
            "total-equality-deletes": "0",
            "delta-operation": str(info.get("operation", ""))})
        table.snapshots.append(Snapshot.model_validate({
            "snapshot-id": sid, "parent-snapshot-id": parent, "sequence-number": sequence,
            "timestamp-ms": timestamp, "manifest-list": manifest_list, "summary": summary,
            "schema-id": table.schema.schema_id}))
        table.log_entries.append(SnapshotLogEntry.model_validate({"snapshot-id": sid,
                                                     "timestamp-ms": timestamp}))
        return table

    def _new_metadata(self, table: _Table | None, meta: dict[str, Any]) -> _Table:
        configuration = dict(meta.get("configuration") or {})
        previous = table.translated if table is not None else None
        if previous is not None and previous.mapped != \
                ((configuration.get(MAPPING_MODE) or "none").lower() in ("name", "id")):
            raise untranslatable("its column mapping mode changed in its history")
        translated = translate_schema(str(meta.get("schemaString") or ""), configuration,
                                      previous)
        partition_columns = list(meta.get("partitionColumns") or [])
        if table is None:
            schema = translated.schema.model_copy(update={"schema_id": 0})
            return _Table(meta, translated, [schema],
                          [partition_spec(translated, partition_columns, 0)])
        schemas = table.schemas
        if translated.schema.as_struct() != table.schema.as_struct():
            schemas = [*schemas, translated.schema.model_copy(
                update={"schema_id": max(s.schema_id for s in schemas) + 1})]
        specs = table.specs
        if partition_columns != table.partition_columns:
            if table.total_files:
                raise untranslatable("its partition columns changed while it held files")
            specs = [*specs, partition_spec(translated, partition_columns,
                                            max(s.spec_id for s in specs) + 1)]
        table.delta_meta, table.translated, table.schemas, table.specs = \
            meta, translated, schemas, specs
        return table

    # ---- manifests ----------------------------------------------------------------------
    def _write_manifest(self, table: _Table, files: list[DataFile], sid: int,
                        version: int) -> ManifestFile:
        path = f"{meta_dir(self.location)}/v{version:020d}-{uuid.uuid4().hex}-m0.avro"
        with write_manifest(2, table.spec, table.schema, self.fio.new_output(path), sid,
                            "deflate") as writer:
            for f in files:
                writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED,
                                                   snapshot_id=sid, data_file=f))
        COUNTERS.manifests_written += 1
        return writer.to_manifest_file()

    def _entries(self, manifest: ManifestFile) -> list[ManifestEntry]:
        return manifest.fetch_manifest_entry(self.fio, discard_deleted=True)

    def _index(self, table: _Table) -> dict[str, int]:
        if table.index is None:
            table.index = {}
            for position, manifest in enumerate(table.manifests):
                for entry in self._entries(manifest):
                    table.index[entry.data_file.file_path] = position
        return table.index

    def _live(self, table: _Table, paths: set[str]) -> set[str]:
        if not paths:
            return set()
        index = self._index(table)
        return {p for p in paths if p in index}

    def _rewrite(self, table: _Table, manifest: ManifestFile, gone: set[str], sid: int,
                 version: int) -> tuple[ManifestFile, int]:
        """`manifest` without the files in `gone` (marked deleted) and its dropped rows."""
        spec = next(s for s in table.specs if s.spec_id == manifest.partition_spec_id)
        path = f"{meta_dir(self.location)}/v{version:020d}-{uuid.uuid4().hex}-m1.avro"
        dropped = 0
        with write_manifest(2, spec, table.schema, self.fio.new_output(path), sid,
                            "deflate") as writer:
            for entry in self._entries(manifest):
                if entry.data_file.file_path in gone:
                    dropped += entry.data_file.record_count
                    writer.delete(entry)
                else:
                    writer.existing(entry)
        COUNTERS.manifests_written += 1
        return writer.to_manifest_file(), dropped

    # ---- the metadata -------------------------------------------------------------------
    def _metadata(self, table: _Table) -> TableMetadata:
        state = self.state
        current = table.snapshots[-1]
        properties = {
            **FACADE_PROPERTIES,
            "write.data.path": state.root,
            "write.metadata.path": meta_dir(self.location),
            "schema.name-mapping.default": json.dumps(table.translated.name_mapping),
            DELTA_METADATA: json.dumps(table.delta_meta, separators=(",", ":")),
            DELTA_TABLE_ID: state.table_id,
            DELTA_LOG: self.location,
            SEQUENCE_BASE: str(table.sequence_base),
        }
        main = SnapshotRef.model_validate({"snapshot-id": current.snapshot_id,
                              "type": SnapshotRefType.BRANCH})
        return TableMetadataV2.model_validate({
            "location": state.root, "table-uuid": _table_uuid(state.table_id),
            "last-updated-ms": current.timestamp_ms,
            "last-column-id": max(table.translated.last_column_id,
                                  max(s.highest_field_id for s in table.schemas)),
            "schemas": table.schemas, "current-schema-id": table.schema.schema_id,
            "partition-specs": table.specs, "default-spec-id": table.spec.spec_id,
            "last-partition-id": max([999, *(f.field_id for s in table.specs
                                             for f in s.fields)]),
            "properties": properties, "current-snapshot-id": current.snapshot_id,
            "snapshots": table.snapshots, "snapshot-log": table.log_entries,
            "sort-orders": [UNSORTED_SORT_ORDER], "default-sort-order-id": 0,
            "refs": {"main": main},
            "last-sequence-number": current.sequence_number or 0})


def _recorded_id(info: Mapping[str, Any], table: _Table) -> int | None:
    """The Iceberg snapshot id a version written through the catalog records (so the
    writer finds its snapshot again), unless it is not a fresh positive id."""
    text = (info.get("operationParameters") or {}).get(ICEBERG_SNAPSHOT_ID)
    if not isinstance(text, str) or not text.isdigit():
        return None
    value = int(text)
    if not 0 < value < 2**63 or any(s.snapshot_id == value for s in table.snapshots):
        return None
    return value


def _table_uuid(table_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(table_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"delta:{table_id}")


def _check_protocol(protocol: Mapping[str, Any]) -> None:
    features = set(protocol.get("readerFeatures") or ())
    unreadable = sorted(features - READABLE_FEATURES)
    if unreadable:
        raise untranslatable(f"it uses the Delta reader feature(s) {', '.join(unreadable)}")
    if int(protocol.get("minReaderVersion") or 1) > 3:
        raise untranslatable(f"it needs Delta reader version {protocol.get('minReaderVersion')}")


def translated_of(schema: Schema, last_column_id: int) -> Translated:
    """Ids by path of a served schema (what a resumed translation keeps stable)."""
    from pyiceberg.types import ListType, MapType, NestedField, StructType

    columns: dict[tuple[str, ...], Column] = {}

    def walk(fields: tuple[NestedField, ...], path: tuple[str, ...]) -> None:
        for f in fields:
            here = (*path, f.name)
            columns[here] = Column(f.field_id, here, f.name, f.field_type)
            nested(f.field_type, here)

    def nested(itype: Any, path: tuple[str, ...]) -> None:
        if isinstance(itype, StructType):
            walk(itype.fields, path)
        elif isinstance(itype, ListType):
            columns[(*path, "element")] = Column(itype.element_id, (*path, "element"),
                                                 "element", itype.element_type)
            nested(itype.element_type, (*path, "element"))
        elif isinstance(itype, MapType):
            columns[(*path, "key")] = Column(itype.key_id, (*path, "key"), "key",
                                             itype.key_type)
            columns[(*path, "value")] = Column(itype.value_id, (*path, "value"), "value",
                                               itype.value_type)
            nested(itype.value_type, (*path, "value"))

    walk(schema.fields, ())
    return Translated(schema, columns, [], last_column_id, False)
