"""The conflict rules of a content-aware Iceberg merge, cheapest first.

Each `check_*` adds at most one `Conflict` per rule (the planner keeps the first and lists
the others in ``details["also"]``) and the metadata updates the replay must carry; the rules
read the three states and the live-file diffs, and write nothing.
"""

from __future__ import annotations

import bisect
from typing import Any

from pyiceberg.expressions import BooleanExpression, Or
from pyiceberg.expressions.parser import parse as parse_expression
from pyiceberg.expressions.visitors import _InclusiveMetricsEvaluator
from pyiceberg.io import FileIO
from pyiceberg.manifest import DataFile, DataFileContent
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update import (
    AddPartitionSpecUpdate,
    AddSchemaUpdate,
    AddSortOrderUpdate,
    RemovePropertiesUpdate,
    SetCurrentSchemaUpdate,
    SetDefaultSortOrderUpdate,
    SetDefaultSpecUpdate,
    SetPropertiesUpdate,
    TableUpdate,
)

from spark_lakeversion.formats.iceberg import v3
from spark_lakeversion.formats.iceberg.codes import (
    CONCURRENT_APPEND_IN_READ_PARTITION,
    CONCURRENT_DELETE,
    CONCURRENT_REWRITE,
    EQUALITY_DELETE_CONFLICT,
    PROPERTY_CONFLICT,
    SCHEMA_CONFLICT,
    SPEC_CONFLICT,
)
from spark_lakeversion.formats.iceberg.merge.diff import (
    FileChange,
    PartitionKey,
    TableState,
    partition_key,
    position_delete_may_reference,
    position_delete_targets,
    referenced_data_file,
)
from spark_lakeversion.model import Conflict, ConflictType, Key
from spark_lakeversion.tableformat.merger import MergeContext

SUPPORTED_FORMAT_VERSIONS = (1, 2)

#: a writer may record the row filter of a delete/overwrite snapshot under this summary key
#: (pyiceberg: ``tbl.delete(f, snapshot_properties={DELETE_PREDICATE_PROPERTY: f})``); the
#: serializable check then ignores target appends whose column bounds cannot match it
DELETE_PREDICATE_PROPERTY = "lakeversion.delete-predicate"

ISOLATION_PROPERTIES = ("write.merge.isolation-level", "write.delete.isolation-level")
SERIALIZABLE = "serializable"
SNAPSHOT = "snapshot"


