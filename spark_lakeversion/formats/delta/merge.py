"""Content-aware merge of Delta tables changed on both sides, under Delta's own
optimistic-concurrency rules.

The source's net change since the common ancestor plays Delta's committing transaction and
the target's net change the transactions that won before it. Each side's change is a
live-file diff (files identified by absolute path across logs). The rules, checked most
specific first, give at most one conflict, typed after Delta's exception:

1. ProtocolChanged: the target changed the protocol (or both did, differently).
2. MetadataChanged: the target changed the schema, partitioning or configuration; or the
   source did while the target changed data.
3. ConcurrentDeleteDelete: both sides removed the same file.
4. ConcurrentDeleteRead: the target removed a file the source read (a file of a partition
   the source's non-blind writes touched; an unpartitioned table is one partition).
5. ConcurrentAppend: the target added files in a partition the source read. Under
   `WriteSerializable` (`delta.isolationLevel`'s default) only the target's non-blind
   writes count; under `Serializable` its blind appends too. The per-merge option
   ``isolation_level`` overrides the table property: ``serializable`` or ``snapshot``
   (= WriteSerializable, the weakest isolation Delta writes under).

A blind append (`isBlindAppend`, or delta-rs's WRITE in Append mode) reads nothing, so
appends on both sides always commute. When the only conflict is about files (3, 4 or 5),
the merge goes down to rows (`row_merge.py`): a clean row merge is one commit rewriting the
target's affected files once; rows both sides changed differently are a ROW_CONFLICT.
Past the server's row limit the row merge is planned for Spark and its results taken back
(`row_engine.py`: `MergeContext.plan_rows`, `row_results`).
When the rules pass, the source's net actions are replayed as ONE put-if-absent commit on
the target's log: `remove` actions in the target's own path strings, `add` actions naming
the source's files by the path the target's log writes for them (`log.add_path`: relative,
files of a branch directory merged into the table's own log are ``_branches/<b>/...``). No
data file is read or written, except by a row merge.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.errors import InvalidInput, ReferenceConflict
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.branching import preview_log, writable
from spark_lakeversion.formats.delta.codes import (
    DELTA_CONCURRENT_APPEND,
    DELTA_CONCURRENT_DELETE_DELETE,
    DELTA_CONCURRENT_DELETE_READ,
    DELTA_METADATA_CHANGED,
    DELTA_PROTOCOL_CHANGED,
    DELTA_TABLE,
)
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.row_engine import engine_outcome, engine_plan
from spark_lakeversion.formats.delta.row_merge import (
    ROW_MERGEABLE,
    SHARED_NEW_KEYS,
    CannotMergeRows,
    DeltaRowOutcome,
    merge_rows,
    new_keys_meet,
)
from spark_lakeversion.model import ROW_MERGE, Conflict, ConflictType, Content, GcState, Key
from spark_lakeversion.tableformat.merger import ContentMergePlan, ContentMerger, MergeContext

SERIALIZABLE = "Serializable"
WRITE_SERIALIZABLE = "WriteSerializable"
#: the merge option values shared with Iceberg merges, in Delta's terms
OPTION_LEVELS = {"serializable": SERIALIZABLE, "snapshot": WRITE_SERIALIZABLE}
ISOLATION_PROPERTY = "delta.isolationLevel"

#: metadata fields whose change is a MetadataChanged conflict
METADATA_FIELDS = ("schemaString", "partitionColumns", "configuration")


@dataclass
class SideChange:
    """One side's net change against the common ancestor."""

    state: log.LogState
    added: dict[str, log.DataFile]
    removed: dict[str, log.DataFile]  # as the ancestor's log names them
    blind: bool
    metadata_changed: bool
    protocol_changed: bool

    def statistics(self) -> dict[str, int]:
        return {"data_files_added": len(self.added), "data_files_removed": len(self.removed),
                "rows_added": sum(f.num_records or 0 for f in self.added.values()),
                "rows_removed": sum(f.num_records or 0 for f in self.removed.values())}

    def partitions(self) -> set[tuple[tuple[str, str | None], ...]]:
        return {_partition(f) for f in [*self.added.values(), *self.removed.values()]}


def _partition(f: log.DataFile) -> tuple[tuple[str, str | None], ...]:
    return tuple(sorted(f.partition.items()))


