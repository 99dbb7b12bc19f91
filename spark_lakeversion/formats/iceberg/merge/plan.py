"""Content-aware merge of Iceberg tables changed on both sides of a store merge.

Each side's net change against the common ancestor's metadata comes from a live-file
diff (`diff.py`). If the two changes commute (`rules.py`), the source's change is
replayed onto the target's current metadata as ONE new snapshot that reuses the source's
DataFile / delete-file entries as they are (`write.py`: no data file is read or rewritten).
Otherwise the plan carries exactly one `Conflict`: the first failing rule, in the issue's
order (cheapest first): UNSUPPORTED, SCHEMA_CONFLICT, SPEC_CONFLICT, CONCURRENT_REWRITE,
CONCURRENT_DELETE, CONCURRENT_APPEND_IN_READ_PARTITION, EQUALITY_DELETE_CONFLICT,
PROPERTY_CONFLICT. Later rules that also fail are listed in ``details["also"]``.

When the only failing rules are about rows both sides changed (`row_merge.ROW_MERGEABLE`:
files both sides rewrote or deleted from, an equality delete over the other side's changes),
the merge goes down to rows for the files the sides changed (`row_merge.py`): a clean row
merge replaces the conflict by a snapshot that rewrites the target's affected files once;
rows both sides changed differently are a ROW_CONFLICT (or settled by ``row_conflicts``).

The merge engine finds `IcebergContentMerger` through the Iceberg `TableFormat`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.io import FileIO
from pyiceberg.manifest import (
    DataFileContent,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
)
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update import TableUpdate

from spark_lakeversion.errors import ConflictError, InvalidInput
from spark_lakeversion.formats.iceberg import content as iceberg_format
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.formats.iceberg.files import file_io
from spark_lakeversion.formats.iceberg.merge.diff import (
    FileChange,
    ManifestReader,
    TableState,
    live_file_diff,
    load_state,
    position_delete_targets,
)
from spark_lakeversion.formats.iceberg.merge.row_engine import engine_outcome, engine_plan
from spark_lakeversion.formats.iceberg.merge.row_merge import (
    ROW_MERGEABLE,
    CannotMergeRows,
    RowOutcome,
    merge_rows,
    new_keys_meet,
)
from spark_lakeversion.formats.iceberg.merge.rules import SERIALIZABLE, SNAPSHOT, Rules
from spark_lakeversion.formats.iceberg.merge.write import (
    ReplayInput,
    discard_files,
    write_replay,
)
from spark_lakeversion.model import ROW_MERGE, Conflict, ConflictType, Content, GcState, Key
from spark_lakeversion.tableformat.merger import ContentMergePlan, ContentMerger, MergeContext

#: snapshot summary keys of a merge snapshot
SUMMARY_SOURCE_REF = "lakeversion.merge.source-ref"
SUMMARY_SOURCE_COMMIT = "lakeversion.merge.source-commit"
SUMMARY_SOURCE_SNAPSHOT_ID = "lakeversion.merge.source-snapshot-id"
SUMMARY_SOURCE_SNAPSHOT_IDS = "lakeversion.merge.source-snapshot-ids"
SUMMARY_TARGET_REF = "lakeversion.merge.target-ref"
SUMMARY_TARGET_COMMIT = "lakeversion.merge.target-commit"

#: why a merge whose files commute went down to rows: both sides position-deleted rows of
#: one data file of a keyed table (`_Planner.keyed_deletes_meet`)
SHARED_POSITION_DELETES = "SHARED_POSITION_DELETES"
#: ... and when both sides added rows of one new key in files of their own
SHARED_NEW_KEYS = "SHARED_NEW_KEYS"

#: at most this many source snapshot ids are listed in the merge snapshot's summary
MAX_SUMMARY_SNAPSHOT_IDS = 1000

@dataclass
class IcebergMergePlan(ContentMergePlan):
    """A checked plan: conflicts (at most one) or everything needed to write the replay."""

    key: Key
    conflicts: list[Conflict]
    statistics: dict[str, Any]
    io: FileIO | None = None
    target_content: Content | None = None
    replay: ReplayInput | None = None
    written_files: list[str] = field(default_factory=list)
    #: data files an engine outside the server wrote (never deleted here)
    client_files: list[str] = field(default_factory=list)
    _result: Content | None = None

    def apply(self, *, preview: bool = False) -> Content:
        """Write manifests + metadata for the merge snapshot; idempotent per plan. A
        preview is written alike: a new metadata file no catalog reader sees until a ref
        points at it."""
        if self.conflicts:
            raise ConflictError(f"cannot apply a conflicting merge plan for {self.key}",
                                self.conflicts)
        if self._result is not None:
            return self._result
        assert self.target_content is not None
        if self.replay is None or self.io is None:
            self._result = self.target_content
            return self._result
        out = write_replay(self.io, self.replay)
        self.written_files = out.written_files
        if isinstance(self.statistics.get(ROW_MERGE), dict) and not self.client_files:
            self.statistics[ROW_MERGE]["bytes_written"] = out.data_bytes_written
        self._result = self.target_content.with_fields(
            **iceberg_format.iceberg_content(out.metadata, out.metadata_location).fields)
        return self._result

    def fence(self, state: GcState) -> None:
        """The engine's files this snapshot adds, checked against gc's cutoff
        (`gc.fence`): never collected between their writing and this commit."""
        files = self.client_files
        if files and self.io is not None:
            from spark_lakeversion.gc.fence import FilesMayBeCollected, check_written, refusal

            problems = check_written(state, files, self.io.properties)
            if problems:
                raise FilesMayBeCollected(refusal(problems, state))

    def discard(self) -> None:
        """Delete what `apply()` wrote, when the engine's compare-and-swap lost the race."""
        if self.io is not None and self.written_files:
            discard_files(self.io, self.written_files)
        self.written_files = []
        self._result = None


