"""The commit path of a table change: applying updates, the gc fence and the store commit.

A table commit validates the client's requirements against the table at the branch head,
applies the updates with pyiceberg's own `update_table_metadata`, writes the new metadata
file under the table location and commits it to the store with compare-and-swap on that
head: a concurrent change of the same table makes the store refuse (409, the client
retries), a change of another table does not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyiceberg.catalog import MetastoreCatalog
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    RemovePropertiesUpdate,
    SetPropertiesUpdate,
    TableUpdate,
    update_table_metadata,
)

from spark_lakeversion.errors import (
    CommitOutcomeUnknown,
    ConflictError,
    GcEpochChanged,
    InvalidInput,
    LakeVersionError,
    LocationNotAllowed,
)
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg import files as iceberg_files
from spark_lakeversion.formats.iceberg import v3
from spark_lakeversion.formats.iceberg.catalog.addressing import Address
from spark_lakeversion.formats.iceberg.catalog.errors import (
    GcRefused,
    StoreConflict,
    bad_request,
)
from spark_lakeversion.formats.iceberg.catalog.meta import CommitMeta
from spark_lakeversion.formats.iceberg.catalog.requests import PYICEBERG_INPUT_ERRORS
from spark_lakeversion.locations import OVERLAPS, Location, parse_location
from spark_lakeversion.model import Content, Key, Operation
from spark_lakeversion.versioning.interface import VersionStore

log = logging.getLogger("spark_lakeversion.formats.iceberg.catalog")

#: how often a create (table or view) writes its metadata file again when gc's fence
#: refused it: a gc run began between the write and the commit
CREATE_ATTEMPTS = 3


def describe_updates(updates: Sequence[TableUpdate]
                     ) -> tuple[str, dict[str, Any], list[tuple[str, Mapping[str, str]]]]:
    """Operation name and snapshot id of a commit (its last snapshot's), for its
    properties, and every new snapshot's operation and summary, for its default message
    (`describe_change`)."""
    snapshots = [u.snapshot for u in updates if isinstance(u, AddSnapshotUpdate)]
    described: list[tuple[str, Mapping[str, str]]] = [
        (s.summary.operation.value if s.summary else "snapshot",
         dict(s.summary.additional_properties) if s.summary else {})
        for s in snapshots]
    if snapshots:
        return described[-1][0], {"iceberg.snapshot-id": snapshots[-1].snapshot_id}, described
    actions = list(dict.fromkeys(u.action for u in updates))
    return (", ".join(actions) or "no-op"), {}, []


def _amount(summary: Mapping[str, str], rows: Sequence[str], files: Sequence[str],
            file_word: str = "file") -> str | None:
    """``1,000 rows (2 files)`` from the summary's counters (None when they are all 0)."""
    def total(names: Sequence[str]) -> int:
        return sum(int(summary.get(n, "0")) if str(summary.get(n, "0")).isdigit() else 0
                   for n in names)

    n_rows, n_files = total(rows), total(files)
    if not n_rows and not n_files:
        return None
    text = f"{n_rows:,} row{'' if n_rows == 1 else 's'}"
    return text + (f" ({n_files:,} {file_word}{'' if n_files == 1 else 's'})" if n_files
                   else "")


def describe_change(operation: str, key: Key,
                    snapshots: Sequence[tuple[str, Mapping[str, str]]]) -> str:
    """What a table commit did, from its snapshots' summaries: `append 1,000 rows (2 files)
    to db.t`, `delete 3 rows (1 file) from db.t`, `overwrite db.t: 5 rows (1 file) added, 3
    rows (1 file) removed`, joined by `; ` when one commit adds several snapshots; without
    a snapshot, the operation (or metadata updates) and the table."""
    if not snapshots:
        return f"{operation} {key}"
    return "; ".join(_describe_snapshot(op, key, summary) for op, summary in snapshots)


def _describe_snapshot(operation: str, key: Key, summary: Mapping[str, str]) -> str:
    added = _amount(summary, ["added-records"], ["added-data-files"])
    removed = _amount(summary, ["deleted-records"], ["deleted-data-files"])
    marked = _amount(summary, ["added-position-deletes", "added-equality-deletes"],
                     ["added-delete-files"], "delete file")
    if operation == "append" and added:
        return f"append {added} to {key}"
    if operation == "delete" and (removed or marked) and not added:
        return f"delete {removed or marked} from {key}"
    parts = [f"{added} added" if added else "", f"{removed} removed" if removed else "",
             f"{marked} deleted" if marked else ""]
    if any(parts):
        return f"{operation} {key}: " + ", ".join(p for p in parts if p)
    return f"{operation} {key}"


@dataclass
class Planned:
    """One table's change: its new metadata written, ready for the store commit."""

    key: Key
    content: Content
    metadata: TableMetadata
    location: str
    new_file: bool
    operation: str
    props: dict[str, Any]
    base: TableMetadata | None = None  # what the change applied to (None: a new table)
    description: str = ""  # the default commit message (`describe_change`)


def apply_updates(key: Key, base: TableMetadata | None, base_location: str | None,
                  updates: Sequence[TableUpdate], *, shallow: bool = False) -> TableMetadata:
    """The table's new metadata (a new table when `base` is None), or a 400 saying why not.
    `shallow`: share the base's unchanged parts instead of deep-copying them (the server
    never mutates metadata; a chain of group-committed appends applies many)."""
    updates = _known_removals(key, base, updates)
    try:
        if shallow and base is not None:
            metadata = _update_shallow(base, v3.prepare_updates(updates), base_location)
        else:
            metadata = update_table_metadata(
                base_metadata=(base if base is not None
                               else MetastoreCatalog._empty_table_metadata()),
                updates=v3.prepare_updates(updates), enforce_validation=base is None,
                metadata_location=base_location)
        metadata = v3.with_row_lineage(metadata, base, f"table {key}")
    except InvalidInput as exc:
        raise bad_request(f"cannot apply the updates to {key}: {exc.message}") from None
    except KeyError as exc:  # str() of a KeyError is only the quoted key
        raise bad_request(f"cannot apply the updates to {key}: they name "
                          f"{exc.args[0] if exc.args else '?'!r}, which the table does "
                          "not have") from None
    except PYICEBERG_INPUT_ERRORS as exc:
        why = str(exc) or ("they leave the table without a current schema, partition "
                           "spec or sort order" if isinstance(exc, StopIteration)
                           else type(exc).__name__)
        raise bad_request(f"cannot apply the updates to {key}: {why}") from None
    if base is None and not metadata.location:
        raise bad_request(f"creating {key} needs a set-location update")
    return metadata


def _update_shallow(base: TableMetadata, updates: Sequence[TableUpdate],
                    metadata_location: str | None) -> TableMetadata:
    """pyiceberg's `update_table_metadata` (same handlers, same checks) without its final
    deep copy of the whole metadata, which grows with every snapshot."""
    from pyiceberg.table.update import (
        _apply_table_update,
        _TableMetadataUpdateContext,
        _update_table_metadata_log,
    )

    context = _TableMetadataUpdateContext()
    metadata = base
    for update in updates:
        metadata = _apply_table_update(update, metadata, context)
    if context.has_changes():
        if metadata_location:
            metadata = _update_table_metadata_log(metadata, metadata_location,
                                                  base.last_updated_ms)
        if base.last_updated_ms == metadata.last_updated_ms:
            metadata = metadata.model_copy(update={"last_updated_ms": int(time.time() * 1000)})
    metadata.spec().check_compatible(metadata.schema())
    metadata.sort_order().check_compatible(metadata.schema())
    return metadata


def _known_removals(key: Key, base: TableMetadata | None,
                    updates: Sequence[TableUpdate]) -> list[TableUpdate]:
    """`updates` with `remove-properties` of absent properties left out, as Iceberg's
    reference catalog ignores them (pyiceberg would raise a bare KeyError). The properties
    the server adds to every table it serves (`SERVED_PROPERTIES`: `gc.enabled`) are the
    server's, not the table's: removing one is a 400 saying so."""
    properties = set(base.properties) if base is not None else set()
    out: list[TableUpdate] = []
    for update in updates:
        if isinstance(update, SetPropertiesUpdate):
            properties |= set(update.updates)
        elif isinstance(update, RemovePropertiesUpdate):
            for name in update.removals:
                if name in fmt.SERVED_PROPERTIES and name not in properties:
                    raise bad_request(
                        f"cannot remove property {name!r} of {key}: the server sets it on "
                        "every table it serves (every ref shares the table's files, so only "
                        "`lakeversion gc` deletes them); it is not stored in the table")
            removals = [n for n in update.removals if n in properties]
            properties -= set(removals)
            update = update.model_copy(update={"removals": removals})
        out.append(update)
    return out


def commit_to_store(store: VersionStore, addr: Address, operations: list[Operation],
                    meta: CommitMeta, message: str, properties: dict[str, Any],
                    written: Sequence[str] = (),
                    changes: Sequence[tuple[TableMetadata | None, TableMetadata]] = (),
                    io: Mapping[str, str] | None = None,
                    added: Sequence[tuple[Key, Content | None, Content]] = ()) -> str:
    """One store commit with compare-and-swap on the head the request read from.

    A commit that wrote files is fenced against gc (`spark_lakeversion.gc.fence`): the
    files it wrote and those the new snapshots of `changes` (base, new metadata) add
    must postdate gc's cutoff, and the store commits only if no gc run began since. A
    commit of states it did not write (`added`: key, state before, state; register) passes
    the format-neutral fence (`gc.fence.fence`) instead.
    A definite refusal removes the metadata files this request wrote; an unexpected
    failure leaves them (the commit may have landed) and surfaces as outcome-unknown.
    """
    branch = addr.branch()
    gc_epoch = fence_against_gc(store, written, changes, io) if written else None
    if added and gc_epoch is None:
        from spark_lakeversion.gc import fence as gc_fence

        try:
            gc_epoch = gc_fence.fence(store, added, io)
        except gc_fence.FilesMayBeCollected as exc:
            raise GcRefused(exc.message) from None
    try:
        commit = store.commit(
            branch, operations, message=meta.message_or(message), author=meta.author,
            properties=meta.properties_with(properties), expected_head=addr.commit_id,
            expected_gc_epoch=gc_epoch)
    except GcEpochChanged as exc:
        for location in written:
            iceberg_files.delete_created(location)
        raise GcRefused(f"commit to {branch} failed: {exc.message}") from None
    except ConflictError as exc:
        for location in written:
            iceberg_files.delete_created(location)
        raise StoreConflict(
            f"commit to {branch} failed, a concurrent change touched the same keys: "
            f"{exc.message}") from None
    except LakeVersionError:
        for location in written:
            iceberg_files.delete_created(location)
        raise
    except Exception as exc:  # the store commit failed in an unforeseen way: it may
        # have landed, so its files are published, not ours to delete
        log.exception("store commit to %s failed", branch)
        raise CommitOutcomeUnknown(
            f"the store commit to {branch} failed ({type(exc).__name__}); it may or may "
            "not have landed: reload the table before retrying") from None
    finally:
        for location in written:  # deleted above, or published: no longer ours
            iceberg_files.forget_created(location)
    return commit.id


def fence_against_gc(store: VersionStore, written: Sequence[str],
                     changes: Sequence[tuple[TableMetadata | None, TableMetadata]],
                     io: Mapping[str, str] | None = None) -> int:
    """The gc epoch the commit must land in, once its new files are checked (with the
    server's FileIO properties `io`)."""
    from spark_lakeversion.formats.iceberg.added import snapshot_files
    from spark_lakeversion.gc import fence as gc_fence

    state = store.gc_state()
    problems = gc_fence.check_written(state, written, io)
    if state.cutoff is not None:
        for base, metadata in changes:
            # the files its new snapshots add: the manifest list, the manifests not
            # carried over from the parent snapshot, and the files those manifests add
            added = snapshot_files(base, metadata, iceberg_files.file_io(metadata.location, io))
            problems += gc_fence.check_added(state, added, io)
    if problems:
        for location in written:
            iceberg_files.delete_created(location)
        raise GcRefused(gc_fence.refusal(problems, state))
    return state.epoch


def check_no_mutual_overlap(plans: Sequence[Planned]) -> None:
    """Tables changed by one transaction are checked against the store's index one by one;
    they must not overlap each other either."""
    seen: list[tuple[Location, str, Key]] = []
    for p in plans:
        location = parse_location(p.metadata.location, f"table {p.key} location")
        table_id = str(p.metadata.table_uuid)
        for other, other_id, other_key in seen:
            if other_id != table_id and location.overlaps(other):
                raise LocationNotAllowed(
                    f"table {p.key} location {p.metadata.location!r} {OVERLAPS} ({other_key} "
                    "in the same transaction): tables never share files")
        seen.append((location, table_id, p.key))

