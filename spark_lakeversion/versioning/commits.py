"""Commits over any storage: a commit applies its Put/Delete operations to the branch's
tree and moves the branch by compare-and-swap; on a moved branch it lands only if none of
its keys changed since the expected head (the key-level conflict check). Also the reads of
table states at a ref: contents, listings and diffs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from spark_lakeversion.errors import ConflictError, GcEpochChanged, InvalidInput, ReferenceConflict
from spark_lakeversion.limits import Limits, check_commit
from spark_lakeversion.locations import check_new_key
from spark_lakeversion.model import (
    Commit,
    Conflict,
    ConflictType,
    Content,
    Delete,
    DiffEntry,
    DiffKind,
    Key,
    KeyLike,
    Operation,
    Put,
)
from spark_lakeversion.store.objects import content_hash, make_commit, to_us
from spark_lakeversion.store.spi import Storage, StorageWriter
from spark_lakeversion.versioning.interface import DEFAULT_AUTHOR
from spark_lakeversion.versioning.objects import Objects
from spark_lakeversion.versioning.protection import check_not_protected
from spark_lakeversion.versioning.refs import MAX_CAS_ATTEMPTS, Refs
from spark_lakeversion.versioning.requests import CommitRequest
from spark_lakeversion.versioning.retention import Retention
from spark_lakeversion.versioning.tree import TreeWriter

#: a tree given as another root and the changes that turn it into the wanted tree
SameTree = tuple[str | None, Mapping[Key, Content | None]]


def check_properties(properties: Mapping[str, str] | None) -> dict[str, str]:
    if properties is None:
        return {}
    if not isinstance(properties, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in properties.items()):
        raise InvalidInput("commit properties must map strings to strings")
    return dict(properties)


def operations_to_changes(operations: Sequence[Operation]) -> dict[Key, Content | None]:
    changes: dict[Key, Content | None] = {}
    for op in operations:
        if isinstance(op, Put):
            if not isinstance(op.content, Content):
                raise InvalidInput(f"Put({op.key}) needs a Content value")
            value: Content | None = op.content
        elif isinstance(op, Delete):
            value = None
        else:
            raise InvalidInput(f"unknown operation {op!r}: use Put or Delete")
        key = Key.of(op.key)
        if key in changes:
            raise InvalidInput(f"key {key} appears twice in one commit")
        changes[key] = value
    return changes


class CommitListener(Protocol):
    """Who hears of table commits (the gates' notifications, `gates.notify`)."""

    def to_tell(self, tx: StorageWriter, branch: str) -> list[Any]:
        """Whom to tell about a commit to `branch` (read in its transaction)."""

    def committed(self, told: list[Any], branch: str, parent: str, commit: Commit,
                  changes: Mapping[Key, Content | None]) -> None:
        """Told after a table commit landed (post-commit notifications)."""


class Commits:
    """Table commits and the reads of table states at a ref."""

    def __init__(self, storage: Storage, objects: Objects, limits: Limits, refs: Refs,
                 retention: Retention, listener: CommitListener) -> None:
        self.storage = storage
        self.objects = objects
        self.limits = limits
        self.refs = refs
        self.retention = retention
        self.listener = listener

    # ---- reads ------------------------------------------------------------------------
    def get_contents(self, ref: str, keys: Iterable[KeyLike]) -> dict[Key, Content]:
        wanted = [Key.of(k) for k in keys]
        return self.objects.values(self.objects.root_of(self.refs.resolve(ref).commit_id), wanted)

    def list_keys(self, ref: str, prefix: KeyLike | None = None) -> list[tuple[Key, Content]]:
        root = self.objects.root_of(self.refs.resolve(ref).commit_id)
        if prefix is None or prefix == "" or prefix == ():
            lo, hi = "", None
        else:
            stored = Key.of(prefix).stored
            lo, hi = stored + "\x00", stored + "\x01"
        entries = list(self.objects.trees.items(root, lo, hi))
        contents = self.objects.load_contents(h for _, h in entries)
        return [(Key.from_stored(k), contents[h]) for k, h in entries]

    def diff(self, from_ref: str, to_ref: str) -> list[DiffEntry]:
        a = self.objects.root_of(self.refs.resolve(from_ref).commit_id)
        b = self.objects.root_of(self.refs.resolve(to_ref).commit_id)
        out = []
        for key, (before, after) in sorted(self.objects.changes(a, b).items()):
            kind = DiffKind.ADDED if before is None else \
                DiffKind.REMOVED if after is None else DiffKind.CHANGED
            out.append(DiffEntry(key, kind, before, after))
        return out

    # ---- writes -----------------------------------------------------------------------
    def write(self, tx: StorageWriter, branch: str | None, expected_head: str,
                      parents: tuple[str, ...], base_root: str | None,
                      changes: Mapping[Key, Content | None], author: str, message: str,
                      properties: Mapping[str, str], operation: str,
                      same_tree_from: SameTree | None = None) -> Commit:
        """Store the tree change and the commit, then CAS the branch, in `tx`.

        `changes` are relative to the first parent (what the commit records); the new tree
        is `base_root` + `changes`, or, when given, `same_tree_from` = (another root, the
        changes that turn it into that same tree): trees are canonical, so either way gives
        the same root, and the caller picks the cheaper one. With `branch` None, no ref
        moves: the commit is a merge preview, published later by the gate (`gates.gate`).
        """
        writer = TreeWriter()
        content_rows: dict[str, str] = {}
        tree_changes: dict[str, str | None] = {}
        for key, content in changes.items():
            if content is None:
                tree_changes[key.stored] = None
            else:
                h, data = content_hash(content)
                content_rows[h] = data
                tree_changes[key.stored] = h
                self.objects.contents.put(h, content)
        start_root = base_root
        if same_tree_from is not None:
            start_root, other_changes = same_tree_from
            tree_changes = {
                key.stored: None if content is None else content_hash(content)[0]
                for key, content in other_changes.items()}
        root = self.objects.trees.apply(start_root, tree_changes, writer)
        ts_us = max(int(time.time() * 1_000_000),
                    to_us(self.objects.commit(parents[0]).timestamp) + 1)
        commit = make_commit(parents, root, author, message, ts_us, properties)
        generation = 1 + max(self.objects.generation(p) for p in parents)
        tx.put_objects(content_rows, writer.encoded, changes.values())
        tx.put_commit(commit, generation, list(changes))
        if branch is not None:
            # the ref moved at the commit's own time, so `branch#<commit time>` finds it
            tx.move_branch(branch, expected_head, commit.id, operation, ts_us)
        for h, n in writer.nodes.items():
            self.objects.nodes.put(h, n)
        return commit

    def commit(self, request: CommitRequest,
               recovery: Callable[[str], None] | None = None) -> Commit:
        """`recovery`: a rollback, allowed on a protected branch when it restores a state
        published there; called with the head the commit goes onto, in its transaction,
        it raises `ProtectedBranch` when that is not so."""
        message, author = request.message, request.author
        expected_head, expected_gc_epoch = request.expected_head, request.expected_gc_epoch
        from_commits = request.from_commits
        changes = operations_to_changes(request.operations)
        for key, value in changes.items():
            if value is not None:  # a new or changed key: it must be a safe name
                check_new_key(key.elements, "key element")
        if not isinstance(message, str):
            raise InvalidInput("a commit message must be a string")
        props = check_properties(request.properties)
        check_commit(self.limits, message=message, author=author, properties=props,
                     changes=changes)
        ref = self.refs.writable_branch(request.branch)
        base = self.objects.expand_hash(expected_head) if expected_head else ref.head
        base_values = self.objects.values(self.objects.root_of(base), changes) \
            if expected_head else None
        head = ref.head
        for _ in range(MAX_CAS_ATTEMPTS):
            head_root = self.objects.root_of(head)
            if base_values is not None and head != base:
                self._check_unchanged(ref.name, base, base_values, head_root, changes)
            try:
                with self.storage.writing() as tx:
                    if recovery is None:
                        check_not_protected(tx, ref.name, "a direct commit")
                    elif ref.name in tx.protected_branches():
                        recovery(head)
                    if expected_gc_epoch is not None or from_commits:
                        self.check_gc_epoch(tx, expected_gc_epoch)
                        self.retention.require(tx, from_commits)
                    commit = self.write(tx, ref.name, head, (head,), head_root, changes,
                                        author or DEFAULT_AUTHOR, message, props, "commit")
                    told = self.listener.to_tell(tx, ref.name)
                self.objects.written(commit)
                if told:
                    self.listener.committed(told, ref.name, head, commit, changes)
                return commit
            except ReferenceConflict:
                if base_values is None:  # based on the head we read: re-check from there
                    base, base_values = head, self.objects.values(head_root, changes)
                head = self.refs.get(ref.name).head
        raise ReferenceConflict(f"branch {ref.name!r} kept moving; gave up after "
                                f"{MAX_CAS_ATTEMPTS} attempts")

    def _check_unchanged(self, branch: str, base: str, base_values: Mapping[Key, Content],
                         head_root: str | None, keys: Iterable[Key]) -> None:
        current = self.objects.values(head_root, keys)
        changed = [k for k in keys if current.get(k) != base_values.get(k)]
        if changed:
            conflicts = [Conflict(ConflictType.VALUE_DIFFERS, k,
                                  f"{k} changed on {branch!r} since {base[:12]}")
                         for k in changed]
            raise ConflictError(
                f"{', '.join(map(str, changed))} changed on {branch!r} since the expected head "
                f"{base[:12]}: re-read and try again", conflicts)

    @staticmethod
    def check_gc_epoch(tx: StorageWriter, expected: int | None) -> None:
        if expected is None:
            return
        state = tx.hold_gc_state()
        if state.epoch != expected:
            raise GcEpochChanged(
                f"gc started a new run (epoch {state.epoch}, expected {expected}) while this "
                "commit was checked: its files were not checked against gc's new cutoff, so "
                "nothing was committed; retry the commit")
