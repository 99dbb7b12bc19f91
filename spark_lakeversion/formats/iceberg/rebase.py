"""Server-side rebase of a pure append onto the table's new head.

A client's append asserts the snapshot it read (`assert-ref-snapshot-id`); when another
append landed first, that assertion fails and the client would reload, rewrite its
manifest list and retry. `rebase_append` does that retry on the server, producing exactly
what the client's retry would: the same snapshot id, the client's manifests reused
verbatim, and a NEW manifest list written by the server under the table's metadata path
(never the client's file) with

- the parent set to the head and the next sequence number (format v2+) given to the
  manifests this snapshot adds;
- for format v3, `first-row-id` of the snapshot and of its new data manifests reassigned
  from the table's `next-row-id`;
- the summary's totals recomputed from the head's, every other key kept (writers keep
  exactly-once state there, e.g. Flink's checkpoint id).

It refuses (`NotRebased`, answered 409 as before) unless every condition holds: only
`assert-table-uuid` and `assert-ref-snapshot-id` as requirements; exactly one
`add-snapshot` (operation `append`) and one `set-snapshot-ref` on the asserted branch;
besides manifests still live at the head (those it carried over from its parent), the
manifest list holds only its own new data manifests, whose entries are ADDED data files
with inherited sequence numbers and row ids, or EXISTING ones where the client merged
manifests (`commit.manifest-merge.enabled`); only appends or compactions (`replace`, which
commute with an append) landed since the asserted snapshot, with no schema or partition
spec change; and the table property `lakeversion.rebase-appends` is not `false`. An
overwrite or delete that landed in between always refuses: its filter is not recorded, so
it could match the new rows (serializable isolation). A merged manifest is reused only
when every manifest it replaced is still listed at the head, so each of its EXISTING files
is still live there, and their live files are exactly its EXISTING entries; the rebased
list then leaves those manifests out (`_replaced`). When a commit since merged or
rewrote them (two writers merging the same manifests), it refuses.

The work is split so little of it is serialized: `inspect_append` reads and checks the
client's own files and needs no head (the request's thread does it before it queues);
`rebase_append` does the head-dependent checks and writes the list, copying the head's
manifest entries block by block.
"""

from __future__ import annotations

import io as _io
import json
import posixpath
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    AssertRefSnapshotId,
    AssertTableUUID,
    SetSnapshotRefUpdate,
    TableRequirement,
    TableUpdate,
)
from pyiceberg.typedef import Record

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg import files as iceberg_files
from spark_lakeversion.formats.iceberg.avro import decode_records, raw_blocks, read_records
from spark_lakeversion.locations import AllowedRoots

#: the table property that turns the rebase off for one table (`false`)
REBASE_PROPERTY = "lakeversion.rebase-appends"
#: snapshot operations that commute with an append landing after them
COMMUTING = frozenset({"append", "replace"})
#: how far back the head's history is walked looking for the asserted snapshot
MAX_WALK = 100_000
#: summary totals and the increments they move by (added, removed)
TOTALS = {
    "total-records": ("added-records", "deleted-records"),
    "total-files-size": ("added-files-size", "removed-files-size"),
    "total-data-files": ("added-data-files", "deleted-data-files"),
    "total-delete-files": ("added-delete-files", "removed-delete-files"),
    "total-position-deletes": ("added-position-deletes", "removed-position-deletes"),
    "total-equality-deletes": ("added-equality-deletes", "removed-equality-deletes"),
}
_EXISTING, _ADDED, _DELETED, _DATA = 0, 1, 2, 0
# field ids of the Iceberg spec (manifest list; manifest entry; data file)
_PATH, _SPEC, _CONTENT, _SEQ, _MIN_SEQ, _SNAP = 500, 502, 517, 515, 516, 503
_ADDED_ROWS, _EXISTING_ROWS, _FIRST_ROW_ID = 512, 513, 520
_STATUS, _ENTRY_SNAP, _ENTRY_SEQ, _ENTRY_FILE_SEQ, _DATA_FILE = 0, 1, 3, 4, 2
_FILE_PATH, _FILE_CONTENT, _FILE_FIRST_ROW_ID = 100, 134, 142


