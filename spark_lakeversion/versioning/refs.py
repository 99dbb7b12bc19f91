"""Refs over any storage: create, delete and assign by compare-and-swap, and the
resolution of ref expressions (`names.py`), time travel through the reflog included.

`Refs` is one of the objects `VersionControl` composes (`control.py` wires them); the
others (`commits`, `history`, `merging`, `gates`, `picks`) receive it."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from datetime import datetime

from spark_lakeversion.errors import (
    ConflictError,
    InvalidInput,
    InvalidRefExpression,
    ReadOnlyRef,
    ReferenceConflict,
    RefNotFound,
    UnmergedBranch,
)
from spark_lakeversion.model import Commit, Content, Key, Ref, RefType, ResolvedRef
from spark_lakeversion.store.spi import Storage
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH
from spark_lakeversion.versioning.names import (
    FULL_HASH_LENGTH,
    is_commit_hash,
    parse_ref_expression,
    validate_ref_name,
)
from spark_lakeversion.versioning.objects import Objects
from spark_lakeversion.versioning.protection import (
    RECOVERY_RESET,
    check_not_protected,
    check_published,
    require_published_on,
)
from spark_lakeversion.versioning.requests import RefAssign, RefCreate, RefDelete
from spark_lakeversion.versioning.retention import Retention
from spark_lakeversion.versioning.suggest import ref_not_found

#: compare-and-swap attempts before a write on a branch that keeps moving gives up
MAX_CAS_ATTEMPTS = 100


def unmerged_error(branch: str, lost: int) -> UnmergedBranch:
    """The refusal to delete a branch holding commits no other ref holds (git's ``-d``)."""
    return UnmergedBranch(
        f"branch {branch!r} has {lost} commit(s) that no other branch or tag contains (not "
        f"merged into {DEFAULT_BRANCH!r}): deleting it would lose them; merge it first, or "
        f"delete it anyway with force (CLI `branch delete {branch} --force`, SQL "
        f"`DROP BRANCH {branch} FORCE`, Python `.delete(force=True)`)")


#: why a branch may not be reset onto the states a reset brings (each changed key: the
#: branch's state, the new one), or None; injected when the store is wired (the formats'
#: rule, `content.FormatPreviews.reassign_refusal`)
ResetRule = Callable[[str, Mapping[Key, tuple[Content | None, Content | None]]], str | None]


class Refs:
    """Ref lookups, ref expressions and the three ref writes."""

    def __init__(self, storage: Storage, objects: Objects, retention: Retention,
                 reset_rule: ResetRule = lambda _branch, _changes: None) -> None:
        self.storage = storage
        self.objects = objects
        self.retention = retention
        self.reset_rule = reset_rule

    def list_refs(self, type: RefType | None = None) -> list[Ref]:
        return self.storage.list_refs(type)

    def get(self, name: str) -> Ref:
        validate_ref_name(name)
        ref = self.storage.find_ref(name)
        if ref is None:
            raise self._not_found(f"no branch or tag named {name!r}", name)
        return ref

    def _not_found(self, message: str, name: str) -> RefNotFound:
        return ref_not_found(message, name, (r.name for r in self.storage.list_refs()))

    def create(self, request: RefCreate) -> Ref:
        name = request.name
        validate_ref_name(name)
        ref_type = RefType(request.type)
        head = self.resolve(request.from_ref).commit_id
        # gc's rule is checked once, in the transaction that holds gc's state (a refusal
        # there writes nothing): a check before it as well only doubled the reads
        with self.storage.writing() as tx:
            self.retention.require(tx, [head])
            tx.create_ref(name, ref_type, head, f"create {ref_type.value.lower()}")
        return Ref(name, ref_type, head)

    def delete(self, request: RefDelete) -> None:
        name, type, expected_head = request.name, request.type, request.expected_head
        ref = self.get(name)
        if type is not None and ref.type is not RefType(type):
            raise RefNotFound(f"{name!r} is a {ref.type.value.lower()}, "
                              f"not a {RefType(type).value.lower()}")
        if ref.type is RefType.BRANCH and name == DEFAULT_BRANCH:
            raise InvalidInput(f"the default branch {DEFAULT_BRANCH!r} cannot be deleted")
        expected = self.objects.expand_hash(expected_head) if expected_head else ref.head
        check_merged = not request.force and ref.type is RefType.BRANCH
        for _ in range(MAX_CAS_ATTEMPTS):
            # the walk reads commits outside the write transaction; the transaction then
            # checks that no ref moved since, so a concurrent delete cannot orphan commits
            heads = self.retention.read_heads() if check_merged else {}
            lost = self._lost_commits(heads, name, expected) if check_merged else 0
            with self.storage.writing() as tx:
                if not request.allow_protected:
                    check_not_protected(tx, name, "deleting it (that needs admin)")
                if check_merged:
                    check_not_protected(tx, name, "deleting it (without force)")
                    if tx.heads() != heads:
                        continue
                    if lost:
                        raise unmerged_error(name, lost)
                deleted = tx.delete_ref(name, expected)
                if deleted and ref.type is RefType.BRANCH:
                    tx.set_protected(name, False)  # a new branch of that name starts unprotected
            if not deleted:
                raise ReferenceConflict(f"{name!r} is no longer at {expected}: not deleted")
            return
        raise ReferenceConflict(f"refs kept moving while deleting {name!r}: retry")

    def _lost_commits(self, heads: dict[str, str], name: str, head: str) -> int:
        """How many commits reachable from `head` no other ref reaches (git's
        ``rev-list head --not --all``): walked newest generation first, so a commit's flags
        are final when it is popped, and only down to where every side meets."""
        others = [h for n, h in heads.items() if n != name]
        if head in others:
            return 0
        generation = self.objects.generation
        flags: dict[str, int] = {h: 2 for h in others}
        flags[head] = 1
        heap = [(-generation(c), c) for c in flags]
        heapq.heapify(heap)
        pending, lost = 1, 0  # queued commits only `head` reaches; how many were popped
        while heap and pending:
            _, commit_id = heapq.heappop(heap)
            flag = flags[commit_id]
            if flag == 1:
                pending -= 1
                lost += 1
            for parent in self.objects.commit(commit_id).parents:
                old = flags.get(parent)
                new = (old or 0) | flag
                if old is None:
                    heapq.heappush(heap, (-generation(parent), parent))
                    pending += new == 1
                elif old == 1 and new != 1:
                    pending -= 1
                flags[parent] = new
        return lost

    def assign(self, request: RefAssign) -> Ref:
        name = request.name
        ref = self.get(name)
        if ref.type is RefType.TAG:
            raise ReadOnlyRef(f"tag {name!r} is immutable: delete it and create it again")
        target = self.resolve(request.to).commit_id
        expected = self.objects.expand_hash(request.expected_head) if request.expected_head \
            else ref.head
        self.retention.require(None, [target])
        with self.storage.reading() as reader:  # checked again, in the transaction, below
            protected = name in reader.protected_branches()
            if protected and not request.force:
                check_not_protected(reader, name, "resetting it (without force)")
        if protected:
            check_published(self.storage, self.objects, name, expected, target, "a reset")
        # after protection: a reset its guards refuse says so, not what the formats say
        refusal = self.reset_rule(name, self.objects.changes(
            self.objects.root_of(ref.head), self.objects.root_of(target)))
        if refusal is not None:
            raise ConflictError(f"{name!r} cannot be reset to {request.to!r}: {refusal}. "
                                "A rollback writes such a state as the log's next version; "
                                "a merge publishes it")
        operation = "assign"
        with self.storage.writing() as tx:
            if name in tx.protected_branches():
                if not request.force:
                    check_not_protected(tx, name, "resetting it (without force)")
                # a forced reset of a protected branch rolls the whole branch back: only
                # to a state published on it (its first-parent chain), as a recovery
                require_published_on(tx, self.objects, name, expected, target, "a reset")
                operation = RECOVERY_RESET
            self.retention.require(tx, [target])
            tx.move_branch(name, expected, target, operation)
        return Ref(name, ref.type, target)

    # ---- ref expressions ------------------------------------------------------------------
    def get_commit(self, commit_id: str) -> Commit:
        if not isinstance(commit_id, str) or not is_commit_hash(commit_id):
            raise InvalidRefExpression(f"{commit_id!r} is not a commit id")
        return self.objects.commit(self.objects.expand_hash(commit_id))

    def resolve(self, expression: str) -> ResolvedRef:
        expr = parse_ref_expression(expression)
        # a full commit id never names a ref (names.py), so it needs no ref lookup
        ref = None if len(expr.base) == FULL_HASH_LENGTH and is_commit_hash(expr.base) \
            else self.storage.find_ref(expr.base)
        if ref is not None:
            head = ref.head
        elif is_commit_hash(expr.base):
            head = self.objects.expand_hash(expr.base)
        else:
            raise self._not_found(f"no branch, tag or commit named {expr.base!r}",
                                      expr.base)
        if expr.reflog is not None:
            if ref is None:
                raise RefNotFound(f"{expression!r}: no branch or tag named {expr.base!r} "
                                  "(only a ref has previous heads; a commit has none)")
            head = self._previous_head(ref.name, expr.reflog, expression)
        if expr.as_of is not None:
            head = self._as_of(ref, head, expr.as_of, expression)
        for _ in range(expr.ancestors):
            commit = self.objects.commit(head)
            if not commit.parents:
                raise RefNotFound(f"{expression!r} goes back past the first commit")
            head = commit.parents[0]
        writable = ref is not None and ref.type is RefType.BRANCH and expr.is_plain
        return ResolvedRef(expression, head, ref.name if writable and ref else None, ref)

    def _previous_head(self, name: str, n: int, expression: str) -> str:
        """`name@{n}`: the head of its n-th newest reflog entry (git's `@{n}`), counted
        since the ref was last created (a deleted ref's earlier life is not its past)."""
        heads = self.storage.reflog_heads(name, n + 1)
        if len(heads) <= n or None in heads:
            alive = heads.index(None) if None in heads else len(heads)
            raise RefNotFound(f"{expression!r}: {name!r} has had only {alive} head(s) "
                              f"(its reflog, {name}@{{0}} to {name}@{{{alive - 1}}})")
        head = heads[n]
        assert head is not None
        return head

    def _as_of(self, ref: Ref | None, head: str, when: datetime, expression: str) -> str:
        if ref is not None:
            found, then = self.storage.reflog_head_at(ref.name, when)
            if not found or then is None:
                raise RefNotFound(f"{ref.name!r} did not exist at {when.isoformat()}")
            return then
        commit = self.objects.commit(head)  # a commit: walk its first parents
        while commit.timestamp > when:
            if not commit.parents:
                raise RefNotFound(f"{expression!r}: no commit that old")
            commit = self.objects.commit(commit.parents[0])
        return commit.id

    def writable_branch(self, branch: str) -> Ref:
        if not isinstance(branch, str):
            raise InvalidInput("a branch name must be a string")
        resolved = self.resolve(branch)
        if resolved.branch is None:
            if resolved.ref is not None and resolved.ref.type is RefType.TAG and \
                    resolved.expression == resolved.ref.name:
                raise ReadOnlyRef(f"tag {branch!r} is read-only: write to a branch")
            raise ReadOnlyRef(f"{branch!r} is not a branch and is read-only: "
                              "commits, tags and time-travel expressions cannot be written")
        assert resolved.ref is not None
        return resolved.ref