class IcebergContentMerger(ContentMerger):
    """Plans Iceberg content merges; files are opened with the FileIO properties the merge
    engine hands in (`MergeContext.io_properties`: the server's), over `io_properties`."""

    content_type = ICEBERG_TABLE

    def __init__(self, io_properties: dict[str, str] | None = None) -> None:
        self.io_properties = dict(io_properties or {})

    def check_options(self, options: Mapping[str, Any]) -> None:
        level = options.get("isolation_level")
        if level is not None and str(level).strip().lower() not in (SERIALIZABLE, SNAPSHOT):
            raise InvalidInput(f"isolation_level must be {SERIALIZABLE} or {SNAPSHOT}, "
                               f"not {level!r}")

    def plan(self, key: Key, base: Content, target: Content, source: Content,
             context: MergeContext) -> IcebergMergePlan:
        props = {**self.io_properties, **context.io_properties}
        io = file_io(str(target.fields["metadata_location"]), props)
        return _Planner(key, io, context, load_state(base, io), load_state(target, io),
                        load_state(source, io)).plan()


class _Planner(Rules):
    """One planning run; holds the three states and the conflicts found so far."""

    def __init__(self, key: Key, io: FileIO, context: MergeContext, base: TableState,
                 target: TableState, source: TableState) -> None:
        self.key = key
        self.io = io
        self.context = context
        self.base, self.target, self.source = base, target, source
        self.conflicts: list[Conflict] = []
        self.updates: list[TableUpdate] = []
        self.statistics: dict[str, Any] = {}

    # ---- helpers ------------------------------------------------------------------------
    def result(self, replay: ReplayInput | None = None) -> IcebergMergePlan:
        conflicts = self.conflicts[:1]
        if len(self.conflicts) > 1:
            first = self.conflicts[0]
            conflicts = [Conflict(first.type, first.key, first.message,
                                  {**first.details,
                                   "also": [c.type.value for c in self.conflicts[1:]]})]
        return IcebergMergePlan(self.key, conflicts, self.statistics, self.io,
                                self.target.content, None if conflicts else replay)

    # ---- the plan -----------------------------------------------------------------------
    def plan(self) -> IcebergMergePlan:
        if self.check_format():
            return self.result()
        self.check_schema()
        self.check_spec_and_sort_order()
        reader = ManifestReader(self.io)
        src = live_file_diff(reader, self.base.snapshot, self.source.snapshot)
        tgt = live_file_diff(reader, self.base.snapshot, self.target.snapshot)
        source_snapshots = self.source_only_snapshots()
        isolation = self.isolation_level()
        self.statistics.update({
            "format_version": self.target.metadata.format_version,
            "isolation_level": isolation,
            "source": {**src.statistics(), "snapshots": len(source_snapshots)},
            "target": tgt.statistics(),
            "manifests_read": reader.manifests_read,
        })
        self.check_rewrites(src, tgt)
        self.check_concurrent_deletes(src, tgt)
        if isolation == SERIALIZABLE:
            self.check_read_partitions(src, tgt, source_snapshots)
        sequence_numbers = self.source_sequence_numbers(src)
        self.check_equality_deletes(src, tgt, sequence_numbers)
        self.check_properties()
        # only replaying the source's files needs the room; a row merge replays none
        no_room = None if sequence_numbers is not None else Conflict(
            ConflictType.UNSUPPORTED, self.key,
            "the source's equality deletes interleave with its appends more often than the "
            "target's sequence numbers leave room for",
            {"files": [e.data_file.file_path for e in src.added_deletes()]})
        label = SHARED_POSITION_DELETES
        rows = bool(self.conflicts) and all(c.type in ROW_MERGEABLE for c in self.conflicts)
        if not self.conflicts and self.keyed_deletes_meet(src, tgt):
            rows = True
        elif not self.conflicts and self.keyed_inserts_meet(src, tgt):
            rows, label = True, SHARED_NEW_KEYS
        outcome = None
        if rows:
            outcome = self.down_to_rows(reader, src, tgt, source_snapshots, isolation, label)
            if outcome is None and label == SHARED_NEW_KEYS:  # replaying would duplicate keys
                self.conflict(ConflictType.UNSUPPORTED,
                              "both sides added rows of one key and they cannot be merged "
                              "by rows here: " + self.statistics[ROW_MERGE].get(
                                  "not_merged", "their row merge is planned for Spark"))
            if outcome is not None:
                self.conflicts = outcome.conflicts
                if not self.conflicts:
                    planned = self.result(self.build_row_replay(reader, outcome,
                                                                source_snapshots))
                    planned.client_files = [f.file_path for f in outcome.added_files]
                    return planned
        if no_room is not None and outcome is None:  # the files would be replayed
            self.conflicts.append(no_room)
        if self.conflicts:
            return self.result()
        return self.result(self.build_replay(reader, src, tgt, source_snapshots,
                                             sequence_numbers or {}))

    # ---- down to rows ---------------------------------------------------------------------
    def down_to_rows(self, reader: ManifestReader, src: FileChange, tgt: FileChange,
                     source_snapshots: list[Snapshot], isolation: str,
                     label: str = SHARED_POSITION_DELETES) -> RowOutcome | None:
        """The row-level merge of the files both sides changed; None when the region
        cannot go down to rows (the reason is in the statistics; the conflict stands).
        `label` names why a merge without file-level conflicts went down to rows."""
        settled = sorted({c.type.value for c in self.conflicts}) or [label]
        resolution = self.context.options.get("row_conflicts")
        serializable = isolation == SERIALIZABLE
        engine_rows = self.context.row_results.get(self.key)
        try:
            if self.context.plan_rows:  # planned for Spark, not run: the conflict stands
                plan = engine_plan(self.key, self.base, self.target, self.source,
                                   self.context, resolution=resolution,
                                   serializable=serializable,
                                   source_predicate=self.source_delete_predicate(
                                       source_snapshots))
                self.statistics[ROW_MERGE] = {"file_conflicts": settled, "engine": "spark",
                                              "plan": plan}
                return None
            if engine_rows is not None:
                outcome = engine_outcome(self.key, self.io, self.base, self.target,
                                         self.source, self.context, engine_rows,
                                         resolution=resolution, serializable=serializable)
                self.statistics[ROW_MERGE] = {"file_conflicts": settled,
                                              **outcome.statistics}
                return outcome
            outcome = merge_rows(
                self.key, self.base, self.target, self.source, self.io.properties,
                resolution=self.context.options.get("row_conflicts"),
                serializable=isolation == SERIALIZABLE,
                source_predicate=self.source_delete_predicate(source_snapshots),
                memory_bytes=self.context.row_memory_bytes,
                max_bytes=self.context.row_merge_bytes)
        except CannotMergeRows as exc:
            self.statistics[ROW_MERGE] = {"file_conflicts": settled, "not_merged": str(exc),
                                          "over_limit": exc.over_limit}
            return None
        self.statistics[ROW_MERGE] = {"file_conflicts": settled, **outcome.statistics}
        return outcome

    def keyed_inserts_meet(self, src: FileChange, tgt: FileChange) -> bool:
        """Both sides added data files to a table with identifier fields and rows of one
        key are in both: replaying the files would leave the key twice; the row merge takes
        it once (same row) or reports the clash (`INSERT_INSERT`). Reads both sides' added
        files (the change), never the files they share."""
        if not self.target.metadata.schema().identifier_field_ids \
                or not src.added_data() or not tgt.added_data():
            return False
        try:
            return new_keys_meet(self.base, self.target, self.source, self.io.properties,
                                 self.context.row_memory_bytes)
        except CannotMergeRows:
            return False

    def keyed_deletes_meet(self, src: FileChange, tgt: FileChange) -> bool:
        """Both sides added position deletes to one data file of a table with identifier
        fields: the files commute, the rows may not (a delete against an update, or two
        updates of one key, would replay as a lost update or a duplicate key)."""
        if not self.target.metadata.schema().identifier_field_ids:
            return False
        sides = []
        for change in (src, tgt):
            pointed: set[str] = set()
            for entry in change.added_deletes():
                if entry.data_file.content == DataFileContent.POSITION_DELETES:
                    pointed |= position_delete_targets(self.io, entry.data_file)
            sides.append(pointed)
        return bool(sides[0] & sides[1])

    def build_row_replay(self, reader: ManifestReader, outcome: RowOutcome,
                         source_snapshots: list[Snapshot]) -> ReplayInput | None:
        """The snapshot of a row-level merge: the target's affected files out, the merged
        rows in (written by `apply`), the source's metadata changes; nothing else of the
        source is replayed (its data changes arrived as rows)."""
        removed = set(outcome.removed_paths)
        if not removed and outcome.rows is None and not outcome.added_files \
                and not self.updates:
            return None
        kept: list[ManifestFile] = []
        rewritten: list[tuple[ManifestFile, list[ManifestEntry]]] = []
        manifests = reader.manifests(self.target.snapshot)
        # the files to remove sit in manifests already read (diffs, the region's lookup)
        ordered = sorted(manifests, key=lambda m: not reader.is_read(m.manifest_path))
        missing = set(removed)
        for manifest in ordered:
            if missing and manifest.content == ManifestContent.DATA:
                live = reader.live_entries(manifest)
                paths = {e.data_file.file_path for e in live}
                if paths & removed:
                    rewritten.append((manifest, live))
                    missing -= paths
                    continue
            kept.append(manifest)
        if missing:  # pragma: no cover - the region's files are live on the target
            raise LookupError(f"{len(missing)} file(s) to rewrite are not live on the target")
        return ReplayInput(
            target_metadata=self.target.metadata,
            target_metadata_location=self.target.metadata_location,
            target_snapshot=self.target.snapshot,
            metadata_updates=list(self.updates),
            kept_manifests=kept,
            rewritten_manifests=rewritten,
            removed_paths=removed,
            summary_properties=self.summary(source_snapshots),
            avoid_snapshot_ids={s.snapshot_id for s in self.source.metadata.snapshots},
            new_rows=outcome.rows,
            added=[(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED,
                                            snapshot_id=None, data_file=f), None)
                   for f in outcome.added_files],
        )

    # ---- history (recorded, never used to compute the change) ---------------------------
    def source_only_snapshots(self) -> list[Snapshot]:
        """Source snapshots the target does not have, newest first (O(N))."""
        known = {s.snapshot_id for s in self.target.metadata.snapshots}
        if self.base.snapshot_id is not None:
            known.add(self.base.snapshot_id)
        result: list[Snapshot] = []
        snapshot = self.source.snapshot
        limit = len(self.source.metadata.snapshots)
        while snapshot is not None and snapshot.snapshot_id not in known and len(result) < limit:
            result.append(snapshot)
            parent = snapshot.parent_snapshot_id
            snapshot = self.source.metadata.snapshot_by_id(parent) if parent is not None else None
        return result

    # ---- the replay ---------------------------------------------------------------------
    def build_replay(self, reader: ManifestReader, src: FileChange, tgt: FileChange,
                     source_snapshots: list[Snapshot],
                     sequence_numbers: dict[str, int | None]) -> ReplayInput | None:
        # adds the target already has (both sides merged the same change) are skipped;
        # removals the target already did are no-ops
        added = [(entry, sequence_numbers.get(path)) for path, entry in src.added.items()
                 if path not in tgt.added]
        removed = {p for p in src.removed if p not in tgt.removed}
        target_manifests = reader.manifests(self.target.snapshot)
        kept: list[ManifestFile] = []
        rewritten: list[tuple[ManifestFile, list[ManifestEntry]]] = []
        for manifest in target_manifests:
            # a removed file was live in the ancestor in a manifest the source dropped; on the
            # target it sits in that same manifest or in one only the target has: both read
            if removed and reader.is_read(manifest.manifest_path):
                live = reader.live_entries(manifest)
                if any(e.data_file.file_path in removed for e in live):
                    rewritten.append((manifest, live))
                    continue
            kept.append(manifest)
        found = {e.data_file.file_path for _, live in rewritten for e in live}
        removed &= found  # anything else is not live on the target (rules 4/5 decided)
        self.statistics["replay"] = {
            "data_files_added": sum(1 for e, _ in added
                                    if e.data_file.content == DataFileContent.DATA),
            "delete_files_added": sum(1 for e, _ in added
                                      if e.data_file.content != DataFileContent.DATA),
            "files_removed": len(removed),
            "rows_added": sum(e.data_file.record_count for e, _ in added
                              if e.data_file.content == DataFileContent.DATA),
            "manifests_rewritten": len(rewritten),
            "metadata_changes": len(self.updates),
        }
        if not added and not removed and not self.updates:
            return None
        return ReplayInput(
            target_metadata=self.target.metadata,
            target_metadata_location=self.target.metadata_location,
            target_snapshot=self.target.snapshot,
            metadata_updates=list(self.updates),
            kept_manifests=kept,
            rewritten_manifests=rewritten,
            removed_paths=removed,
            added=added,
            summary_properties=self.summary(source_snapshots),
            avoid_snapshot_ids={s.snapshot_id for s in self.source.metadata.snapshots},
        )

    def summary(self, source_snapshots: list[Snapshot]) -> dict[str, str]:
        """The merge snapshot's summary properties: where it came from."""
        ids = [s.snapshot_id for s in source_snapshots]
        return {
            SUMMARY_SOURCE_REF: self.context.source,
            SUMMARY_SOURCE_COMMIT: self.context.source_commit,
            SUMMARY_TARGET_REF: self.context.target,
            SUMMARY_TARGET_COMMIT: self.context.target_commit,
            SUMMARY_SOURCE_SNAPSHOT_ID: str(self.source.snapshot_id),
            SUMMARY_SOURCE_SNAPSHOT_IDS: ",".join(
                str(i) for i in reversed(ids[:MAX_SUMMARY_SNAPSHOT_IDS])),
        }