class NotRebased(Exception):
    """Why a commit is not a safe pure append on the new head (the commit answers 409)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AppendShape:
    """The parts of a commit that make it a candidate pure append (no I/O needed)."""

    ref: str
    asserted: int | None
    snapshot: Snapshot
    set_ref: SetSnapshotRefUpdate


@dataclass(frozen=True)
class Rebased:
    """A rebased append: the updates to apply and the manifest list the server wrote."""

    updates: tuple[TableUpdate, ...]
    snapshot_id: int
    asserted: int | None
    onto: int | None
    manifest_list: str


def append_shape(requirements: Sequence[TableRequirement],
                 updates: Sequence[TableUpdate]) -> AppendShape | None:
    """The append a commit is, when its requirements and updates have the only shape a
    rebase accepts; None otherwise."""
    refs = [r for r in requirements if isinstance(r, AssertRefSnapshotId)]
    if len(refs) != 1 or any(not isinstance(r, (AssertRefSnapshotId, AssertTableUUID))
                             for r in requirements):
        return None
    adds = [u for u in updates if isinstance(u, AddSnapshotUpdate)]
    sets = [u for u in updates if isinstance(u, SetSnapshotRefUpdate)]
    if len(updates) != 2 or len(adds) != 1 or len(sets) != 1:
        return None
    snapshot, set_ref = adds[0].snapshot, sets[0]
    operation = snapshot.summary.operation.value if snapshot.summary else None
    if (operation != "append" or set_ref.ref_name != refs[0].ref
            or set_ref.type != SnapshotRefType.BRANCH
            or set_ref.snapshot_id != snapshot.snapshot_id
            or snapshot.parent_snapshot_id != refs[0].snapshot_id):
        return None
    return AppendShape(refs[0].ref, refs[0].snapshot_id, snapshot, set_ref)


def enabled(metadata: TableMetadata) -> bool:
    """The table's own switch (`lakeversion.rebase-appends`, default on)."""
    return str(metadata.properties.get(REBASE_PROPERTY, "true")).strip().lower() != "false"


@dataclass(frozen=True)
class Inspected:
    """What a pure append brings, read once from its files (no head needed, so the
    request's own thread reads it before it queues): its own manifests, checked, and
    the other manifests its list names."""

    shape: AppendShape
    uuid: Any
    format_version: int
    codec: str | None
    new: tuple[dict[int, Any], ...]
    carried: frozenset[str]
    spec_ids: frozenset[int]
    #: the data files its merged manifests hold as EXISTING entries (sorted, repeats kept)
    existing: tuple[str, ...] = ()
    #: its own manifests that hold EXISTING entries (their min sequence number is kept)
    merged: frozenset[str] = frozenset()


def inspect_append(requirements: Sequence[TableRequirement], updates: Sequence[TableUpdate],
                   io_properties: Mapping[str, str], roots: AllowedRoots) -> Inspected:
    """Read and check a pure append's manifest list and new manifests; files the client
    names are read only under `roots`, bounded (`files.read_client_file`).
    NotRebased when it is not a safe append whatever the head; InvalidInput when it names
    files it may not."""
    try:
        return _inspect(requirements, updates, io_properties, roots)
    except (NotRebased, InvalidInput):
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError) as exc:
        raise NotRebased(f"its manifests cannot be read ({type(exc).__name__})") from None


def _inspect(requirements: Sequence[TableRequirement], updates: Sequence[TableUpdate],
             io_properties: Mapping[str, str], roots: AllowedRoots) -> Inspected:
    shape = append_shape(requirements, updates)
    if shape is None:
        raise NotRebased("only a pure append (one add-snapshot with operation append and "
                         "its set-snapshot-ref, asserting only the table uuid and the ref) "
                         "is rebased")
    snapshot = shape.snapshot
    list_meta, list_schema, client_records = decode_records(_client_bytes(
        snapshot.manifest_list, f"snapshot {snapshot.snapshot_id} manifest list", roots,
        io_properties))
    at = _positions(list_schema.as_struct())
    new: list[dict[int, Any]] = []
    carried: set[str] = set()
    for record in client_records:
        if record[at[_SNAP]] == snapshot.snapshot_id:
            new.append(_by_id(record, list_schema.as_struct()))
        else:
            carried.add(record[at[_PATH]])
    existing: list[str] = []
    merged: set[str] = set()
    for fields in new:
        held = _check_new_manifest(snapshot.snapshot_id, fields, roots, io_properties)
        if held:
            existing += held
            merged.add(fields[_PATH])
    uuids = [r.uuid for r in requirements if isinstance(r, AssertTableUUID)]
    return Inspected(shape, uuids[0] if uuids else None,
                     int(list_meta.get("format-version", "1")), list_meta.get("avro.codec"),
                     tuple(new), frozenset(carried),
                     frozenset(int(f.get(_SPEC, 0)) for f in new), tuple(sorted(existing)),
                     frozenset(merged))


