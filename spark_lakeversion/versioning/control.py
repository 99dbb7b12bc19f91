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
from spark_lakeversion.formats.base import table_format
from spark_lakeversion.limits import check_commit
from spark_lakeversion.store.model import (
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
from spark_lakeversion.versioning.gates.gate import GatedStore
from spark_lakeversion.versioning.interface import DEFAULT_AUTHOR
from spark_lakeversion.versioning.protection import (
    RECOVERY_PROPERTY,
    check_not_protected,
    recovery_refused,
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
        """Cherry-pick (base = parent, change = commit) or revert (the reverse)."""
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
        for _ in range(MAX_CAS_ATTEMPTS):
            head = self.get_ref(ref.name).head
            recovery = kind == "revert" and ref.name in self.protected_branches()
            if recovery and not all(self._is_ancestor(p, head) for p in needed):
                raise recovery_refused(ref.name, kind, next(
                    p for p in needed if not self._is_ancestor(p, head)))
            if expected_head and self.objects.expand_hash(expected_head) != head:
                raise ReferenceConflict(f"branch {ref.name!r} is not at {expected_head}")
            head_root = self.objects.root_of(head)
            details: list[KeyMergeDetail] = []
            staged: dict[Key, Content | None] = {}  # changes of the picks applied so far
            for commit in picked:
                parent_root = self.objects.root_of(commit.parents[0])
                before, after = (parent_root, commit.root) if kind == "cherry-pick" \
                    else (commit.root, parent_root)
                changes = self.objects.changes(before, after)
                at_head = self.objects.values(head_root,
                                              [k for k in changes if k not in staged])
                current = {k: v for k in changes
                           if (v := staged[k] if k in staged else at_head.get(k)) is not None}
                plan = plan_merge(changes, current, content_merging=False)
                details.extend(plan.details)
                staged.update(plan.puts)
            label = ", ".join(c.id[:12] for c in picked)
            conflicted = MergeResult(label, ref.name, None, head, None, False, dry_run,
                                     tuple(details))
            if conflicted.conflicts:
                if dry_run:
                    return conflicted
                raise ConflictError(f"{kind} of {label} onto {ref.name!r} conflicts: "
                                    + "; ".join(c.message for c in conflicted.conflicts),
                                    result=conflicted)
            if dry_run:
                return conflicted
            first = picked[0]
            message = (f"Revert \"{first.message}\"" if kind == "revert"
                       else first.message) if len(picked) == 1 else f"{kind} {label}"
            props = {f"lakeversion.{kind}": ",".join(c.id for c in picked)}
            if recovery:
                props[RECOVERY_PROPERTY] = kind
            head_values = self.objects.values(head_root, list(staged))
            undos = []
            for k, wanted in list(staged.items()):
                now = head_values.get(k)
                if wanted is not None and now is not None:
                    staged[k], undo = restored(k, now, wanted, ref.name)
                    if undo is not None:
                        undos.append(undo)
            try:
                with self.storage.writing() as tx:
                    if not recovery:
                        check_not_protected(tx, ref.name, kind)
                    self._require_retained(tx, needed)
                    commit = self._write_commit(tx, ref.name, head, (head,), head_root,
                                                staged, author or DEFAULT_AUTHOR, message,
                                                props, kind)
            except ConflictError as exc:
                for undo in undos:
                    undo()
                if isinstance(exc, ReferenceConflict):
                    continue
                raise
            except ProtectedBranch:
                for undo in undos:
                    undo()  # what the formats wrote for a commit that did not land
                raise
            return MergeResult(label, ref.name, None, head, commit.id, False, False,
                               tuple(details))
        raise ReferenceConflict(f"branch {ref.name!r} kept moving during the {kind}")

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
        recovery = ref.name in self.protected_branches()
        if recovery:
            if not self._is_ancestor(to_commit, self.get_ref(ref.name).head):
                raise recovery_refused(ref.name, "rollback", to_commit)
            props[RECOVERY_PROPERTY] = "rollback"
        undo: Callable[[], None] | None = None
        if target is not None and current is not None:
            target, undo = restored(k, current, target, ref.name)
        op: Operation = Put(k, target) if target is not None else Delete(k)
        try:
            return self._commit_operations(
                ref.name, [op], message=message or f"Roll back {k} to {to}", author=author,
                expected_head=expected_head, from_commits=[to_commit], properties=props,
                recovery=recovery)
        except (ConflictError, ProtectedBranch):
            if undo is not None:
                undo()  # what the format wrote for a commit that did not land
            raise

    def _is_ancestor(self, commit_id: str, head: str) -> bool:
        return commit_id == head or self._merge_base(commit_id, head) == commit_id


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