class Rules:
    """The rules, mixed into the planner: they read its states and record its conflicts."""

    key: Key
    io: FileIO
    context: MergeContext
    base: TableState
    target: TableState
    source: TableState
    conflicts: list[Conflict]
    updates: list[TableUpdate]
    statistics: dict[str, Any]

    def conflict(self, type: ConflictType, message: str, **details: Any) -> None:
        self.conflicts.append(Conflict(type, self.key, message, details))

    def bring_over(self, item: Any, existing: Any, add: Any, type: ConflictType,
                   differs: str, fields: list[str]) -> bool:
        """A source schema or spec the replay needs: added when the target has none with
        its id (`existing` is None), kept when it has the same; False (a conflict) when the
        id means something else on the target."""
        if existing is None:
            self.updates.append(add)
        elif existing != item:
            self.conflict(type, differs, fields=fields)
            return False
        return True

    # ---- rule 1: format -----------------------------------------------------------------
    def check_format(self) -> bool:
        versions = {name: s.metadata.format_version for name, s in
                    (("base", self.base), ("target", self.target), ("source", self.source))}
        if len(set(versions.values())) > 1:
            self.conflict(ConflictType.UNSUPPORTED,
                          "the table's format version differs between the sides "
                          + ", ".join(f"{k} v{v}" for k, v in versions.items())
                          + "; upgrade both branches to the same version first",
                          fields=["format-version"], format_versions=versions)
            return True
        version = versions["target"]
        why = v3.unsupported_merge_reason(versions.values())
        if why is None and version not in SUPPORTED_FORMAT_VERSIONS:
            why = f"content-aware merge supports format v1 and v2, not v{version}"
        if why is not None:
            self.conflict(ConflictType.UNSUPPORTED, why, fields=["format-version"],
                          format_versions=versions)
            return True
        return False

    # ---- rule 2: schema -----------------------------------------------------------------
    def check_schema(self) -> None:
        base, target, source = (s.metadata.schema() for s in
                                (self.base, self.target, self.source))
        source_changed = source != base or source.schema_id != base.schema_id
        target_changed = target != base or target.schema_id != base.schema_id
        self.statistics["schema_changed"] = {"source": source_changed, "target": target_changed}
        if not source_changed:
            return
        if target_changed:
            if target == source:
                return  # the same evolution on both sides
            names = sorted({f.name for f in target.fields} ^ {f.name for f in source.fields}
                           | {f.name for f in target.fields for g in source.fields
                              if f.field_id == g.field_id and f != g})
            self.conflict(SCHEMA_CONFLICT,
                          f"schema changed on both sides differently (target schema "
                          f"{target.schema_id}, source schema {source.schema_id})",
                          fields=names or [f.name for f in source.fields],
                          target_schema_id=target.schema_id, source_schema_id=source.schema_id)
            return
        known = {s.schema_id: s for s in self.target.metadata.schemas}
        for schema in self.source.metadata.schemas:
            if not self.bring_over(schema, known.get(schema.schema_id),
                                   AddSchemaUpdate(schema=schema), SCHEMA_CONFLICT,
                                   f"schema id {schema.schema_id} means different schemas on "
                                   "the two sides", [f.name for f in schema.fields]):
                return
        self.updates.append(SetCurrentSchemaUpdate(schema_id=source.schema_id))  # type: ignore[call-arg]

    # ---- rule 3: partition spec (and sort order) ----------------------------------------
    def check_spec_and_sort_order(self) -> None:
        base, target, source = (s.metadata.spec() for s in (self.base, self.target, self.source))
        source_changed = source != base
        target_changed = target != base
        self.statistics["spec_changed"] = {"source": source_changed, "target": target_changed}
        if target_changed:
            self.conflict(SPEC_CONFLICT,
                          f"the target changed the partition spec (spec {base.spec_id} -> "
                          f"{target.spec_id})" + (" and so did the source" if source_changed
                                                  else "; only a source-side change replays"),
                          fields=["partition-spec"], base_spec_id=base.spec_id,
                          target_spec_id=target.spec_id, source_spec_id=source.spec_id)
        elif source_changed:
            specs = {s.spec_id: s for s in self.target.metadata.partition_specs}
            for spec in self.source.metadata.partition_specs:
                if not self.bring_over(spec, specs.get(spec.spec_id),
                                       AddPartitionSpecUpdate(spec=spec),
                                       SPEC_CONFLICT,
                                       f"partition spec id {spec.spec_id} means different "
                                       "specs on the two sides", ["partition-spec"]):
                    return
            self.updates.append(SetDefaultSpecUpdate(spec_id=source.spec_id))  # type: ignore[call-arg]

        bo, to, so = (s.metadata.sort_order() for s in (self.base, self.target, self.source))
        source_changed = so != bo
        target_changed = to != bo
        self.statistics["sort_order_changed"] = {"source": source_changed,
                                                 "target": target_changed}
        if source_changed and target_changed and so != to:
            self.conflict(SPEC_CONFLICT,
                          f"sort order changed on both sides differently (target order "
                          f"{to.order_id}, source order {so.order_id})", fields=["sort-order"])
        elif source_changed and not target_changed:
            known_orders = {o.order_id: o for o in self.target.metadata.sort_orders}
            for order in self.source.metadata.sort_orders:
                if order.order_id not in known_orders:
                    self.updates.append(AddSortOrderUpdate(sort_order=order))  # type: ignore[call-arg]
                elif known_orders[order.order_id] != order:
                    self.conflict(SPEC_CONFLICT,
                                  f"sort order id {order.order_id} means different orders on "
                                  "the two sides", fields=["sort-order"])
                    return
            self.updates.append(
                SetDefaultSortOrderUpdate(sort_order_id=so.order_id))  # type: ignore[call-arg]

    # ---- rule 4: the same file rewritten on both sides ----------------------------------
    @staticmethod
    def _replaces(change: FileChange, removed: DataFile) -> bool:
        """A side replaced a file it removed if it added data in that file's partition."""
        key = partition_key(removed)
        return any(_may_overlap(partition_key(f), key) for f in change.added_data())

    def check_rewrites(self, src: FileChange, tgt: FileChange) -> None:
        both = sorted(set(src.removed) & set(tgt.removed))
        rewritten = [p for p in both
                     if self._replaces(src, src.removed[p].data_file)
                     or self._replaces(tgt, tgt.removed[p].data_file)]
        if rewritten:
            self.conflict(CONCURRENT_REWRITE,
                          f"{len(rewritten)} file(s) were removed on both sides and replaced on "
                          "at least one (rewrite, copy-on-write delete or compaction)",
                          files=rewritten)

    # ---- rule 5: the source depends on files the target no longer has -------------------
    def check_concurrent_deletes(self, src: FileChange, tgt: FileChange) -> None:
        # A file the source removes and the target removed too was decided by rule 4 (a
        # rewrite on either side conflicts, a plain double delete is fine), so what is left
        # here are the files the source's position deletes point at.
        # position deletes of the source that point at files the target removed
        target_removed_data = {f.file_path: f for f in tgt.removed_data()}
        pointed: set[str] = set()
        for entry in src.added_deletes():
            delete_file = entry.data_file
            if delete_file.content != DataFileContent.POSITION_DELETES:
                continue
            pointed |= self._pointed_at(delete_file, target_removed_data)
        missing = sorted(pointed)
        # target position deletes on files the source rewrote: those deletes would be lost
        source_removed_data = {f.file_path: f for f in src.removed_data()
                               if self._replaces(src, f)}
        lost: set[str] = set()
        for entry in tgt.added_deletes():
            if entry.data_file.content == DataFileContent.POSITION_DELETES:
                lost |= self._pointed_at(entry.data_file, source_removed_data)
        if missing or lost:
            parts = []
            if missing:
                parts.append(f"{len(missing)} file(s) the source removes or position-deletes "
                             "from are no longer live on the target")
            if lost:
                parts.append(f"the source rewrote {len(lost)} file(s) the target deleted "
                             "rows from")
            self.conflict(CONCURRENT_DELETE, "; ".join(parts),
                          files=sorted(set(missing) | lost))

    def _pointed_at(self, delete_file: DataFile, candidates: dict[str, DataFile]) -> set[str]:
        """Which of `candidates` a position-delete file references (metrics first)."""
        if not candidates:
            return set()
        single = referenced_data_file(delete_file)
        if single is not None:
            return {single} & set(candidates)
        key = partition_key(delete_file)
        possible = {p for p, f in candidates.items()
                    if _may_overlap(partition_key(f), key)
                    and position_delete_may_reference(delete_file, p)}
        if not possible:
            return set()
        try:
            return possible & position_delete_targets(self.io, delete_file)
        except Exception:  # noqa: BLE001 - unreadable: assume the worst
            return possible

    # ---- rule 6: serializable isolation -------------------------------------------------
    def isolation_level(self) -> str:
        override = self.context.options.get("isolation_level")
        if override:  # checked by IcebergContentMerger.check_options before the merge
            return str(override).strip().lower()
        levels = [self.target.metadata.properties.get(p) for p in ISOLATION_PROPERTIES]
        present = [str(v).strip().lower() for v in levels if v]
        if not present or SERIALIZABLE in present:
            return SERIALIZABLE
        return SNAPSHOT

    def check_read_partitions(self, src: FileChange, tgt: FileChange,
                              source_snapshots: list[Snapshot]) -> None:
        source_writes: list[PartitionKey] = sorted(
            {partition_key(f) for f in src.removed_data()}
            | {partition_key(e.data_file) for e in src.added_deletes()}, key=repr)
        if not source_writes:
            return
        predicate = self.source_delete_predicate(source_snapshots)
        evaluator = None
        if predicate is not None:
            try:
                evaluator = _InclusiveMetricsEvaluator(self.source.metadata.schema(), predicate)
            except Exception:  # noqa: BLE001 - unbindable predicate: stay conservative
                evaluator = None
        hits: set[str] = set()
        partitions: set[str] = set()
        for appended in tgt.added_data():
            key = partition_key(appended)
            overlapping = [w for w in source_writes if _may_overlap(w, key)]
            if not overlapping:
                continue
            if evaluator is not None and not evaluator.eval(appended):
                continue
            hits.add(appended.file_path)
            partitions.add(repr(key))
        if hits:
            self.conflict(CONCURRENT_APPEND_IN_READ_PARTITION,
                          f"under serializable isolation: the source deleted or overwrote rows "
                          f"in {len(partitions)} partition(s) where the target appended "
                          f"{len(hits)} file(s) since the common ancestor",
                          files=sorted(hits), partitions=sorted(partitions))

    def source_delete_predicate(self, snapshots: list[Snapshot]) -> BooleanExpression | None:
        """Or of the recorded filters of the source's deleting snapshots; None if any lacks one."""
        predicates: list[BooleanExpression] = []
        for snapshot in snapshots:
            summary = snapshot.summary
            operation = summary.operation.value if summary is not None else "overwrite"
            if operation == "append":
                continue
            text = summary.get(DELETE_PREDICATE_PROPERTY) if summary is not None else None
            if not text:
                return None
            try:
                predicates.append(parse_expression(str(text)))
            except Exception:  # noqa: BLE001 - unparseable: stay conservative
                return None
        if not predicates:
            return None
        combined = predicates[0]
        for p in predicates[1:]:
            combined = Or(combined, p)
        return combined

    # ---- rule 7: equality deletes -------------------------------------------------------
    def check_equality_deletes(self, src: FileChange, tgt: FileChange,
                               sequence_numbers: dict[str, int | None] | None) -> None:
        """Equality deletes the replay would apply to the wrong rows.

        The replay gives the source's files numbers above every target file: a source
        equality delete would delete rows the target appended to its partition, and, with
        source equality deletes, some source files get numbers below the target's own
        equality deletes. The other way round, a target equality delete never applies to a
        replayed source file: where the source rewrote or row-deleted existing rows in a
        partition the delete covers (copy-on-write carries the deleted row over; a
        merge-on-read update re-adds it, maybe elsewhere), the replay would bring the deleted
        row back, or settle a delete against an update for the source unseen. Those go down
        to rows (`row_merge.ROW_MERGEABLE`), which see each side's rows with its deletes."""
        source_eq = _equality_deletes(src)
        files = _covered(source_eq, tgt.added_data())
        if source_eq:
            files |= _covered(_equality_deletes(tgt), src.added_data())
        changed = list(src.removed_data()) + [
            e.data_file for e in src.added_deletes()
            if e.data_file.content != DataFileContent.EQUALITY_DELETES]
        reached = _covered(_equality_deletes(tgt), changed) if src.added_data() else set()
        if reached:
            files |= reached | {f.file_path for f in src.added_data()}
        if files:
            self.conflict(EQUALITY_DELETE_CONFLICT,
                          "equality deletes on one side cover rows the other side appended, "
                          "rewrote or deleted in the same partition", files=sorted(files))

    # ---- rule 8: table properties -------------------------------------------------------
    def check_properties(self) -> None:
        base = self.base.metadata.properties
        target = self.target.metadata.properties
        source = self.source.metadata.properties
        changed = {k for k in set(base) | set(source) if base.get(k) != source.get(k)}
        clashing = sorted(k for k in changed
                          if target.get(k) != base.get(k) and target.get(k) != source.get(k))
        self.statistics["properties_changed"] = sorted(changed)
        if clashing:
            self.conflict(PROPERTY_CONFLICT,
                          f"table properties changed on both sides to different values: "
                          f"{', '.join(clashing)}", fields=clashing,
                          values={k: {"base": base.get(k), "target": target.get(k),
                                      "source": source.get(k)} for k in clashing})
            return
        to_set = {k: source[k] for k in changed if k in source and target.get(k) != source[k]}
        to_remove = [k for k in changed if k not in source and k in target]
        if to_set:
            self.updates.append(SetPropertiesUpdate(updates=to_set))
        if to_remove:
            self.updates.append(RemovePropertiesUpdate(removals=sorted(to_remove)))

    # ---- sequence numbers ---------------------------------------------------------------
    def source_sequence_numbers(self, src: FileChange) -> dict[str, int | None] | None:
        """Data sequence numbers for replayed source files (None: inherit the merge's).

        Only the source's equality deletes care about order among the source's own files;
        without them every replayed file inherits the merge snapshot's number, which puts
        it after all of the target's deletes. With them, the source's relative order is
        compressed into the numbers just below the merge's. Returns None if that range
        would reach into the common ancestor's numbers.
        """
        if self.target.metadata.format_version < 2:
            return {}
        eq_seqs = sorted({e.sequence_number or 0 for e in src.added.values()
                          if e.data_file.content == DataFileContent.EQUALITY_DELETES})
        if not eq_seqs:
            return {}
        levels = len(eq_seqs)
        next_seq = self.target.metadata.next_sequence_number()
        floor = next_seq - levels
        if floor < getattr(self.base.metadata, "last_sequence_number", 0):
            return None
        mapped: dict[str, int | None] = {}
        for path, entry in src.added.items():
            seq = entry.sequence_number or 0
            if entry.data_file.content == DataFileContent.EQUALITY_DELETES:
                mapped[path] = floor + eq_seqs.index(seq) + 1
            else:
                mapped[path] = floor + bisect.bisect_right(eq_seqs, seq)
        return mapped


def _may_overlap(a: PartitionKey, b: PartitionKey) -> bool:
    """Same spec and partition, or specs that cannot be compared (assume they overlap)."""
    return a[0] != b[0] or a[1] == b[1]


def _equality_deletes(change: FileChange) -> list[DataFile]:
    return [e.data_file for e in change.added_deletes()
            if e.data_file.content == DataFileContent.EQUALITY_DELETES]


def _covered(deletes: list[DataFile], appended: list[DataFile]) -> set[str]:
    """Each equality-delete file whose partition `appended` files may share, with those
    files (paths)."""
    files: set[str] = set()
    for delete_file in deletes:
        key = partition_key(delete_file)
        overlapping = [f.file_path for f in appended if _may_overlap(partition_key(f), key)]
        if overlapping:
            files.add(delete_file.file_path)
            files.update(overlapping)
    return files
