"""Cherry-pick, revert and rollback: they replay one commit's diff (or its reverse, or one
table's old state) with the same three-way rule as merge. Putting a table's old state back
is its format's call (`TableFormat.restore`): a Delta table gets a new log version, never a
rewound one. A table the branch does not have is published as a merge publishes a table new
to it (`TableFormat.publish_preview`: main takes a Delta table born on a branch log as
version 0 of the table's root log). What the formats wrote is deleted again when the commit
then fails. A revert on a protected branch goes through the gate (`gates.gate`), and on one
requiring approvals is refused (dry runs excepted): its new state takes a merge request; a
rollback there is a recovery to a published state (`protection`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from spark_lakeversion.errors import (
    CommitOutcomeUnknown,
    ConflictError,
    InvalidInput,
    KeyNotFound,
    ReferenceConflict,
)
from spark_lakeversion.limits import Limits, check_commit
from spark_lakeversion.model import (
    Commit,
    Content,
    Delete,
    Key,
    KeyMergeDetail,
    MergeResult,
    Operation,
    Put,
)
from spark_lakeversion.store.spi import Storage, StorageReader
from spark_lakeversion.tableformat.base import table_format
from spark_lakeversion.versioning.commits import Commits
from spark_lakeversion.versioning.gates.gate import GateRound, Gates
from spark_lakeversion.versioning.interface import DEFAULT_AUTHOR
from spark_lakeversion.versioning.objects import Objects
from spark_lakeversion.versioning.protection import (
    RECOVERY_PROPERTY,
    Protection,
    check_not_protected,
    check_published,
    protected_error,
    require_published_on,
)
from spark_lakeversion.versioning.refs import MAX_CAS_ATTEMPTS, Refs
from spark_lakeversion.versioning.requests import CommitRequest, PickRequest, RollbackRequest
from spark_lakeversion.versioning.retention import Retention
from spark_lakeversion.versioning.reviews import revert_needs_review
from spark_lakeversion.versioning.three_way import plan_merge


class Picks:
    """Cherry-pick, revert and table rollback."""

    def __init__(self, storage: Storage, objects: Objects, limits: Limits, refs: Refs,
                 retention: Retention, commits: Commits, gates: Gates,
                 protection: Protection, io_properties: Mapping[str, str],
                 required_approvals: Callable[[str], int] = lambda _: 0) -> None:
        self.storage = storage
        self.required_approvals = required_approvals
        self.objects = objects
        self.limits = limits
        self.refs = refs
        self.retention = retention
        self.commits = commits
        self.gates = gates
        self.protection = protection
        self.io_properties = io_properties  # how a format's restore opens table files

    def apply(self, request: PickRequest) -> MergeResult:
        """Cherry-pick (base = parent, change = commit) or revert (the reverse). A revert
        on a protected branch makes a new state: it goes through the gate."""
        kind, onto, dry_run = request.kind, request.onto, request.dry_run
        author, expected_head = request.author, request.expected_head
        check_commit(self.limits, message=None, author=author, properties=None)
        commit_ids = list(request.commit_ids)
        ref = self.refs.writable_branch(onto)
        picked = [self.objects.commit(self.objects.expand_hash(c)) for c in commit_ids]
        if not picked:
            raise InvalidInput(f"nothing to {kind}: give at least one commit")
        for commit in picked:
            if not commit.parents:
                raise InvalidInput(f"cannot {kind} the initial commit {commit.id[:12]}")
        # cherry-pick writes the picked states; revert writes the states before them
        needed = [c.id for c in picked] if kind == "cherry-pick" \
            else [c.parents[0] for c in picked]
        self.retention.require(None, needed)
        label = ", ".join(c.id[:12] for c in picked)
        first = picked[0]
        message = (f"Revert \"{first.message}\"" if kind == "revert"
                   else first.message) if len(picked) == 1 else f"{kind} {label}"
        props = {f"lakeversion.{kind}": ",".join(c.id for c in picked)}
        if ref.name in self.protection.branches():
            if kind == "revert":
                required = self.required_approvals(ref.name)
                if required and not dry_run:
                    raise revert_needs_review(ref.name, required)
                return self._gated_revert(ref.name, picked, needed, dry_run,
                                          author or DEFAULT_AUTHOR, message, props,
                                          expected_head)
            if not dry_run:  # before a format writes anything (checked again below)
                raise protected_error(ref.name, kind)
        for _ in range(MAX_CAS_ATTEMPTS):
            head = self.refs.get(ref.name).head
            planned = self._plan_picks(kind, picked, ref.name, head, dry_run, expected_head,
                                       gated=False)
            if isinstance(planned, MergeResult):
                return planned
            details, staged = planned
            head_root = self.objects.root_of(head)
            staged, undo = self._restored_all(staged, head_root, ref.name)
            try:
                with self.storage.writing() as tx:
                    check_not_protected(tx, ref.name, kind)
                    self.retention.require(tx, needed)
                    commit = self.commits.write(tx, ref.name, head, (head,), head_root,
                                                staged, author or DEFAULT_AUTHOR, message,
                                                props, kind)
            except CommitOutcomeUnknown:
                raise  # the commit may have landed: what the formats wrote must stay
            except ReferenceConflict:
                undo()
                continue
            except BaseException:
                undo()  # what the formats wrote for a commit that did not land
                raise
            return MergeResult(label, ref.name, None, head, commit.id, False, False,
                               tuple(details))
        raise ReferenceConflict(f"branch {ref.name!r} kept moving during the {kind}")

    def _plan_picks(self, kind: str, picked: Sequence[Commit], branch: str, head: str,
                    dry_run: bool, expected_head: str | None, *, gated: bool
                    ) -> MergeResult | tuple[list[KeyMergeDetail], dict[Key, Content | None]]:
        """The picks' changes (or their reverse) on `head`, key by key: (details, staged),
        or the result of a dry run with nothing more to do (a `gated` dry run still checks
        its preview); `ConflictError` if they conflict."""
        if expected_head and self.objects.expand_hash(expected_head) != head:
            raise ReferenceConflict(f"branch {branch!r} is not at {expected_head}")
        head_root = self.objects.root_of(head)
        details: list[KeyMergeDetail] = []
        staged: dict[Key, Content | None] = {}  # changes of the picks applied so far
        for commit in picked:
            parent_root = self.objects.root_of(commit.parents[0])
            before, after = (parent_root, commit.root) if kind == "cherry-pick" \
                else (commit.root, parent_root)
            changes = self.objects.changes(before, after)
            at_head = self.objects.values(head_root, [k for k in changes if k not in staged])
            current = {k: v for k in changes
                       if (v := staged[k] if k in staged else at_head.get(k)) is not None}
            plan = plan_merge(changes, current, content_merging=False)
            details.extend(plan.details)
            staged.update(plan.puts)
        label = ", ".join(c.id[:12] for c in picked)
        result = MergeResult(label, branch, None, head, None, False, dry_run, tuple(details))
        if result.conflicts:
            if dry_run:
                return result
            raise ConflictError(f"{kind} of {label} onto {branch!r} conflicts: "
                                + "; ".join(c.message for c in result.conflicts),
                                result=result)
        return result if dry_run and not gated else (details, staged)

    def _restored_all(self, staged: dict[Key, Content | None], head_root: str | None,
                      branch: str, *, preview: bool = False
                      ) -> tuple[dict[Key, Content | None], Callable[[], None]]:
        """`staged` as each table's format puts it back (`restored`; for a gated
        `preview`, beside what the table's plain readers read), and the undo of what the
        formats wrote for it (run here when a later table's format fails)."""
        head_values = self.objects.values(head_root, list(staged))
        out = dict(staged)
        undos: list[Callable[[], None]] = []

        def undo_all() -> None:
            for undo in reversed(undos):
                undo()

        try:
            for k, wanted in staged.items():
                if wanted is not None:
                    out[k], undo = restored(k, head_values.get(k), wanted, branch,
                                            self.io_properties, preview=preview)
                    if undo is not None:
                        undos.append(undo)
        except BaseException:
            undo_all()
            raise
        return out, undo_all

    def _gated_revert(self, branch: str, picked: Sequence[Commit], needed: Sequence[str],
                      dry_run: bool, author: str, message: str, props: dict[str, str],
                      expected_head: str | None) -> MergeResult:
        """A revert on a protected branch: preview, checks, compare-and-swap publish, like
        a merge (`Gates.through_gates`)."""
        details: dict[str, list[KeyMergeDetail]] = {}  # preview -> its details

        def prepare() -> GateRound | MergeResult:
            head = self.refs.get(branch).head
            planned = self._plan_picks("revert", picked, branch, head, dry_run,
                                       expected_head, gated=True)
            if isinstance(planned, MergeResult):
                return planned  # a dry run's conflicts
            planned_details, staged = planned
            head_root = self.objects.root_of(head)
            staged, undo = self._restored_all(staged, head_root, branch, preview=True)
            try:
                with self.storage.writing() as tx:
                    self.retention.require(tx, needed)
                    preview = self.commits.write(tx, None, head, (head,), head_root, staged,
                                                 author, message, props, "revert")
            except BaseException:
                undo()
                raise
            details[preview.id] = planned_details
            return GateRound(head, picked[0].id, needed[0], preview.id, tuple(needed))

        label = ", ".join(c.id[:12] for c in picked)
        gated = self.gates.through_gates(branch, f"revert of {label}", dry_run,
                                    self.gates.merge_checks(branch), prepare)
        if isinstance(gated, MergeResult):
            return gated
        done, outcome, new_head = gated
        return MergeResult(label, branch, None, done.target_head, new_head, False, dry_run,
                           tuple(details[done.preview]), outcome, done.preview)

    def rollback(self, request: RollbackRequest) -> Commit:
        branch, to, expected_head = request.branch, request.to, request.expected_head
        k = Key.of(request.key)
        ref = self.refs.writable_branch(branch)
        to_commit = self.refs.resolve(to).commit_id
        self.retention.require(None, [to_commit])
        target = self.commits.get_contents(to_commit, [k]).get(k)
        current = self.commits.get_contents(ref.name, [k]).get(k)
        if target is None and current is None:
            raise KeyNotFound(f"{k} exists neither on {branch!r} nor at {to!r}")
        props = {**(request.properties or {}), "lakeversion.rollback.to": to,
                 "lakeversion.rollback.to-commit": to_commit}
        published: Callable[[StorageReader, str], None] | None = None
        if ref.name in self.protection.branches():
            def published(reader: StorageReader, head: str) -> None:
                require_published_on(reader, self.objects, ref.name, head, to_commit,
                                     "rollback")
            # before a format writes anything
            check_published(self.storage, self.objects, ref.name, self.refs.get(ref.name).head,
                            to_commit, "rollback")
            props[RECOVERY_PROPERTY] = "rollback"
        undo: Callable[[], None] | None = None
        if target is not None:
            target, undo = restored(k, current, target, ref.name, self.io_properties)
        op: Operation = Put(k, target) if target is not None else Delete(k)
        try:
            return self.commits.commit(CommitRequest(
                ref.name, [op], message=request.message or f"Roll back {k} to {to}",
                author=request.author, expected_head=expected_head, properties=props),
                from_commits=[to_commit], recovery=published)
        except CommitOutcomeUnknown:
            raise  # the commit may have landed: what the format wrote must stay
        except BaseException:
            if undo is not None:
                undo()  # what the format wrote for a commit that did not land
            raise


def restored(key: Key, current: Content | None, wanted: Content, branch: str,
             io_properties: Mapping[str, str], *, preview: bool = False
             ) -> tuple[Content, Callable[[], None] | None]:
    """What putting `wanted` back over `current` means for the table's format (a Delta
    table gets a new log version; a gated `preview`'s, beside the table's own log);
    unchanged for another table or an unknown format. A table the branch does not have
    (`current` None) is published as a merge publishes a table new to the branch
    (`TableFormat.publish_preview`: main takes a Delta table born on a branch log as
    version 0 of its root log); a gated `preview` leaves that to the gate's publish."""
    fmt = table_format(wanted.type)
    if current is None:
        if preview or fmt is None:
            return wanted, None
        return fmt.publish_preview(key, None, wanted, branch, io_properties)
    if current == wanted or current.type is not wanted.type or current.id != wanted.id:
        return wanted, None
    if fmt is None:
        return wanted, None
    if preview:
        return fmt.restore(key, current, wanted, branch, io_properties, preview=True)
    return fmt.restore(key, current, wanted, branch, io_properties)
