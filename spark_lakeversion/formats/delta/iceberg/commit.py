"""Iceberg commits on a Delta table become one Delta version.

A commit is checked against the served metadata of the Delta version its snapshot came
from (its requirements); the data files its new snapshot adds and deletes (read from the
manifests that snapshot wrote, never a data file's footer) become `add` and `remove`
actions with partition values and stats, written as the next version of the branch's log
by put-if-absent (`log.write_commit`): a version someone wrote first is a conflict. Every
added file must lie under the Delta table's root, where plain Delta readers find it by a
relative path; delete files (merge-on-read) are refused, naming the property that makes a
writer copy on write. Only data changes are accepted: schema and property changes are
refused with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.conversions import from_bytes
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import (
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntryStatus,
    read_manifest_list,
)
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update import (
    AddSchemaUpdate,
    AddSnapshotUpdate,
    AssertCreate,
    AssertTableUUID,
    SetCurrentSchemaUpdate,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    TableRequirement,
    TableUpdate,
)
from pyiceberg.types import (
    BooleanType,
    DateType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    PrimitiveType,
    StringType,
    TimestampType,
    TimestamptzType,
)

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.fileio import FileIOConfig, pyiceberg_file_io
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta import rebase as delta_rebase
from spark_lakeversion.formats.delta.branching import WritableLog, writable
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.iceberg import values
from spark_lakeversion.formats.delta.iceberg.errors import Untranslatable
from spark_lakeversion.formats.delta.iceberg.evolve import evolve
from spark_lakeversion.formats.delta.iceberg.schema import Translated, translate_schema
from spark_lakeversion.formats.delta.iceberg.translate import (
    DELTA_METADATA,
    ICEBERG_SNAPSHOT_ID,
    fork_of,
    snapshot_id,
)
from spark_lakeversion.formats.iceberg import rebase as iceberg_rebase
from spark_lakeversion.locations import normalize_path

#: how many log versions a stale append's snapshot is looked for, newest first
MAX_WALK = 1000
#: table properties a client may send back that the served metadata derives anyway
DERIVED_PROPERTIES = frozenset({"schema.name-mapping.default"})


class StaleCommit(ConflictError):
    """The commit's requirements do not hold for the Delta version it is checked against,
    or that log moved on while writing: reload and retry (Iceberg's CommitFailed)."""


def refused(why: str) -> Untranslatable:
    return Untranslatable(f"this Iceberg commit cannot become a Delta version: {why}")


@dataclass
class DeltaWrite:
    """What a commit wrote: the new state and the log files this request created."""

    state: DeltaState
    created: list[str] = field(default_factory=list)
    operation: str = "append"
    added: int = 0
    removed: int = 0
    rebased_from: str | None = None  # the state a rebased append read (location@version)


def _requested(base: TableMetadata, updates: Sequence[TableUpdate],
               rebased_onto: int | None = None) -> tuple[list[Snapshot], Schema | None]:
    """The snapshots (a chain from the base's current one: pyiceberg's overwrite adds a
    delete and an append) and the new current schema a commit asks for; anything else
    refused. Main must end at the last snapshot. A rebased append's snapshot follows the
    snapshot it read, not the base's current one (`rebased_onto`)."""
    snapshots: list[Snapshot] = []
    schema: Schema | None = None
    current = False
    for update in updates:
        if isinstance(update, AddSnapshotUpdate):
            snapshots.append(update.snapshot)
        elif isinstance(update, SetSnapshotRefUpdate):
            if update.ref_name != "main":
                raise refused(f"it sets the Iceberg ref {update.ref_name!r}; branch the "
                              "catalog instead (CREATE BRANCH)")
        elif isinstance(update, AddSchemaUpdate):
            if schema is not None:
                raise refused("it adds more than one schema")
            schema = update.schema_
        elif isinstance(update, SetPropertiesUpdate) and \
                set(update.updates) <= DERIVED_PROPERTIES:
            continue  # the facade derives these from the Delta log (pyiceberg sends its
            # updated name mapping with a schema change)
        elif isinstance(update, SetCurrentSchemaUpdate):
            if update.schema_id not in (-1, schema.schema_id if schema else -1):
                raise refused("it makes an earlier schema current again (a column dropped "
                              "or restored): change such columns through Delta")
            current = True
        else:
            raise refused(f"{update.action} is not a change a Delta version can hold (a "
                          "Delta table served as Iceberg takes data changes and added or "
                          "(with column mapping) renamed columns; change its properties "
                          "and partitioning through Delta)")
    if schema is not None and not current:
        raise refused("it adds a schema without making it current")
    parent = base.current_snapshot_id
    for snapshot in snapshots:
        if any(s.snapshot_id == snapshot.snapshot_id for s in base.snapshots):
            raise refused(f"snapshot id {snapshot.snapshot_id} exists already")
        if snapshot.parent_snapshot_id != parent and rebased_onto is None:
            raise refused(f"snapshot {snapshot.snapshot_id} does not follow "
                          f"{parent} (the table's current snapshot, then each added one)")
        parent = snapshot.snapshot_id
    refs = [u.snapshot_id for u in updates if isinstance(u, SetSnapshotRefUpdate)]
    added = {s.snapshot_id for s in snapshots}
    if snapshots and (not refs or refs[-1] != snapshots[-1].snapshot_id) or \
            any(r not in added for r in refs):
        raise refused("it must end with main at the last snapshot it adds")
    return snapshots, schema


def check_requirements(base: TableMetadata, requirements: Sequence[TableRequirement]) -> None:
    if any(isinstance(r, AssertCreate) for r in requirements):
        raise StaleCommit("the table exists already")
    try:
        for requirement in requirements:
            requirement.validate(base)
    except CommitFailedException as exc:
        raise StaleCommit(str(exc)) from None


def apply(state: DeltaState, base: TableMetadata, requirements: Sequence[TableRequirement],
          updates: Sequence[TableUpdate], branch: str, io: Mapping[str, str], *,
          rebase_appends: bool = False) -> DeltaWrite | None:
    """Write the commit as the next version of `branch`'s log (None: nothing to write).
    A pure append whose asserted snapshot is an earlier version of the table is written
    on the current one when `rebase_appends` and Delta's rule allow it (`_rebased_from`)."""
    rebased_from: DeltaState | None = None
    try:
        check_requirements(base, requirements)
    except StaleCommit:
        rebased_from = _rebased_from(state, base, requirements, updates, rebase_appends, io)
        if rebased_from is None:
            raise
    snapshots, schema = _requested(
        base, updates, None if rebased_from is None else base.current_snapshot_id)
    if rebased_from is not None:
        check_requirements(base, [r for r in requirements if isinstance(r, AssertTableUUID)])
    delta_meta = json_meta(base)
    if schema is not None:
        delta_meta = evolve(delta_meta, base.schema(), schema)
    adds, removed = _changes(snapshots, base, state, FileIOConfig.of(io))
    if not adds and not removed and schema is None:
        return None
    if rebased_from is not None and removed:
        raise StaleCommit("the append removes files: it cannot be written on a newer version")
    target: WritableLog = writable(state, branch, io)
    try:
        return _write(target, delta_meta, schema is not None,
                      snapshots[-1] if snapshots else None, adds, removed, io, rebased_from)
    except BaseException:
        log.delete_created(target.created, io)
        raise


def _changes(snapshots: list[Snapshot], base: TableMetadata, state: DeltaState,
             io: FileIOConfig) -> tuple[list[Any], set[str]]:
    """The data files the snapshots' own manifests add and delete, net (a file one of
    them adds and a later one deletes is neither)."""
    adds: dict[str, Any] = {}
    removed: set[str] = set()
    for snapshot in snapshots:
        for status, data in _own_entries(snapshot, base, state, io):
            path = normalize_path(data.file_path)
            if status == ManifestEntryStatus.ADDED:
                adds[path] = data
            elif path in adds:
                del adds[path]
            else:
                removed.add(path)
    return list(adds.values()), removed


def _own_entries(snapshot: Snapshot, base: TableMetadata, state: DeltaState,
                 io: FileIOConfig) -> list[tuple[ManifestEntryStatus, Any]]:
    """The entries a snapshot's own manifests add and delete, checked: Parquet data files
    under the table root, no delete files, the table's partition spec."""
    manifest_list = snapshot.manifest_list
    if not normalize_path(manifest_list).startswith(normalize_path(state.root) + "/"):
        raise refused(f"its manifest list {manifest_list} is not under the table root "
                      f"{state.root}")
    fio = pyiceberg_file_io(manifest_list, io)
    found: list[tuple[ManifestEntryStatus, Any]] = []
    root = normalize_path(state.root).rstrip("/") + "/"
    for manifest in read_manifest_list(fio.new_input(manifest_list)):
        if manifest.added_snapshot_id != snapshot.snapshot_id:
            continue  # carried from an earlier snapshot: nothing new in it
        if not normalize_path(manifest.manifest_path).startswith(root):
            raise refused(f"its manifest {manifest.manifest_path} is not under the table "
                          f"root {state.root}")
        if manifest.content != ManifestContent.DATA:
            raise refused("it writes delete files (merge-on-read); set write.delete.mode, "
                          "write.update.mode and write.merge.mode to copy-on-write")
        if manifest.partition_spec_id != base.default_spec_id:
            raise refused(f"it writes partition spec {manifest.partition_spec_id}, not the "
                          "table's")
        for entry in manifest.fetch_manifest_entry(fio, discard_deleted=False):
            if entry.snapshot_id != snapshot.snapshot_id:
                continue
            data = entry.data_file
            if entry.status == ManifestEntryStatus.ADDED:
                if data.content != DataFileContent.DATA:
                    raise refused("it adds delete files; set write.delete.mode to "
                                  "copy-on-write")
                if data.file_format != FileFormat.PARQUET:
                    raise refused(f"file {data.file_path} is {data.file_format}, Delta "
                                  "reads Parquet only")
                if not normalize_path(data.file_path).startswith(root):
                    raise refused(f"data file {data.file_path} is not under the Delta "
                                  f"table's root {state.root}")
                found.append((entry.status, data))
            elif entry.status == ManifestEntryStatus.DELETED:
                found.append((entry.status, data))
    return found


def _rebased_from(state: DeltaState, base: TableMetadata,
                  requirements: Sequence[TableRequirement], updates: Sequence[TableUpdate],
                  enabled: bool, io: Mapping[str, str]) -> DeltaState | None:
    """The earlier state of the table a stale pure append read, when it may be written
    on `state` under Delta's rule (`formats/delta/rebase.py`); None otherwise."""
    shape = iceberg_rebase.append_shape(requirements, updates)
    if not enabled or shape is None or shape.ref != "main" or shape.asserted is None:
        return None
    read = _state_of_snapshot(state, shape.asserted, io)
    if read is None or read == state or delta_rebase.refusal(read, state, io) is not None:
        return None
    return read


def _state_of_snapshot(state: DeltaState, snapshot: int, io: Mapping[str, str]
                       ) -> DeltaState | None:
    """The earlier state of the table whose served snapshot is `snapshot`: its log walked
    back from `state` (through each branch log's parent), at most `MAX_WALK` versions."""
    location, version, walked = state.location, state.version, 0
    while walked < MAX_WALK:
        for v in range(version, -1, -1):
            walked += 1
            info = log.commit_info(v, location, io)
            recorded = str((info.get("operationParameters") or {}).get(ICEBERG_SNAPSHOT_ID))
            sid = int(recorded) if recorded.isdigit() else snapshot_id(location, v)
            if sid == snapshot:
                return DeltaState(state.table_id, location, v, state.root, state.writer)
            if v == 0:
                parent = fork_of(json.dumps({"commitInfo": info}).encode(), state.root)
                if parent is None:
                    return None
                location, version = parent
    return None


def _write(target: WritableLog, delta_meta: dict[str, Any], changed: bool,
           snapshot: Snapshot | None, adds: list[Any], removed: set[str],
           io: Mapping[str, str], rebased_from: DeltaState | None = None) -> DeltaWrite:
    """One version on the target log: the metaData action if the schema `changed`, the
    removes and the adds (with `delta_meta`'s schema and partition columns)."""
    translated = translate_schema(delta_meta["schemaString"],
                                  delta_meta.get("configuration") or {})
    partition_columns = list(delta_meta.get("partitionColumns") or [])
    location = target.state.location
    actions: list[dict[str, Any]] = [{"metaData": delta_meta}] if changed else []
    if removed:
        live = log.read_state(location, target.state.version, io=io).files
        at = location if target.forked else None  # a new branch log names them its way
        for fid in sorted(removed):
            found = live.get(fid)
            if found is None:
                raise StaleCommit(f"data file {fid} is no longer in the table")
            actions.append(found.remove_action(log_location=at))
    timestamp = snapshot.timestamp_ms if snapshot is not None else 0
    for data in adds:
        actions.append(add_action(location, data, translated, partition_columns, timestamp))
    if snapshot is None:
        operation, name = "schema", "CHANGE COLUMNS"
    else:
        operation = snapshot.summary.operation.value if snapshot.summary else "append"
        name = "DELETE" if removed and not adds else "WRITE"
    blind = not removed and not changed
    parameters = {"mode": "Append" if blind else "Overwrite", "icebergOperation": operation}
    if snapshot is not None:
        parameters[ICEBERG_SNAPSHOT_ID] = str(snapshot.snapshot_id)
    rebased = None if rebased_from is None else \
        f"{rebased_from.location}@{rebased_from.version}"
    if rebased is not None:
        parameters[delta_rebase.REBASED] = rebased
    version = target.state.version + 1
    path = log.write_commit(location, version, actions, name, parameters, blind_append=blind,
                            io=io)
    if path is None:
        raise StaleCommit(f"the Delta log at {location} has a version {version} already: "
                          "reload the table and retry")
    return DeltaWrite(target.state.at(version), [*target.created, path], operation,
                      len(adds), len(removed), rebased)


def json_meta(base: TableMetadata) -> dict[str, Any]:
    import json

    text = base.properties.get(DELTA_METADATA)
    if not text:
        raise refused("its served metadata does not name its Delta metadata")
    value: dict[str, Any] = json.loads(text)
    return value


def add_action(location: str, data: Any, translated: Translated,
                partition_columns: list[str], timestamp_ms: int) -> dict[str, Any]:
    import json

    by_id = {c.field_id: c for c in translated.columns.values() if len(c.path) == 1}
    values = list(data.partition) if data.partition is not None else []
    partition: dict[str, str | None] = {}
    for name, value in zip(partition_columns, values):
        source = translated.columns[(name,)]
        partition[source.physical] = _partition_text(value, source.type)
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for bounds, out in ((data.lower_bounds or {}, minimum), (data.upper_bounds or {}, maximum)):
        for field_id, raw in bounds.items():
            column = by_id.get(field_id)
            if column is None or column.path[0] in partition_columns:
                continue
            value = _stat(raw, column.type)
            if value is not None:
                out[column.physical] = value
    for field_id, count in (data.null_value_counts or {}).items():
        column = by_id.get(field_id)
        if column is not None and column.path[0] not in partition_columns:
            nulls[column.physical] = int(count)
    stats = {"numRecords": int(data.record_count), "minValues": minimum,
             "maxValues": maximum, "nullCount": nulls}
    return {"add": {"path": log.add_path(location, data.file_path),
                    "partitionValues": partition, "size": int(data.file_size_in_bytes),
                    "modificationTime": timestamp_ms, "dataChange": True,
                    "stats": json.dumps(stats, separators=(",", ":"))}}


def _partition_text(value: Any, itype: IcebergType) -> str | None:
    if value is None:
        return None
    if isinstance(itype, DateType) and isinstance(value, int):
        return values.date_text(value)
    if isinstance(itype, (TimestampType, TimestamptzType)) and isinstance(value, int):
        return values.timestamp_text(value, stats=False)
    return log.partition_text(value)


def _stat(raw: bytes, itype: IcebergType) -> Any:
    """An Iceberg bound as a Delta stat value (None: a type Delta stats skip here)."""
    if not isinstance(itype, PrimitiveType):
        return None
    try:
        value = from_bytes(itype, raw)
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    if isinstance(itype, (IntegerType, LongType, BooleanType, StringType)):
        return value
    if isinstance(itype, (FloatType, DoubleType)):
        return float(value)
    if isinstance(itype, DateType):
        return values.date_text(int(value))
    if isinstance(itype, (TimestampType, TimestamptzType)):
        return values.timestamp_text(int(value), stats=True)
    return None