def rebase_append(current: TableMetadata, inspected: Inspected,
                  io_properties: Mapping[str, str]) -> Rebased:
    """The inspected append re-applied on `current` (the table at the head), with its new
    manifest list written (create-exclusive; the caller deletes it if the commit is
    refused). NotRebased when it is not safe on this head."""
    try:
        return _rebase(current, inspected, io_properties)
    except NotRebased:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError) as exc:
        raise NotRebased(f"the head's manifests cannot be read ({type(exc).__name__})"
                         ) from None


def _rebase(current: TableMetadata, inspected: Inspected,
            io_properties: Mapping[str, str]) -> Rebased:
    shape = inspected.shape
    if not enabled(current):
        raise NotRebased(f"table property {REBASE_PROPERTY} is false")
    if inspected.uuid is not None and inspected.uuid != current.table_uuid:
        raise NotRebased("the table's uuid changed")
    snapshot = shape.snapshot
    if current.snapshot_by_id(snapshot.snapshot_id) is not None:
        raise NotRebased(f"snapshot {snapshot.snapshot_id} is already in the table")
    head_ref = current.refs.get(shape.ref)
    if head_ref is not None and head_ref.snapshot_ref_type != SnapshotRefType.BRANCH:
        raise NotRebased(f"{shape.ref} is not a branch of the table")
    onto = head_ref.snapshot_id if head_ref is not None else None
    _check_landed(current, onto, shape.asserted)
    if snapshot.schema_id is None or snapshot.schema_id != current.current_schema_id:
        raise NotRebased("the table's schema changed since the snapshot was written")
    fmt_version = current.format_version
    if inspected.format_version != fmt_version:
        raise NotRebased("the manifest list's format version is not the table's")
    if inspected.spec_ids - {current.default_spec_id}:
        raise NotRebased("the table's partition spec changed since the snapshot was written")
    file_io = iceberg_files.file_io(current.location, io_properties)
    head = _head_list(file_io, current, onto)
    if inspected.carried - (head.paths if head is not None else frozenset()):
        # carried over from its parent, so still at the head when only appends landed
        raise NotRebased("its list names manifests that are neither its own nor live at "
                         "the head (rewritten or merged since)")
    replaced = _replaced(file_io, current, inspected, head)
    new = [dict(f) for f in inspected.new]
    sequence = int(getattr(current, "last_sequence_number", 0) or 0) + 1 \
        if fmt_version >= 2 else None
    first_row_id = _assign(new, sequence, current, fmt_version, inspected.merged)
    added_rows = None
    if fmt_version >= 3:
        added_rows = sum(int(f.get(_ADDED_ROWS) or 0) + int(f.get(_EXISTING_ROWS) or 0)
                         for f in new if f.get(_CONTENT, _DATA) == _DATA)
        if snapshot.added_rows is not None and snapshot.added_rows != added_rows:
            raise NotRebased(f"added-rows {snapshot.added_rows} does not match its manifests "
                             f"({added_rows})")
    location = _list_location(current, snapshot.snapshot_id)
    meta = {"snapshot-id": str(snapshot.snapshot_id),
            "parent-snapshot-id": str(onto) if onto is not None else "null",
            "format-version": str(fmt_version)}
    if sequence is not None:
        meta["sequence-number"] = str(sequence)
    if first_row_id is not None:
        meta["first-row-id"] = str(first_row_id)
    codec = head.meta.get("avro.codec") if head is not None else inspected.codec
    if codec:
        meta["avro.codec"] = codec
    _write_list(location, fmt_version, new, head, meta, io_properties, replaced)
    parent = current.snapshot_by_id(onto) if onto is not None else None
    rebased = snapshot.model_copy(update={
        "parent_snapshot_id": onto,
        "sequence_number": sequence if sequence is not None else snapshot.sequence_number,
        "manifest_list": location,
        # a head without a summary has unknown totals (none made up); no head: from zero
        "summary": rebased_summary(snapshot.summary, None if parent is None else (
            parent.summary or Summary(Operation.APPEND))),
        "timestamp_ms": max(snapshot.timestamp_ms, current.last_updated_ms),
        **({"first_row_id": first_row_id, "added_rows": added_rows}
           if fmt_version >= 3 else {}),
    })
    return Rebased((AddSnapshotUpdate(snapshot=rebased), shape.set_ref), snapshot.snapshot_id,
                   shape.asserted, onto, location)