def _metadata_view(metadata: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(repr(metadata.get(k)) for k in METADATA_FIELDS)


def _blind(base: DeltaState, side: DeltaState, removed: bool,
           io: Mapping[str, str] | None) -> bool:
    """Whether every commit of `side` since the ancestor was a blind append."""
    if removed:
        return False
    if side.location == base.location:
        versions = range(base.version + 1, side.version + 1)
    else:  # a branch log: its version 0 is the branch point, no data change
        versions = range(1, side.version + 1)
    return all(log.is_blind_append(log.commit_info(v, side.location, io)) for v in versions)


def side_change(base: DeltaState, base_state: log.LogState, side: DeltaState,
                io: Mapping[str, str] | None = None) -> SideChange:
    state = log.read_state(side.location, side.version, io=io)
    added = {k: f for k, f in state.files.items() if k not in base_state.files}
    removed = {k: f for k, f in base_state.files.items() if k not in state.files}
    return SideChange(
        state, added, removed, _blind(base, side, bool(removed), io),
        _metadata_view(state.metadata) != _metadata_view(base_state.metadata),
        state.protocol != base_state.protocol)


@dataclass
class DeltaMergePlan(ContentMergePlan):
    key: Key
    conflicts: list[Conflict]
    statistics: dict[str, Any]
    target: DeltaState | None = None
    target_branch: str = ""
    actions: list[dict[str, Any]] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    #: a row-level merge: the target's files to remove and the rows to write
    rows: DeltaRowOutcome | None = None
    io: Mapping[str, str] = field(default_factory=dict)
    #: the source's files to add and the target's to remove, spelled at apply by the log
    #: the replay lands on (a new branch log names the target's files its own way)
    adds: list[log.DataFile] = field(default_factory=list)
    removes: list[log.DataFile] = field(default_factory=list)

    def apply(self, *, preview: bool = False) -> Content:
        """The replay on the target's log, or for a `preview` on a fresh side log
        (`branching.preview_log`): the table's own log only moves when the gate
        publishes."""
        assert self.target is not None and not self.conflicts
        if not self.actions and not self.adds and not self.removes and (
                self.rows is None or (not self.rows.removed and self.rows.rows is None
                                      and not self.rows.staged)):
            return self.target.content()
        out = preview_log(self.target, self.target_branch, self.io) if preview \
            else writable(self.target, self.target_branch, self.io)
        self.created.extend(out.created)
        version = out.state.version + 1
        at = out.state.location if out.forked else None
        actions = [*self.actions, *(f.remove_action(log_location=at) for f in self.removes),
                   *(f.add_action(log_location=out.state.location, data_change=True)
                     for f in self.adds)]
        if self.rows is not None:
            actions += self._row_actions(out.state, at)
        path = log.write_commit(out.state.location, version, actions, log.OP_MERGE,
                                self.parameters, io=self.io)
        if path is None:
            raise ReferenceConflict(f"the Delta log of {self.key} moved during the merge")
        self.created.append(path)
        return out.state.at(version).content()

    def _row_actions(self, state: DeltaState, at: str | None) -> list[dict[str, Any]]:
        """A row merge's removes (as the log written on names the files) and the adds of
        its rows, written now into that log's directory."""
        from spark_lakeversion.formats.delta.writes import write_rows

        assert self.rows is not None
        current = log.read_state(state.location, state.version, io=self.io)
        actions = [current.files[fid].remove_action(log_location=at)
                   for fid in sorted(self.rows.removed)]
        if self.rows.rows is not None:
            adds, written, size = write_rows(state, self.rows.rows.tables(), self.io)
            self.created.extend(written)
            actions += adds
            self.statistics[ROW_MERGE]["bytes_written"] = size
        if self.rows.staged:  # an engine's files: referenced, never in `created`
            from spark_lakeversion.formats.delta.row_engine import staged_add_actions

            actions += staged_add_actions(self.rows.staged, self.rows.staged_schema,
                                          state.location, current.partition_columns,
                                          int(time.time() * 1000))
        return actions

    @property
    def client_files(self) -> list[str]:
        """Data files an engine outside the server wrote (never deleted here)."""
        return [f.file_path for f in self.rows.staged] if self.rows is not None else []

    def fence(self, state: GcState) -> None:
        """The engine's files this version adds, checked against gc's cutoff
        (`gc.fence`): never collected between their writing and this commit."""
        files = self.client_files
        if files:
            from spark_lakeversion.gc.fence import FilesMayBeCollected, check_written, refusal

            problems = check_written(state, files, self.io)
            if problems:
                raise FilesMayBeCollected(refusal(problems, state))

    def discard(self) -> None:
        log.delete_created(reversed(self.created), self.io)
        self.created.clear()


class DeltaContentMerger(ContentMerger):
    content_type = DELTA_TABLE

    def check_options(self, options: Mapping[str, Any]) -> None:
        level = options.get("isolation_level")
        if level is not None and str(level).strip().lower() not in OPTION_LEVELS:
            raise InvalidInput(f"isolation_level must be {' or '.join(OPTION_LEVELS)}, "
                               f"not {level!r}")

    def plan(self, key: Key, base: Content, target: Content, source: Content,
             context: MergeContext) -> DeltaMergePlan:
        try:
            b, t, s = (DeltaState.of(c, key) for c in (base, target, source))
            io = context.io_properties
            base_state = log.read_state(b.location, b.version, io=io)
            src = side_change(b, base_state, s, io)
            tgt = side_change(b, base_state, t, io)
        except InvalidInput as exc:  # a state whose log cannot be read: the table-level rule
            return DeltaMergePlan(key, [Conflict(
                ConflictType.VALUE_DIFFERS, key,
                f"{key} changed on both sides and its Delta logs cannot be compared: "
                f"{exc.message}")], {})
        isolation = self.isolation_level(tgt.state, context)
        statistics: dict[str, Any] = {
            "isolation_level": isolation,
            "source": {**src.statistics(), "blind_append": src.blind},
            "target": {**tgt.statistics(), "blind_append": tgt.blind},
        }
        conflict = self.check(key, src, tgt, isolation)
        if conflict is None and src.added and tgt.added \
                and self.new_keys_meet(tgt.state, base, target, source, context):
            conflict = Conflict(ConflictType.UNSUPPORTED, key,
                                f"both sides of {key} added rows of one key and they cannot "
                                "be merged by rows here")
            return self.down_to_rows(key, conflict, base, target, source, t, context,
                                     isolation == SERIALIZABLE or not tgt.blind, statistics,
                                     SHARED_NEW_KEYS)
        if conflict is not None and conflict.type in ROW_MERGEABLE:
            return self.down_to_rows(key, conflict, base, target, source, t, context,
                                     isolation == SERIALIZABLE or not tgt.blind, statistics)
        if conflict is not None:
            return DeltaMergePlan(key, [conflict], statistics)
        actions: list[dict[str, Any]] = []
        if src.protocol_changed and not tgt.protocol_changed:
            actions.append({"protocol": src.state.protocol})
        if src.metadata_changed:
            actions.append({"metaData": src.state.metadata})
        removes = [tgt.state.files[k] for k in src.removed if k in tgt.state.files]
        adds = [f for k, f in src.added.items() if k not in tgt.state.files]
        statistics["replay"] = {
            "data_files_added": len(adds), "files_removed": len(removes),
            "rows_added": sum(f.num_records or 0 for f in adds),
            "metadata_changes": int(src.metadata_changed) + int(src.protocol_changed),
            "data_bytes_written": 0,
        }
        parameters = {"source": context.source, "sourceCommit": context.source_commit,
                      "sourceLocation": s.location, "sourceVersion": str(s.version),
                      "target": context.target, "isolationLevel": isolation}
        return DeltaMergePlan(key, [], statistics, t, context.target, actions, parameters,
                              io=io, adds=adds, removes=removes)

    @staticmethod
    def new_keys_meet(state: log.LogState, base: Content, target: Content, source: Content,
                      context: MergeContext) -> bool:
        """Both sides added rows of one key (keyed tables): replaying both sides' files
        would leave the key twice, so the merge goes down to rows."""
        from spark_lakeversion.formats.delta.rows import IDENTIFIER_PROPERTY

        if not state.configuration.get(IDENTIFIER_PROPERTY, "").strip():
            return False
        try:
            return new_keys_meet(base, target, source, context.io_properties,
                                 context.row_memory_bytes)
        except CannotMergeRows:
            return False

    @staticmethod
    def down_to_rows(key: Key, conflict: Conflict, base: Content, target: Content,
                     source: Content, state: DeltaState, context: MergeContext,
                     serializable: bool, statistics: dict[str, Any],
                     label: str | None = None) -> DeltaMergePlan:
        """The row-level merge behind a file-level conflict (or `label`: why files that
        commute went down to rows); the conflict stands when the files cannot go down to
        rows."""
        settled = [label or conflict.type.value]
        resolution = context.options.get("row_conflicts")
        engine_rows = context.row_results.get(key)
        try:
            if context.plan_rows:  # planned for Spark, not run: the conflict stands
                plan = engine_plan(key, base, target, source, context, resolution=resolution,
                                   serializable=serializable)
                statistics[ROW_MERGE] = {"file_conflicts": settled, "engine": "spark",
                                         "plan": plan}
                return DeltaMergePlan(key, [conflict], statistics)
            if engine_rows is not None:
                outcome = engine_outcome(key, base, target, source, context, engine_rows,
                                         resolution=resolution, serializable=serializable)
            else:
                outcome = merge_rows(key, base, target, source, context.io_properties,
                                     resolution=resolution, serializable=serializable,
                                     memory_bytes=context.row_memory_bytes,
                                     max_bytes=context.row_merge_bytes)
        except CannotMergeRows as exc:
            statistics[ROW_MERGE] = {"file_conflicts": settled, "not_merged": str(exc),
                                          "over_limit": exc.over_limit}
            return DeltaMergePlan(key, [conflict], statistics)
        statistics[ROW_MERGE] = {"file_conflicts": settled, **outcome.statistics}
        if outcome.conflicts:
            return DeltaMergePlan(key, outcome.conflicts, statistics)
        parameters = {"source": context.source, "sourceCommit": context.source_commit,
                      "target": context.target, "rowMerge": "true"}
        return DeltaMergePlan(key, [], statistics, state, context.target, [], parameters,
                              rows=outcome, io=dict(context.io_properties))

    @staticmethod
    def isolation_level(target: log.LogState, context: MergeContext) -> str:
        override = context.options.get("isolation_level")
        if override:
            return OPTION_LEVELS[str(override).strip().lower()]
        value = target.configuration.get(ISOLATION_PROPERTY)
        return SERIALIZABLE if value and value.strip() == SERIALIZABLE else WRITE_SERIALIZABLE

    @staticmethod
    def check(key: Key, src: SideChange, tgt: SideChange, isolation: str) -> Conflict | None:
        if tgt.protocol_changed and src.state.protocol != tgt.state.protocol:
            return Conflict(DELTA_PROTOCOL_CHANGED, key,
                            f"{key}: the target changed the Delta protocol since the source "
                            "branched")
        if tgt.metadata_changed and _metadata_view(src.state.metadata) != _metadata_view(
                tgt.state.metadata):
            return Conflict(DELTA_METADATA_CHANGED, key,
                            f"{key}: the target changed the table's schema, partitioning or "
                            "configuration since the source branched")
        if src.metadata_changed and (tgt.added or tgt.removed):
            return Conflict(DELTA_METADATA_CHANGED, key,
                            f"{key}: the source changed the table's schema, partitioning or "
                            "configuration while the target changed its data")
        both = sorted(set(src.removed) & set(tgt.removed))
        if both:
            return Conflict(DELTA_CONCURRENT_DELETE_DELETE, key,
                            f"{key}: both sides removed the same {len(both)} file(s)",
                            {"files": both[:20]})
        read = set() if src.blind else src.partitions()
        whole = not src.state.partition_columns
        read_files = [k for k, f in tgt.removed.items()
                      if not src.blind and (whole or _partition(f) in read)]
        if read_files:
            return Conflict(DELTA_CONCURRENT_DELETE_READ, key,
                            f"{key}: the target removed {len(read_files)} file(s) the "
                            "source read", {"files": sorted(read_files)[:20]})
        if not src.blind and (isolation == SERIALIZABLE or not tgt.blind):
            appended = [k for k, f in tgt.added.items() if whole or _partition(f) in read]
            if appended:
                return Conflict(DELTA_CONCURRENT_APPEND, key,
                                f"{key}: the target added {len(appended)} file(s) in "
                                f"partitions the source read ({isolation})",
                                {"files": sorted(appended)[:20]})
        return None
