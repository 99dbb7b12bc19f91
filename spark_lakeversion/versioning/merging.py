"""Three-way merge over any storage: fast-forward when it can, otherwise plan key by key
(`three_way.plan_merge`, content mergers for tables both sides changed), then commit with
two parents; re-planned when the target moved meanwhile. The merged tree is built from the
side that needs fewer edits. `MergePlanner` plans and writes; `Merging` runs a merge, and
hands one into a branch with checks, or a protected one, to its `MergeGate` (the gate of
`versioning.gates`, given to it by the wiring in `control.py`).

A table whose format keeps a branch's state in the table's own storage (a Delta table on
main's root log, which plain readers of the table read) keeps it there across every merge:
a merge that would fast-forward the branch onto a state of such a table stored elsewhere
makes a merge commit instead (`MergeResult.no_ff_reason` says why), and the merge's new
states are published through the formats (`PreviewPublisher`, `TableFormat.
publish_preview`) inside the committing transaction, once the target is known to be at the
planned head; what that wrote is undone if the commit then fails."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from spark_lakeversion.errors import (
    CommitOutcomeUnknown,
    ConflictError,
    GcEpochChanged,
    ReferenceConflict,
)
from spark_lakeversion.limits import Limits, check_commit
from spark_lakeversion.model import (
    Commit,
    Content,
    Key,
    KeyMergeDetail,
    MergeAction,
    MergeBehavior,
    MergeResult,
)
from spark_lakeversion.store.spi import Storage, StorageReader
from spark_lakeversion.tableformat.merger import MergeContext
from spark_lakeversion.versioning.commits import Commits, SameTree, check_properties
from spark_lakeversion.versioning.content import check_merger_options
from spark_lakeversion.versioning.history import History
from spark_lakeversion.versioning.interface import DEFAULT_AUTHOR
from spark_lakeversion.versioning.objects import Objects
from spark_lakeversion.versioning.options import MergeOptions
from spark_lakeversion.versioning.refs import MAX_CAS_ATTEMPTS, Refs
from spark_lakeversion.versioning.retention import Retention
from spark_lakeversion.versioning.reviews import approvals_error
from spark_lakeversion.versioning.three_way import Changes, MergePlan, plan_merge

#: merges changing at most this many tables are applied to the target's tree directly
SMALL_MERGE = 16


@dataclass(frozen=True)
class _MergeInput:
    """The three trees of a merge and what was read from them while planning."""

    base_root: str | None
    target_root: str | None
    source_root: str | None
    source_changes: Changes
    target_values: Mapping[Key, Content]


@dataclass(frozen=True)
class MergeStep:
    """One planning of a merge on the target's current head: `done` when it needs no write
    (nothing new, a dry run, conflicts of a dry run); else a fast-forward to `source_head`
    or a `plan` to commit on `target_head`."""

    source_head: str
    target_head: str
    done: MergeResult | None = None
    fast_forward: tuple[KeyMergeDetail, ...] = ()
    plan: MergePlan | None = None
    merge_input: _MergeInput | None = None
    base: str | None = None
    #: why a fast-forward asked for is a merge commit (`PreviewPublisher.no_fast_forward`)
    no_ff_reason: str | None = None

    def result(self, source: str, target: str, dry_run: bool, new_head: str | None
               ) -> MergeResult:
        details = self.fast_forward if self.plan is None else tuple(self.plan.details)
        return MergeResult(source, target, self.base, self.target_head, new_head,
                           self.plan is None, dry_run, details,
                           no_ff_reason=self.no_ff_reason)

    @property
    def changed_keys(self) -> list[Key]:
        if self.merge_input is not None:
            return sorted(self.merge_input.source_changes)
        return [d.key for d in self.fast_forward]

    def discard(self) -> None:
        """Drop the files of a plan that will never be committed."""
        if self.plan is not None:
            for content_plan in self.plan.content_plans.values():
                content_plan.discard()


class PreviewPublisher(Protocol):
    """How a merge's new table states are published on a branch (wired in `control.py`:
    each state's `TableFormat.publish_preview`): a gate's checked preview, and an ungated
    merge's states."""

    def publish(self, branch: str,
                changes: Mapping[Key, tuple[Content | None, Content | None]]
                ) -> tuple[dict[Key, Content], Callable[[], None]]:
        """For `changes` over `branch`'s head (key -> (before, after)): the states to
        publish in place of `after` where they differ, and the undo of what that wrote
        (called when the publish then fails)."""

    def no_fast_forward(self, branch: str,
                        changes: Mapping[Key, tuple[Content | None, Content | None]]
                        ) -> str | None:
        """Why `branch` cannot fast-forward onto these states (`publish` would write
        some anew), or None."""