def rebased_summary(summary: Summary | None, head: Summary | None) -> Summary | None:
    """The summary with its totals recomputed on the head's (dropped when the head's is
    unknown); every other key kept as the client wrote it."""
    if summary is None:
        return None
    props = dict(summary.additional_properties)
    before = dict(head.additional_properties) if head is not None else None
    for total, (added, removed) in TOTALS.items():
        if total not in props:
            continue
        previous = "0" if before is None else before.get(total)
        if previous is None or not str(previous).lstrip("-").isdigit():
            del props[total]
            continue
        props[total] = str(int(previous) + _int(props.get(added)) - _int(props.get(removed)))
    return Summary(summary.operation, **props)


def _int(value: object) -> int:
    text = str(value) if value is not None else "0"
    return int(text) if text.lstrip("-").isdigit() else 0


def _check_landed(current: TableMetadata, onto: int | None, asserted: int | None) -> None:
    """Only commuting snapshots lie between `asserted` and the head (`onto`)."""
    walked, at = 0, onto
    while at != asserted:
        if at is None or walked > MAX_WALK:
            raise NotRebased(f"snapshot {asserted} is not an ancestor of the head")
        snap = current.snapshot_by_id(at)
        if snap is None:
            raise NotRebased(f"snapshot {at} of the head's history is gone")
        operation = snap.summary.operation.value if snap.summary else "unknown"
        if operation not in COMMUTING:
            raise NotRebased(f"snapshot {at} ({operation}) landed since {asserted}: its "
                             "filter could match the new rows")
        at, walked = snap.parent_snapshot_id, walked + 1


def _client_bytes(location: str, what: str, roots: AllowedRoots,
                  io_properties: Mapping[str, str]) -> bytes:
    """A file the client names: under a root (else LocationNotAllowed), read bounded."""
    roots.check(location, what)
    try:
        return iceberg_files.read_client_file(location, roots,
                                              limit=iceberg_files.MAX_MANIFEST_LIST_BYTES,
                                              io_properties=io_properties)
    except iceberg_files.UnreadableFile:
        raise InvalidInput(f"{what} {location!r} is not a readable Iceberg file under the "
                           "allowed locations") from None


@dataclass(frozen=True)
class _ListFile:
    """A committed manifest list: its bytes (copied block by block into a rebased list
    when the schema is the one written) and the manifests it lists."""

    meta: dict[str, str]
    data: bytes
    paths: frozenset[str]


_LISTS: OrderedDict[str, _ListFile] = OrderedDict()
_LISTS_LOCK = threading.Lock()
_LISTS_KEPT = 64


def _remember(location: str, listed: _ListFile) -> None:
    with _LISTS_LOCK:
        _LISTS[location] = listed
        _LISTS.move_to_end(location)
        while len(_LISTS) > _LISTS_KEPT:
            _LISTS.popitem(last=False)


def _head_list(io: Any, current: TableMetadata, snapshot_id: int | None) -> _ListFile | None:
    """The head snapshot's manifest list (files never change: cached by location)."""
    if snapshot_id is None:
        return None
    snap = current.snapshot_by_id(snapshot_id)
    if snap is None:
        raise NotRebased(f"snapshot {snapshot_id} is no longer in the table")
    with _LISTS_LOCK:
        cached = _LISTS.get(snap.manifest_list)
    if cached is not None:
        return cached
    with io.new_input(snap.manifest_list).open() as stream:
        data = stream.read()
    meta, schema, records = decode_records(data, snap.manifest_list)
    at = _positions(schema.as_struct())[_PATH]
    listed = _ListFile(meta, data, frozenset(r[at] for r in records))
    _remember(snap.manifest_list, listed)
    return listed


def _positions(struct: Any) -> dict[int, int]:
    return {field.field_id: i for i, field in enumerate(struct.fields)}


