"""Format-agnostic three-way merge of key trees: merge, cherry-pick and revert in one rule.

Given a base, the target ("ours") and the source ("theirs"), only keys the source changed
since the base are looked at, so the cost follows the number of changed keys. For each:
- the target still has the base value   -> take the source's (APPLIED);
- the target made the same change       -> nothing to do (KEPT);
- behaviour FORCE / DROP                 -> source wins / target wins;
- both changed the same table (same id) -> ask the format's content merger (REPLAYED);
- otherwise                             -> a `Conflict` with its precise type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import (
    Conflict,
    ConflictType,
    Content,
    Key,
    KeyMergeDetail,
    MergeAction,
    MergeBehavior,
)
from spark_lakeversion.tableformat.merger import ContentMergePlan, MergeContext
from spark_lakeversion.versioning.content import content_merger_for

#: the changes a side made since the base: key -> (base content, side content)
Changes = dict[Key, tuple[Content | None, Content | None]]


@dataclass
class MergePlan:
    details: list[KeyMergeDetail] = field(default_factory=list)
    puts: dict[Key, Content | None] = field(default_factory=dict)  # None = delete
    content_plans: dict[Key, ContentMergePlan] = field(default_factory=dict)

    @property
    def conflicts(self) -> list[Conflict]:
        return [d.conflict for d in self.details if d.conflict is not None]

    def materialize(self, *, preview: bool = False) -> dict[Key, Content | None]:
        """Run the content mergers' writes; only called once the plan is conflict-free.
        `preview`: for a gated merge's preview (`ContentMergePlan.apply`)."""
        changes = dict(self.puts)
        for key, plan in self.content_plans.items():
            changes[key] = plan.apply(preview=True) if preview else plan.apply()
        return changes


def plan_merge(
    source_changes: Changes,
    target_values: Mapping[Key, Content],
    *,
    default_behavior: MergeBehavior = MergeBehavior.NORMAL,
    behaviors: Mapping[Key, MergeBehavior] | None = None,
    context: MergeContext | None = None,
    content_merging: bool = True,
) -> MergePlan:
    """Decide, key by key, what merging `source_changes` onto the target means."""
    plan = MergePlan()
    behaviors = behaviors or {}
    for key in sorted(source_changes):
        base, source = source_changes[key]
        target = target_values.get(key)
        behavior = behaviors.get(key, default_behavior)

        def detail(action: MergeAction, conflict: Conflict | None = None,
                   stats: dict[str, object] | None = None,
                   key: Key = key, behavior: MergeBehavior = behavior) -> None:
            plan.details.append(KeyMergeDetail(key, action, behavior, conflict, stats or {}))

        if behavior is MergeBehavior.DROP:
            detail(MergeAction.KEPT)
        elif target == base:
            plan.puts[key] = source
            detail(MergeAction.APPLIED)
        elif target == source:
            detail(MergeAction.KEPT)
        elif behavior is MergeBehavior.FORCE:
            plan.puts[key] = source
            detail(MergeAction.APPLIED)
        else:
            content_plan = _content_plan(key, base, target, source, context) \
                if content_merging else None
            if content_plan is None:
                detail(MergeAction.CONFLICT, classify_conflict(key, base, target, source))
            elif content_plan.conflicts:
                for conflict in content_plan.conflicts:
                    detail(MergeAction.CONFLICT, conflict, content_plan.statistics)
            else:
                plan.content_plans[key] = content_plan
                detail(MergeAction.REPLAYED, None, content_plan.statistics)
    return plan


def _content_plan(key: Key, base: Content | None, target: Content | None,
                  source: Content | None, context: MergeContext | None
                  ) -> ContentMergePlan | None:
    if base is None or target is None or source is None or context is None:
        return None
    if not (base.type == target.type == source.type and base.id == target.id == source.id):
        return None
    merger = content_merger_for(base.type)
    if merger is None:
        return None
    try:
        return merger.plan(key, base, target, source, context)
    except Exception as exc:  # noqa: BLE001 - a merge must answer with data, not a trace
        if isinstance(exc, InvalidInput) and key in context.row_results:
            raise  # an engine's results for this table are the caller's input: a 400
        return _FailedPlan(key, Conflict(
            ConflictType.UNSUPPORTED, key,
            f"cannot merge inside {key}: {type(exc).__name__}: {exc}",
            {"error": type(exc).__name__}))


class _FailedPlan(ContentMergePlan):
    """A merger that could not plan (unreadable metadata, say) reports one conflict."""

    def __init__(self, key: Key, conflict: Conflict) -> None:
        self.key = key
        self.conflicts = [conflict]
        self.statistics = {}

    def apply(self, *, preview: bool = False) -> Content:  # pragma: no cover - has a conflict
        raise AssertionError("a failed plan is never applied")


def classify_conflict(key: Key, base: Content | None, target: Content | None,
                      source: Content | None) -> Conflict:
    """The table-level conflict type for a key both sides changed differently."""
    if base is None and target is not None and source is not None:
        return Conflict(ConflictType.KEY_EXISTS, key,
                        f"{key} was created on both sides as different tables")
    if target is None:
        return Conflict(ConflictType.KEY_DOES_NOT_EXIST, key,
                        f"{key} was changed on the source but dropped on the target")
    if source is None:
        return Conflict(ConflictType.VALUE_DIFFERS, key,
                        f"{key} was dropped on the source but changed on the target")
    if target.id != source.id or (base is not None and base.id not in (target.id, source.id)):
        return Conflict(ConflictType.CONTENT_ID_DIFFERS, key,
                        f"{key} was dropped and re-created on one side "
                        f"(table id {target.id} on the target, {source.id} on the source)")
    return Conflict(ConflictType.VALUE_DIFFERS, key,
                    f"{key} was changed on both sides and cannot be merged automatically")