def nothing_to_undo() -> None:
    """The undo of a publish that wrote nothing."""


def _unprotected(tx: StorageReader, branch: str) -> None:
    """An ungated merge lands only on a branch that is still unprotected (read in its
    transaction); else `ReferenceConflict`, and the merge is planned again, gated."""
    if branch in tx.protected_branches():
        raise ReferenceConflict(f"branch {branch!r} was protected during the merge")


class MergePlanner:
    """Plans a merge on the target's current head, and writes what it planned."""

    def __init__(self, storage: Storage, objects: Objects, refs: Refs, retention: Retention,
                 commits: Commits, history: History, io: Mapping[str, str],
                 limits: Limits, previews: PreviewPublisher) -> None:
        self.storage = storage
        self.previews = previews
        self.limits = limits
        self.objects = objects
        self.refs = refs
        self.retention = retention
        self.commits = commits
        self.history = history
        self.io = io

    def plan(self, source: str, target: str, options: MergeOptions) -> MergeStep:
        """Plan `source` into `target` on the target's current head; writes nothing."""
        default, per_key, dry_run = options.strategy, options.behaviors, options.dry_run
        source_head = self.refs.resolve(source).commit_id
        self.retention.require(None, [source_head])
        target_head = self.refs.get(target).head
        if options.expected_head and \
                self.objects.expand_hash(options.expected_head) != target_head:
            raise ReferenceConflict(f"branch {target!r} is not at the expected "
                                    f"head {options.expected_head}")
        base = self.history.merge_base_of(source_head, target_head)
        base_root = self.objects.root_of(base) if base else None

        def done(details: Sequence[KeyMergeDetail], new_head: str | None, ff: bool
                 ) -> MergeStep:
            return MergeStep(source_head, target_head, MergeResult(
                source, target, base, target_head, new_head, ff, dry_run, tuple(details)),
                base=base)

        if base == source_head:  # nothing new on the source
            return done([], None if dry_run else target_head, False)
        changes = self.objects.changes(base_root, self.objects.root_of(source_head))
        target_root = self.objects.root_of(target_head)
        context = MergeContext(source, source_head, target, target_head,
                               options.merger_options(), self.io,
                               self.limits.max_row_merge_bytes,
                               self.limits.max_row_memory_bytes, base,
                               options.plan_rows, options.row_results)
        no_ff = None
        if base == target_head and options.fast_forward and not any(
                per_key.get(k, default) is MergeBehavior.DROP for k in changes):
            # the target's values are the base's: `changes` is what a fast-forward brings
            no_ff = self.previews.no_fast_forward(target, changes)
            if no_ff is None:
                details = tuple(KeyMergeDetail(k, MergeAction.FAST_FORWARDED,
                                               per_key.get(k, default))
                                for k in sorted(changes))
                return MergeStep(source_head, target_head, fast_forward=details, base=base)
        target_values = self.objects.values(target_root, changes)
        plan = plan_merge(changes, target_values,
                          default_behavior=default, behaviors=per_key, context=context)
        if plan.conflicts:
            conflicted = done(plan.details, None, False)
            if dry_run:
                return conflicted
            assert conflicted.done is not None
            raise ConflictError(
                f"merging {source!r} into {target!r} has "
                f"{len(plan.conflicts)} conflict(s): "
                + "; ".join(c.message for c in plan.conflicts), result=conflicted.done)
        merge_input = _MergeInput(base_root, target_root, self.objects.root_of(source_head),
                                  changes, target_values)
        return MergeStep(source_head, target_head, plan=plan, merge_input=merge_input,
                         base=base, no_ff_reason=no_ff)

    def commit_step(self, step: MergeStep, source: str, target: str, options: MergeOptions,
                     props: Mapping[str, str], *, move: bool) -> str:
        """Write what `step` planned: the new head's id. With `move`, the target moves
        (compare-and-swap; `ReferenceConflict` when it moved); without, a fast-forward
        writes nothing and a merge commit is written on no ref (a merge preview). A move
        is an ungated merge: a target protected meanwhile is a `ReferenceConflict` (plan
        again, through the gate)."""
        if step.plan is None:
            if move:
                with self.storage.writing() as tx:
                    _unprotected(tx, target)
                    self.retention.require(tx, [step.source_head])
                    tx.move_branch(target, step.target_head, step.source_head,
                                   f"fast-forward from {source}"[:32])
            return step.source_head
        assert step.merge_input is not None
        msg = options.message or f"Merge {source} into {target}"
        merge_props = {"lakeversion.merge.source": source,
                       "lakeversion.merge.source-commit": step.source_head, **props}
        if options.row_results:  # rows computed outside the server, for the audit trail
            merge_props["lakeversion.merge.row-engine"] = "spark"
            merge_props["lakeversion.merge.row-engine-tables"] = ",".join(
                sorted(str(k) for k in options.row_results))[:1000]
        commit = self._commit_merge(target if move else None, step.target_head,
                                    step.merge_input.target_root,
                                    (step.target_head, step.source_head), step.plan,
                                    step.merge_input, options.author or DEFAULT_AUTHOR, msg,
                                    merge_props)
        return commit.id

    def _commit_merge(self, branch: str | None, head: str, head_root: str | None,
                      parents: tuple[str, ...], plan: MergePlan, merge_input: _MergeInput,
                      author: str, message: str, properties: Mapping[str, str]) -> Commit:
        # gc's fence: the files the content mergers write now (new manifests, data files a
        # row-level merge rewrote) are younger than any cutoff; the commit lands only if no
        # gc run began meanwhile, so none listed the store before they were reachable
        state = self.history.gc_state()
        epoch = state.epoch
        for content_plan in plan.content_plans.values():
            content_plan.fence(state)  # a client's files (an engine's row merge)
        changes = plan.materialize(preview=branch is None)  # a gated merge's preview
        undo: Callable[[], None] = nothing_to_undo
        try:
            with self.storage.writing() as tx:
                if branch is not None:
                    _unprotected(tx, branch)
                    if tx.heads().get(branch) != head:
                        raise ReferenceConflict(f"branch {branch!r} moved during the merge")
                Commits.check_gc_epoch(tx, epoch)
                self.retention.require(tx, parents[1:])
                if branch is not None:  # the target is at `head`: its formats publish
                    published, undo = self.previews.publish(branch, {
                        k: (merge_input.target_values.get(k), after)
                        for k, after in changes.items()})
                    changes = {**changes, **published}
                commit = self.commits.write(tx, branch, head, parents, head_root, changes,
                                            author, message, properties, "merge",
                                            self._cheaper_side(merge_input, changes))
        except CommitOutcomeUnknown:
            raise  # the commit may have landed: what it published must stay
        except GcEpochChanged:
            undo()
            for content_plan in plan.content_plans.values():
                content_plan.discard()
            raise
        except BaseException:
            undo()  # only what this publish wrote (a version of a table's own log)
            raise
        self.objects.written(commit)
        return commit

    def _cheaper_side(self, merge_input: _MergeInput, changes: Mapping[Key, Content | None]
                      ) -> SameTree | None:
        """Build the merged tree from the source's tree when that needs fewer edits.

        The merged tree is base + target's changes + `changes`. A branch that rewrote many
        tables merged into a target that moved a little costs a few edits on the source's
        tree instead of many on the target's: the cost follows the smaller side.
        """
        source = merge_input.source_changes
        if len(changes) <= SMALL_MERGE:
            return None
        target = self.objects.changes(merge_input.base_root, merge_input.target_root)
        on_source: dict[Key, Content | None] = {
            k: after for k, (_, after) in target.items() if k not in source}
        for key, (_, source_value) in source.items():
            final = changes[key] if key in changes else merge_input.target_values.get(key)
            if final != source_value:
                on_source[key] = final
        if len(on_source) >= len(changes):
            return None
        return merge_input.source_root, on_source