def _check_new_manifest(snapshot_id: int, fields: Mapping[int, Any], roots: AllowedRoots,
                        io_properties: Mapping[str, str]) -> list[str]:
    """Check one of the snapshot's own manifests: ADDED data files of this snapshot with
    inherited sequence numbers and row ids, or (a manifest the client merged) EXISTING
    data files with the sequence numbers they had. The EXISTING files' paths."""
    path = fields[_PATH]
    if fields.get(_CONTENT, _DATA) != _DATA:
        raise NotRebased(f"manifest {path} holds delete files")
    _, schema, entries = decode_records(_client_bytes(
        path, f"snapshot {snapshot_id} manifest", roots, io_properties), path)
    struct = schema.as_struct()
    at = _positions(struct)
    file_at = _positions(struct.fields[at[_DATA_FILE]].field_type)
    existing: list[str] = []
    for e in entries:
        data_file = e[at[_DATA_FILE]]
        if _FILE_CONTENT in file_at and data_file[file_at[_FILE_CONTENT]] not in (None, _DATA):
            raise NotRebased(f"manifest {path} holds delete files")
        if e[at[_STATUS]] == _EXISTING:
            if _ENTRY_SEQ in at and e[at[_ENTRY_SEQ]] is None:
                raise NotRebased(f"manifest {path} holds existing files without their "
                                 "sequence numbers")
            existing.append(str(data_file[file_at[_FILE_PATH]]))
            continue
        if e[at[_STATUS]] != _ADDED or (_ENTRY_SEQ in at and e[at[_ENTRY_SEQ]] is not None) \
                or (_ENTRY_FILE_SEQ in at and e[at[_ENTRY_FILE_SEQ]] is not None):
            raise NotRebased(f"manifest {path} holds entries other than added files with "
                             "inherited sequence numbers, or files it merged")
        if e[at[_ENTRY_SNAP]] not in (None, snapshot_id):
            raise NotRebased(f"manifest {path} holds entries of another snapshot")
        if _FILE_FIRST_ROW_ID in file_at and data_file[file_at[_FILE_FIRST_ROW_ID]] is not None:
            raise NotRebased(f"manifest {path} holds added files with fixed row ids")
    return existing


def _replaced(io: Any, current: TableMetadata, inspected: Inspected,
              head: _ListFile | None) -> frozenset[str]:
    """The manifests of the asserted snapshot that the client's list no longer names:
    those it merged into its own (their files now EXISTING entries there). Reusing its
    manifests verbatim is exact only when each of them is still listed at the head (so
    every file it merged is still live there, and leaving it out of the rebased list
    drops nothing) and their live files are exactly its EXISTING entries (nothing lost,
    nothing twice). NotRebased otherwise: a commit since rewrote or merged them."""
    parent = _head_list(io, current, inspected.shape.asserted)
    replaced = (parent.paths if parent is not None else frozenset()) - inspected.carried
    if not replaced and not inspected.existing:
        return frozenset()
    held = {manifest: _live_files(io, manifest) for manifest in replaced}
    at_head = head.paths if head is not None else frozenset()
    gone = [m for m, files in held.items() if files and m not in at_head]
    if gone:  # (one with no live file, which pyiceberg leaves out, may be gone too)
        raise NotRebased(f"{len(gone)} manifest(s) it merged are no longer listed at the "
                         "head (a commit since rewrote or merged them), so its merged "
                         "files may no longer be live there")
    live = tuple(sorted(p for files in held.values() for p in files))
    if live != inspected.existing:
        raise NotRebased("its merged manifests do not hold exactly the live files of the "
                         "manifests they replace")
    return frozenset(replaced)


_LIVE: OrderedDict[str, tuple[str, ...]] = OrderedDict()
_LIVE_KEPT = 256


def _live_files(io: Any, manifest: str) -> tuple[str, ...]:
    """The data files a committed manifest holds live (ADDED or EXISTING entries); cached:
    manifests never change."""
    with _LISTS_LOCK:
        cached = _LIVE.get(manifest)
    if cached is not None:
        return cached
    _, schema, entries = read_records(io, manifest)
    struct = schema.as_struct()
    at = _positions(struct)
    file_at = _positions(struct.fields[at[_DATA_FILE]].field_type)
    live = tuple(str(e[at[_DATA_FILE]][file_at[_FILE_PATH]]) for e in entries
                 if e[at[_STATUS]] != _DELETED)
    with _LISTS_LOCK:
        _LIVE[manifest] = live
        while len(_LIVE) > _LIVE_KEPT:
            _LIVE.popitem(last=False)
    return live


def _assign(new: list[dict[int, Any]], sequence: int | None, current: TableMetadata,
            fmt_version: int, merged: frozenset[str] = frozenset()) -> int | None:
    """Sequence numbers and (v3) row ids of the new manifests; the snapshot's first row id.
    A merged manifest keeps the smallest sequence number of the files it holds."""
    first = None
    if fmt_version >= 3:
        first = getattr(current, "next_row_id", None) or 0
    next_id = first
    for fields in new:
        if sequence is not None:
            fields[_SEQ] = sequence
            kept = fields.get(_MIN_SEQ)
            fields[_MIN_SEQ] = min(int(kept), sequence) \
                if fields[_PATH] in merged and kept is not None else sequence
        if next_id is not None and fields.get(_CONTENT, _DATA) == _DATA:
            fields[_FIRST_ROW_ID] = next_id
            next_id += int(fields.get(_ADDED_ROWS) or 0) + int(fields.get(_EXISTING_ROWS) or 0)
    return first


