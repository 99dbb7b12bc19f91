"""The gated merge and the check settings of a branch.

A merge into a branch with checks:
1. plans the merge on the target's head and writes the merge commit on no ref: the
   **preview** (a fast-forward's preview is the source head itself);
2. runs the checks that read a changed table (the others are reported as skipped) on the
   preview, in parallel, each within its timeout, and records every run;
3. only if all pass, writes the published commit (the preview's tree and parents, with a
   summary of the checks in its properties) and compare-and-swaps the target from the head
   the merge was planned on. If the target moved meanwhile, it plans and checks again, at
   most `MAX_GATE_ATTEMPTS` times, then fails with `ReferenceConflict`.

A preview never changes what a table's plain readers read: formats write it beside the
table's own storage (`ContentMergePlan.apply(preview=True)`, `TableFormat.restore`; a
Delta table's on a side log). Publishing asks the injected `PreviewPublisher` for the
states to publish, inside the publishing transaction once the target is known to be at the
planned head: a Delta preview is then replayed as the next version of the table's own log,
and the published tree differs from the preview's only there.

A failing check raises `ChecksFailed` with every report; nothing is published and the
preview stays readable (gc keeps previews within its retained-history window).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from spark_lakeversion.errors import (
    ChecksFailed,
    CommitOutcomeUnknown,
    InvalidInput,
    NotFound,
    ReadOnlyRef,
    ReferenceConflict,
)
from spark_lakeversion.model import (
    CheckKind,
    CheckReport,
    CheckRun,
    CheckSpec,
    CheckStatus,
    ContentType,
    DiffEntry,
    Key,
    MergeResult,
    RefType,
)
from spark_lakeversion.store.objects import make_commit, to_us
from spark_lakeversion.store.spi import Storage
from spark_lakeversion.versioning.commits import Commits
from spark_lakeversion.versioning.gates.context import (
    CheckEngines,
    GateContext,
)
from spark_lakeversion.versioning.gates.notify import Notifications, preview_diff
from spark_lakeversion.versioning.gates.policy import CheckPolicy
from spark_lakeversion.versioning.interface import VersionStore
from spark_lakeversion.versioning.merging import (
    MergePlanner,
    MergeStep,
    PreviewPublisher,
    nothing_to_undo,
)
from spark_lakeversion.versioning.objects import Objects
from spark_lakeversion.versioning.options import MergeOptions
from spark_lakeversion.versioning.protection import no_ff_reason
from spark_lakeversion.versioning.refs import Refs
from spark_lakeversion.versioning.retention import Retention

#: plan-and-check rounds before a gated merge on a target that keeps moving gives up
MAX_GATE_ATTEMPTS = 3
MAX_CHECK_SPEC_CHARS = 64 * 1024
MAX_CHECK_TIMEOUT_S = 3600.0
MAX_CHECK_RUNS_PAGE = 1000
_CHECK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_PYTHON_TARGET = re.compile(r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?")


def validate_check(spec: CheckSpec) -> CheckSpec:
    """The spec as stored, or `InvalidInput` saying what is wrong (checked once, here)."""
    if not isinstance(spec.name, str) or not _CHECK_NAME.fullmatch(spec.name):
        raise InvalidInput(f"check name {spec.name!r}: use 1-64 letters, digits, '_', '.', "
                           "'-' (not starting with '.' or '-')")
    kind = CheckKind(spec.kind)
    if not isinstance(spec.spec, str) or not spec.spec.strip():
        raise InvalidInput(f"check {spec.name!r} needs its SQL, Python target or URL")
    if len(spec.spec) > MAX_CHECK_SPEC_CHARS or "\x00" in spec.spec:
        raise InvalidInput(f"check {spec.name!r}: its definition is over "
                           f"{MAX_CHECK_SPEC_CHARS} characters or holds NUL")
    if kind is CheckKind.PYTHON and not _PYTHON_TARGET.fullmatch(spec.spec):
        raise InvalidInput(f"python check {spec.spec!r}: give module:function, a dotted "
                           "path or an entry-point name of group spark_lakeversion.checks")
    if kind in (CheckKind.WEBHOOK, CheckKind.NOTIFY) and \
            not re.fullmatch(r"https?://[^\s]+", spec.spec):
        raise InvalidInput(f"webhook {spec.spec!r} is not an http(s) URL")
    if not isinstance(spec.timeout_s, (int, float)) or \
            not 0 < spec.timeout_s <= MAX_CHECK_TIMEOUT_S:
        raise InvalidInput(f"check timeout must be within (0, {MAX_CHECK_TIMEOUT_S:g}] "
                           "seconds")
    tables = []
    for table in spec.tables:
        if not isinstance(table, str):
            raise InvalidInput("check tables are dotted names such as db.orders")
        tables.append(str(Key.of(table)))
    return CheckSpec(spec.branch, spec.name, kind, spec.spec, tuple(tables),
                     float(spec.timeout_s))


@dataclass(frozen=True)
class GateRound:
    """One planned new state of a gated branch: `preview`, written on no ref, on
    `target_head`; `source`/`source_head` are what it brings in (what checks read as
    `source`); `retained` must still be in gc's retained history when it is published.
    A preview that is not published keeps its files: it stays readable."""

    target_head: str
    source: str
    source_head: str
    preview: str
    retained: tuple[str, ...]
    fast_forward: bool = False


def checks_summary(reports: Sequence[CheckReport]) -> str:
    """`passed: a, b; skipped: c` (`none` without checks), for the published commit's
    properties."""
    if not reports:
        return "none"
    by_status: dict[str, list[str]] = {}
    for report in reports:
        by_status.setdefault(report.status.value, []).append(report.name)
    return "; ".join(f"{status}: {', '.join(names)}" for status, names in by_status.items())


class Gates:
    """The gate (`through_gates`) for merges and reverts, and the check settings. It is
    the `MergeGate` that `merging.Merging` is given."""

    def __init__(self, storage: Storage, objects: Objects, refs: Refs, retention: Retention,
                 commits: Commits, planner: MergePlanner, notifications: Notifications,
                 store: VersionStore, io: Mapping[str, str], policy: CheckPolicy,
                 engines: CheckEngines, previews: PreviewPublisher) -> None:
        self.storage = storage
        self.objects = objects
        self.refs = refs
        self.retention = retention
        self.commits = commits
        self.planner = planner
        self.notifications = notifications
        self.store = store  # what a check is handed to read with (`GateContext.store`)
        self.io = io
        self.policy = policy
        self.engines = engines
        self.previews = previews

    # ---- settings (admin operations: an access-control layer wraps these) ----------------
    def add_check(self, spec: CheckSpec, allow_missing: bool = False) -> CheckSpec:
        ref = self.refs.get(spec.branch)
        if ref.type is not RefType.BRANCH:
            raise ReadOnlyRef(f"{spec.branch!r} is a tag: checks guard merges into branches")
        stored = validate_check(spec)
        # before anything is stored: the engines' rules, then one run on the branch as it is
        trial = self.check_context(ref.head, spec.branch, ref.head, spec.branch, ref.head, ())
        self.engines.validate(stored, self.policy, trial, allow_missing)
        self.storage.add_check(stored)
        self.notifications.forget()  # this process hears its own changes at once
        return stored

    def remove_check(self, branch: str, name: str) -> bool:
        self.refs.get(branch)
        removed = self.storage.remove_check(branch, name)
        self.notifications.forget()
        return removed

    def test_check(self, branch: str, name: str, source: str | None = None) -> CheckReport:
        found = [c for c in self.list_checks(branch) if c.name == name]
        if not found:
            raise NotFound(f"no check {name!r} on {branch!r}")
        head = self.refs.get(branch).head
        preview, source_head = head, head
        if source is not None:
            step = self.planner.plan(source, branch, MergeOptions())
            source_head = step.source_head
            if step.done is None:  # a merge to make: its preview, on no ref
                preview = self.planner.commit_step(step, source, branch, MergeOptions(), {},
                                            move=False)
        context = self.check_context(preview, source or branch, source_head, branch, head,
                                     tuple(preview_diff(self.objects, head, preview)))
        [report] = self.engines.run(context, found)
        return report

    def list_checks(self, branch: str | None = None) -> list[CheckSpec]:
        if branch is not None:
            self.refs.get(branch)
        return self.storage.checks(branch)

    def check_runs(self, branch: str | None = None, limit: int = 50) -> list[CheckRun]:
        if not isinstance(limit, int) or not 0 < limit <= MAX_CHECK_RUNS_PAGE:
            raise InvalidInput(f"limit must be within 1..{MAX_CHECK_RUNS_PAGE}")
        return self.storage.check_runs(branch, limit)

    def preview_commits(self, since: datetime) -> list[str]:
        return self.storage.previews_since(since)

    # ---- the gated merge --------------------------------------------------------------------
    def merge_checks(self, branch: str) -> list[Any]:
        return self.storage.checks(branch)  # read for every merge: a new check applies at once

    def guards(self, branch: str) -> tuple[list[Any], bool]:
        with self.storage.reading() as reader:  # one read where two were, for every merge
            return reader.branch_checks(branch), branch in reader.protected_branches()

    def _protected(self, branch: str) -> bool:
        with self.storage.reading() as reader:
            return branch in reader.protected_branches()

    def gated(self, checks: list[Any]) -> bool:
        return any(c.kind is not CheckKind.NOTIFY for c in checks)

    def gated_merge(self, source: str, target: str, options: MergeOptions,
                     props: dict[str, str], checks: list[Any]) -> MergeResult:
        """A merge into a branch with checks or a protected one (no fast-forward there)."""
        steps: dict[str, MergeStep] = {}  # preview -> the step that planned it
        reasons: dict[str, str | None] = {}

        def prepare() -> GateRound | MergeResult:
            protected = self._protected(target)
            opts = replace(options, fast_forward=False) if protected else options
            step = self.planner.plan(source, target, opts)
            if step.done is not None:
                return step.done
            preview = self.planner.commit_step(step, source, target, opts, props, move=False)
            steps[preview] = step
            reasons[preview] = no_ff_reason(target) \
                if protected and options.fast_forward else step.no_ff_reason
            return GateRound(step.target_head, source, step.source_head, preview,
                             (step.source_head,), fast_forward=step.plan is None)

        gated = self.through_gates(target, f"merge of {source!r}", options.dry_run, checks,
                                    prepare)
        if isinstance(gated, MergeResult):
            return gated
        done, outcome, new_head = gated
        step = steps[done.preview]
        result = step.result(source, target, options.dry_run, new_head)
        return replace(result, checks=outcome, preview=done.preview,
                       no_ff_reason=reasons[done.preview])

    def through_gates(self, target: str, what: str, dry_run: bool, checks: list[Any],
                       prepare: Callable[[], GateRound | MergeResult]
                       ) -> MergeResult | tuple[GateRound, tuple[dict[str, Any], ...],
                                                str | None]:
        """The gate, for anything that makes a new state of `target` (a merge, a revert):
        `prepare` plans it on the target's head and writes its preview on no ref (or answers
        a `MergeResult` when there is nothing to write); then the checks, then the
        compare-and-swap publish. Answers (the round, its reports, the new head: None for a
        dry run) or what `prepare` answered."""
        run_checks = self.engines.run
        specs: list[CheckSpec] = checks
        for attempt in range(MAX_GATE_ATTEMPTS):
            if attempt:  # checks may have changed while the last round ran
                specs = self.storage.checks(target)
            planned = prepare()
            if isinstance(planned, MergeResult):
                return planned
            context = self.check_context(
                planned.preview, planned.source, planned.source_head, target,
                planned.target_head, tuple(preview_diff(self.objects, planned.target_head,
                                                                planned.preview)))
            gates = [s for s in specs if s.kind is not CheckKind.NOTIFY]
            reports = self._run_gates(context, gates, run_checks)
            outcome = tuple(r.to_dict() for r in reports)
            if not all(r.ok for r in reports):
                failed = [r for r in reports if not r.ok]
                raise ChecksFailed(
                    f"{len(failed)} of {len(reports)} check(s) on {target!r} failed for the "
                    f"{what}" + (" (dry run)" if dry_run else "") + ": "
                    + "; ".join(f"{r.name}: {r.message or r.status.value}" for r in failed)
                    + f"; nothing was published; preview {planned.preview} stays readable",
                    list(outcome), planned.preview)
            if dry_run:
                return planned, outcome, None
            try:
                new_head = self._publish(planned, target, reports, context.attempt)
            except ReferenceConflict:
                continue  # the target moved during the checks: plan and check again
            self.notifications.notify(context, specs, new_head)
            return planned, outcome, new_head
        raise ReferenceConflict(f"branch {target!r} kept moving during the gated {what}; "
                                f"gave up after {MAX_GATE_ATTEMPTS} rounds of checks")

    def check_context(self, preview: str, source: str, source_head: str, target: str,
                 target_head: str, changes: tuple[DiffEntry, ...]) -> GateContext:
        """What the check engines get: the three states' table contents (read here, by
        commit id, so a check never names a ref), the FileIO properties and the policy."""
        relations = {name: {key: content for key, content in self.commits.list_keys(commit)
                            if content.type is not ContentType.NAMESPACE}
                     for name, commit in (("preview", preview), ("target", target_head),
                                          ("source", source_head))}
        return GateContext(uuid.uuid4().hex, preview, source, source_head, target,
                           target_head, changes, self.store, relations, self.io,
                           self.policy)

    def _run_gates(self, context: GateContext, specs: Sequence[CheckSpec],
                   run_checks: object) -> list[CheckReport]:
        """Scoped checks that read no changed table are skipped; the rest run; every
        report is recorded."""
        changed = set(context.changed_tables)
        to_run = [s for s in specs if not s.tables or changed & set(s.tables)]
        ran = iter(run_checks(context, to_run)) if to_run else iter(())  # type: ignore[operator]
        reports = []
        for spec in specs:
            if spec in to_run:
                reports.append(next(ran))
            else:
                reports.append(CheckReport(
                    spec.name, CheckStatus.SKIPPED,
                    message=f"reads {', '.join(spec.tables)}, which this merge does not "
                            "change"))
        now = datetime.now(timezone.utc)
        self.storage.record_check_runs([
            CheckRun(context.attempt, context.target, context.source, context.preview, r, now)
            for r in reports])
        return reports

    def _publish(self, planned: GateRound, target: str, reports: Sequence[CheckReport],
                 attempt: str) -> str:
        """Move `target` from the planned head to the checked state, by compare-and-swap.
        A fast-forward (the preview is the source head) lands only while the target is
        unprotected: else `ReferenceConflict`, and the next round makes a merge commit.
        Otherwise, once the target is known to be at the planned head (in this
        transaction), the `PreviewPublisher` gives the states to publish (a Delta table's
        own log moves only now); whatever it wrote is undone if the publish then fails."""
        summary = {"lakeversion.checks": checks_summary(reports),
                   "lakeversion.checks.preview": planned.preview,
                   "lakeversion.checks.attempt": attempt}
        undo: Callable[[], None] = nothing_to_undo
        try:
            with self.storage.writing() as tx:
                self.retention.require(tx, planned.retained)
                if planned.fast_forward:
                    if target in tx.protected_branches():
                        raise ReferenceConflict(f"branch {target!r} was protected during "
                                                "the checks: a merge commit is needed")
                    tx.move_branch(target, planned.target_head, planned.preview,
                                   "gated fast-forward")
                    return planned.preview
                if tx.heads().get(target) != planned.target_head:
                    raise ReferenceConflict(f"branch {target!r} moved during the checks")
                checked = self.objects.commit(planned.preview)
                target_root = self.objects.root_of(planned.target_head)
                changes = self.objects.changes(target_root, checked.root)
                published, undo = self.previews.publish(target, changes)
                props: Mapping[str, str] = {**checked.properties, **summary}
                if published:  # the published tree: the preview's, those states replaced
                    commit = self.commits.write(
                        tx, target, planned.target_head, checked.parents, target_root,
                        {k: published.get(k, after) for k, (_, after) in changes.items()},
                        checked.author, checked.message, props, "gated merge",
                        (checked.root, published))
                    return commit.id
                ts_us = max(int(time.time() * 1_000_000), to_us(checked.timestamp) + 1)
                commit = make_commit(checked.parents, checked.root, checked.author,
                                     checked.message, ts_us, props)
                tx.put_commit(commit, self.objects.generation(planned.preview), list(changes))
                tx.move_branch(target, planned.target_head, commit.id, "gated merge", ts_us)
                return commit.id
        except CommitOutcomeUnknown:
            raise  # the commit may have landed: what it published must stay
        except BaseException:
            undo()  # only what this publish wrote (a Delta version of the target's log)
            raise

    def merged(self, checks: list[Any], source: str, target: str, step: MergeStep,
               new_head: str) -> None:
        self.notifications.merged(checks, source, target, step.source_head,
                                  step.target_head, new_head)