class MergeGate(Protocol):
    """What guards merges into a branch (`versioning.gates.gate.Gates`)."""

    def guards(self, branch: str) -> tuple[list[Any], bool]:
        """`branch`'s merge checks and whether it is protected (read together)."""

    def gated(self, checks: list[Any]) -> bool:
        """Whether these checks gate a merge (notifications alone do not)."""

    def gated_merge(self, source: str, target: str, options: MergeOptions,
                    props: dict[str, str], checks: list[Any]) -> MergeResult:
        """A merge into a branch with checks or a protected one."""

    def merged(self, checks: list[Any], source: str, target: str, step: MergeStep,
               new_head: str) -> None:
        """Told after an ungated merge landed (post-merge notifications)."""


class Merging:
    """`merge_with`: fast-forward or three-way merge, retried while the target moves; one
    the gate guards is the gate's."""

    def __init__(self, limits: Limits, refs: Refs, planner: MergePlanner, gate: MergeGate,
                 required_approvals: Callable[[str], int] = lambda _: 0) -> None:
        self.limits = limits
        self.refs = refs
        self.planner = planner
        self.gate = gate
        self.required_approvals = required_approvals

    def merge_with(self, source: str, target: str, options: MergeOptions, *,
                   approved: bool = False) -> MergeResult:
        """`approved`: the merge of a merge request whose approvals were counted
        (`versioning.reviews`); any other merge into a branch requiring approvals is
        refused (dry runs excepted). A `plan_only` dry run plans without the gate: no
        check runs, no preview written."""
        check_merger_options(options.merger_options())
        props = check_properties(options.properties)
        check_commit(self.limits, message=options.message, author=options.author,
                     properties=props)
        target_ref = self.refs.writable_branch(target)
        required = self.required_approvals(target_ref.name)
        if required and not approved and not options.dry_run:
            raise approvals_error(target_ref.name, required, 0)
        for _ in range(MAX_CAS_ATTEMPTS):
            # read for every round: a new check or protection applies at once
            checks, protected = self.gate.guards(target_ref.name)
            gated = self.gate.gated(checks) or protected
            if gated and not options.plan_only:
                return self.gate.gated_merge(source, target_ref.name, options, props, checks)
            # a plan-only preview of a protected branch plans what its gate would publish
            step = self.planner.plan(source, target_ref.name, replace(
                options, fast_forward=False) if protected else options)
            if step.done is not None:
                return step.done
            if options.dry_run:
                if options.plan_only:
                    step.discard()
                return step.result(source, target_ref.name, True, None)
            try:
                new_head = self.planner.commit_step(step, source, target_ref.name, options,
                                                    props, move=True)
            except ReferenceConflict:
                step.discard()
                continue  # the target moved (or was protected) while planning: plan again
            self.gate.merged(checks, source, target_ref.name, step, new_head)
            return step.result(source, target_ref.name, False, new_head)
        raise ReferenceConflict(f"branch {target_ref.name!r} kept moving during the merge")
