"""`VersionControl`: the `VersionStore` over any storage. On top of refs, commits, history,
merge and the merge gate (each its own module), this one adds cherry-pick, revert and rollback: they
replay one commit's diff (or its reverse, or one table's old state) with the same
three-way rule as merge. Putting a table's old state back is its format's call
(`TableFormat.restore`): a Delta table gets a new log version, never a rewound one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from spark_lakeversion.errors import (
    ConflictError,
    InvalidInput,
    KeyNotFound,
    ProtectedBranch,
    ReferenceConflict,
)
from spark_lakeversion.limits import check_commit
from spark_lakeversion.model import (
    Commit,
    Content,
    Delete,
    Key,
    KeyLike,
    KeyMergeDetail,
    MergeResult,
    Operation,
    Put,
)
from spark_lakeversion.tableformat.base import table_format
from spark_lakeversion.versioning.gates.gate import GatedStore, GateRound
from spark_lakeversion.versioning.interface import DEFAULT_AUTHOR
from spark_lakeversion.versioning.protection import (
    RECOVERY_PROPERTY,
    check_not_protected,
    protected_error,
)
from spark_lakeversion.versioning.refs import MAX_CAS_ATTEMPTS
from spark_lakeversion.versioning.three_way import plan_merge


class VersionControl(GatedStore):
    def cherry_pick(self, commit_ids: Sequence[str], onto: str, *, dry_run: bool = False,
                    author: str | None = None,
                    expected_head: str | None = None) -> MergeResult:
        check_commit(self.limits, message=None, author=author, properties=None)
        return self._apply_commit_diff("cherry-pick", list(commit_ids), onto, dry_run, author,
                                       expected_head)

    def revert(self, commit_id: str, on: str, *, dry_run: bool = False,
               author: str | None = None, expected_head: str | None = None) -> MergeResult:
        check_commit(self.limits, message=None, author=author, properties=None)
        return self._apply_commit_diff("revert", [commit_id], on, dry_run, author,
                                       expected_head)

    def _apply_commit_diff(self, kind: str, commit_ids: Sequence[str], onto: str,
                           dry_run: bool, author: str | None,
                           expected_head: str | None) -> MergeResult:
        """Cherry-pick (base = parent, change = commit) or revert (the reverse). A revert
        on a protected branch makes a new state: it goes through the gate."""
        ref = self._writable_branch(onto)
        picked = [self.objects.commit(self.objects.expand_hash(c)) for c in commit_ids]
        if not picked:
            raise InvalidInput(f"nothing to {kind}: give at least one commit")
        for commit in picked:
            if not commit.parents:
                raise InvalidInput(f"cannot {kind} the initial commit {commit.id[:12]}")
        # cherry-pick writes the picked states; revert writes the states before them
        needed = [c.id for c in picked] if kind == "cherry-pick" \
            else [c.parents[0] for c in picked]
        self._require_retained(None, needed)
        label = ", ".join(c.id[:12] for c in picked)
        first = picked[0]
        message = (f"Revert \"{first.message}\"" if kind == "revert"
                   else first.message) if len(picked) == 1 else f"{kind} {label}"
        props = {f"lakeversion.{kind}": ",".join(c.id for c in picked)}
        if ref.name in self.protected_branches():
            if kind == "revert":
                return self._gated_revert(ref.name, picked, needed, dry_run,
                                          author or DEFAULT_AUTHOR, message, props,
                                          expected_head)
            if not dry_run:  # before a format writes anything (checked again below)
                raise protected_error(ref.name, kind)
        for _ in range(MAX_CAS_ATTEMPTS):
            head = self.get_ref(ref.name).head
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
                    self._require_retained(tx, needed)
                    commit = self._write_commit(tx, ref.name, head, (head,), head_root,
                                                staged, author or DEFAULT_AUTHOR, message,
                                                props, kind)
            except ConflictError as exc:
                undo()
                if isinstance(exc, ReferenceConflict):
                    continue
                raise
            except ProtectedBranch:
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
                      branch: str) -> tuple[dict[Key, Content | None], Callable[[], None]]:
        """`staged` as each table's format puts it back (`restored`), and the undo of what
        the formats wrote for it."""
        head_values = self.objects.values(head_root, list(staged))
        out = dict(staged)
        undos: list[Callable[[], None]] = []
        for k, wanted in staged.items():
            now = head_values.get(k)
            if wanted is not None and now is not None:
                out[k], undo = restored(k, now, wanted, branch)
                if undo is not None:
                    undos.append(undo)

        def undo_all() -> None:
            for undo in undos:
                undo()
        return out, undo_all

    def _gated_revert(self, branch: str, picked: Sequence[Commit], needed: Sequence[str],
                      dry_run: bool, author: str, message: str, props: dict[str, str],
                      expected_head: str | None) -> MergeResult:
        """A revert on a protected branch: preview, checks, compare-and-swap publish, like
        a merge (`GatedStore._through_gates`)."""
        details: dict[str, list[KeyMergeDetail]] = {}  # preview -> its details

        def prepare() -> GateRound | MergeResult:
            head = self.get_ref(branch).head
            planned = self._plan_picks("revert", picked, branch, head, dry_run,
                                       expected_head, gated=True)
            if isinstance(planned, MergeResult):
                return planned  # a dry run's conflicts
            planned_details, staged = planned
            head_root = self.objects.root_of(head)
            staged, undo = self._restored_all(staged, head_root, branch)
            try:
                with self.storage.writing() as tx:
                    self._require_retained(tx, needed)
                    preview = self._write_commit(tx, None, head, (head,), head_root, staged,
                                                 author, message, props, "revert")
            except BaseException:
                undo()
                raise
            details[preview.id] = planned_details
            return GateRound(head, picked[0].id, needed[0], preview.id, tuple(needed),
                             discard=undo)

        label = ", ".join(c.id[:12] for c in picked)
        gated = self._through_gates(branch, f"revert of {label}", dry_run,
                                    self._merge_checks(branch), prepare)
        if isinstance(gated, MergeResult):
            return gated
        done, outcome, new_head = gated
        return MergeResult(label, branch, None, done.target_head, new_head, False, dry_run,
                           tuple(details[done.preview]), outcome, done.preview)

    def rollback_table(self, branch: str, key: KeyLike, to: str, *,
                       author: str | None = None, message: str | None = None,
                       expected_head: str | None = None,
                       properties: Mapping[str, str] | None = None) -> Commit:
        k = Key.of(key)
        ref = self._writable_branch(branch)
        to_commit = self.resolve(to).commit_id
        self._require_retained(None, [to_commit])
        target = self.get_contents(to_commit, [k]).get(k)
        current = self.get_contents(ref.name, [k]).get(k)
        if target is None and current is None:
            raise KeyNotFound(f"{k} exists neither on {branch!r} nor at {to!r}")
        props = {**(properties or {}), "lakeversion.rollback.to": to,
                 "lakeversion.rollback.to-commit": to_commit}
        published: Callable[[str], None] | None = None
        if ref.name in self.protected_branches():
            def published(head: str) -> None:
                self._published(ref.name, head, to_commit, "rollback")
            published(self.get_ref(ref.name).head)  # before a format writes anything
            props[RECOVERY_PROPERTY] = "rollback"
        undo: Callable[[], None] | None = None
        if target is not None and current is not None:
            target, undo = restored(k, current, target, ref.name)
        op: Operation = Put(k, target) if target is not None else Delete(k)
        try:
            return self._commit_operations(
                ref.name, [op], message=message or f"Roll back {k} to {to}", author=author,
                expected_head=expected_head, from_commits=[to_commit], properties=props,
                recovery=published)
        except (ConflictError, ProtectedBranch):
            if undo is not None:
                undo()  # what the format wrote for a commit that did not land
            raise


def restored(key: Key, current: Content, wanted: Content, branch: str
             ) -> tuple[Content, Callable[[], None] | None]:
    """What putting `wanted` back over `current` means for the table's format (a Delta
    table gets a new log version); unchanged for another table or an unknown format."""
    if current == wanted or current.type is not wanted.type or current.id != wanted.id:
        return wanted, None
    fmt = table_format(wanted.type)
    if fmt is None:
        return wanted, None
    return fmt.restore(key, current, wanted, branch)