def _by_id(record: Any, struct: Any) -> dict[int, Any]:
    return {field.field_id: _plain(record[i], field.field_type)
            for i, field in enumerate(struct.fields)}


def _plain(value: Any, field_type: Any) -> Any:
    from pyiceberg.types import ListType, StructType

    if value is None:
        return None
    if isinstance(field_type, StructType):
        return _by_id(value, field_type)
    if isinstance(field_type, ListType) and isinstance(field_type.element_type, StructType):
        return [_by_id(v, field_type.element_type) for v in value]
    return value


def _list_location(current: TableMetadata, snapshot_id: int) -> str:
    """Under the table's metadata path, named for the snapshot and unique: the server's
    own file, never one a client may have written."""
    base = posixpath.dirname(iceberg_files.new_metadata_path(current, 0))
    return f"{base}/snap-{snapshot_id}-rebased-{uuid.uuid4()}.avro"


class _Buffer(_io.BytesIO):
    """An output stream whose bytes survive close (pyiceberg's writer closes it)."""

    value = b""

    def close(self) -> None:
        self.value = self.getvalue()
        super().close()


class _MemoryOutput:
    """What pyiceberg's Avro writer needs of an OutputFile, in memory."""

    def __init__(self) -> None:
        self.buffer = _Buffer()

    def create(self, overwrite: bool = False) -> _Buffer:
        return self.buffer


def _write_list(location: str, fmt_version: int, new: list[dict[int, Any]],
                head: _ListFile | None, meta: dict[str, str],
                io_properties: Mapping[str, str], replaced: frozenset[str] = frozenset()
                ) -> None:
    """The rebased list: the new manifests, then the head's but those `replaced` (merged
    into a new one), whose blocks are copied as stored when the head's schema is the one
    written here and none is left out (else re-encoded)."""
    from pyiceberg.avro.file import AvroOutputFile
    from pyiceberg.manifest import MANIFEST_LIST_FILE_SCHEMAS
    from pyiceberg.utils.schema_conversion import AvroSchemaConversion

    schema = MANIFEST_LIST_FILE_SCHEMAS[fmt_version]
    struct = schema.as_struct()
    schema_json = json.dumps(AvroSchemaConversion().iceberg_to_avro(
        schema, schema_name="manifest_file"))
    records = [_record(struct, fields) for fields in new]
    copied: list[tuple[int, bytes]] = []
    if head is not None:
        if head.meta.get("avro.schema") == schema_json and not replaced:
            copied = raw_blocks(head.data)[1]
        else:
            _, head_schema, head_records = decode_records(head.data)
            kept = [_by_id(r, head_schema.as_struct()) for r in head_records]
            records += [_record(struct, f) for f in kept if f[_PATH] not in replaced]
    out = _MemoryOutput()
    with AvroOutputFile[Any](output_file=out, file_schema=schema,  # type: ignore[arg-type]
                             schema_name="manifest_file", metadata=meta) as writer:
        writer.write_block(records)
        for count, payload in copied:
            writer.encoder.write_int(count)
            writer.encoder.write_int(len(payload))
            writer.encoder.write(payload)
            writer.encoder.write(writer.sync_bytes)
    data = out.buffer.value
    iceberg_files.write_new_file(location, data, io_properties)
    paths = frozenset(f[_PATH] for f in new) | (
        head.paths - replaced if head is not None else frozenset())
    _remember(location, _ListFile({**meta, "avro.schema": schema_json}, data, paths))


def _record(struct: Any, fields: Mapping[int, Any]) -> Record:
    """`fields` (by field id) as a record of `struct`, nested structs included."""
    from pyiceberg.types import ListType, StructType

    values = []
    for field in struct.fields:
        value = fields.get(field.field_id)
        field_type = field.field_type
        if isinstance(field_type, ListType) and isinstance(field_type.element_type, StructType) \
                and value is not None:
            value = [_record(field_type.element_type, v) for v in value]
        elif isinstance(field_type, StructType) and isinstance(value, dict):
            value = _record(field_type, value)
        values.append(value)
    return Record(*values)
