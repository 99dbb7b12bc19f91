"""Handles on named refs: `Tag` (an immutable named commit) and `Branch` (the only kind
writes go to: commits, transactions, resets, merge gates, reverts, picks, rollbacks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from spark_lakeversion.api.reference import (
    HandleCatalog,
    Reference,
    RefLike,
    ref_expression,
)
from spark_lakeversion.api.transaction import Transaction
from spark_lakeversion.errors import AlreadyExists, InvalidInput, ReadOnlyRef, RefNotFound
from spark_lakeversion.model import (
    CheckKind,
    CheckReport,
    CheckRun,
    CheckSpec,
    Commit,
    Key,
    KeyLike,
    MergeResult,
    Operation,
    Ref,
    RefType,
)
from spark_lakeversion.versioning import DEFAULT_BRANCH
from spark_lakeversion.versioning.names import validate_ref_name

_Named = TypeVar("_Named", bound="_NamedRef")


class _NamedRef(Reference):
    """A branch or tag handle: an exact name of a known type."""

    ref_type: RefType

    def __init__(self, catalog: HandleCatalog, name: str) -> None:
        super().__init__(catalog, validate_ref_name(name))

    @property
    def name(self) -> str:
        return self.expression

    def get_ref(self) -> Ref:
        ref = self.store.get_ref(self.name)
        if ref.type is not self.ref_type:
            raise RefNotFound(f"no {self.ref_type.value.lower()} named {self.name!r} "
                              f"(it is a {ref.type.value.lower()})")
        return ref

    @property
    def head(self) -> Commit:
        return self.store.get_commit(self.get_ref().head)

    def previous(self, n: int = 1) -> Reference:
        """Its `n`-th previous head, from the reflog (``name@{n}``; 0 is the head): on a
        protected branch, ``previous(1)`` is the state before its last publication."""
        return self.catalog.ref(f"{self.name}@{{{int(n)}}}")

    def exists(self) -> bool:
        try:
            self.get_ref()
        except RefNotFound:
            return False
        return True

    def create(self: _Named, from_: RefLike = DEFAULT_BRANCH, *,
               exist_ok: bool = False) -> _Named:
        """Create the ref at what `from_` resolves to (O(1): nothing is copied);
        `exist_ok` tolerates an existing ref of the same type."""
        source = ref_expression(from_)
        try:
            self.store.create_ref(self.name, self.ref_type, from_ref=source)
        except AlreadyExists:
            if not exist_ok or self.store.get_ref(self.name).type is not self.ref_type:
                raise
        return self

    def delete(self, *, expected_head: str | None = None, force: bool = False) -> None:
        """Delete this ref. A branch holding commits that no other branch or tag holds
        (`UnmergedBranch`, git's ``-d``) or a protected branch (an admin action) only with
        `force`."""
        self.store.delete_ref(self.name, self.ref_type, expected_head=expected_head,
                              force=force)


class Tag(_NamedRef):
    """An immutable named commit."""

    ref_type = RefType.TAG


class Branch(_NamedRef):
    """A movable ref: the only kind writes go to."""

    ref_type = RefType.BRANCH

    def commit(self, operations: Sequence[Operation], *, message: str,
               properties: Mapping[str, str] | None = None,
               expected_head: str | None = None) -> Commit:
        """Apply Put/Delete operations atomically as one commit."""
        return self.store.commit(self.name, list(operations), message=message,
                                 author=self.catalog.author,
                                 properties={**self.catalog.properties, **(properties or {})}
                                 or None,
                                 expected_head=expected_head)

    def transaction(self, message: str = "transaction", *,
                    properties: Mapping[str, str] | None = None) -> Transaction:
        """Collect table changes and commit them as one commit on exit; nothing on error."""
        return Transaction(self, message, properties)

    def ref_for_write(self) -> Ref:
        """This branch's ref before a write: a tag of this name is `ReadOnlyRef`."""
        ref = self.store.get_ref(self.name)
        if ref.type is not RefType.BRANCH:
            raise ReadOnlyRef(f"{self.name!r} is a {ref.type.value.lower()}, not a branch: "
                              "it is read-only")
        return ref

    def reset(self, to: RefLike, *, expected_head: str | None = None,
              force: bool = False) -> Branch:
        """Point this branch at what `to` resolves to (like ``git reset --hard``); a
        protected branch only with `force` (an admin action) and only to a state published
        on it (its first-parent history, e.g. ``previous(1)`` after a merge)."""
        self.ref_for_write()
        self.store.assign_ref(self.name, ref_expression(to), expected_head=expected_head,
                              force=force)
        return self

    # ---- merge gates ----------------------------------------------------------------------
    @property
    def protected(self) -> bool:
        return self.name in self.store.protected_branches()

    def protect(self, *, require_approvals: int | None = None) -> bool:
        """Refuse direct writes to this branch: merges (through its checks) only;
        `require_approvals`: merges then need that many approvals of a merge request."""
        return self.store.protect_branch(self.name, require_approvals)

    def unprotect(self) -> bool:
        return self.store.unprotect_branch(self.name)

    def add_check(self, name: str, *, sql: str | None = None, python: str | None = None,
                  webhook: str | None = None, notify: str | None = None,
                  tables: Sequence[str] = (), timeout: float = 60.0,
                  allow_missing: bool = False) -> CheckSpec:
        """Attach one check to merges into this branch: give exactly one of `sql` (a query
        selecting violating rows), `python` (``module:function`` or an entry point of group
        ``spark_lakeversion.checks``), `webhook` (a URL; 2xx passes) or `notify` (a URL
        told after each merge lands; never blocks). It is validated first, a SQL check by
        running it once on this branch; `allow_missing` accepts a table no ref has yet."""
        given = {CheckKind.SQL: sql, CheckKind.PYTHON: python, CheckKind.WEBHOOK: webhook,
                 CheckKind.NOTIFY: notify}
        chosen = [(kind, spec) for kind, spec in given.items() if spec is not None]
        if len(chosen) != 1:
            raise InvalidInput("give exactly one of sql=, python=, webhook=, notify=")
        kind, spec = chosen[0]
        return self.store.add_check(CheckSpec(self.name, name, kind, spec, tuple(tables),
                                              timeout), allow_missing)

    def test_check(self, name: str, source: RefLike | None = None) -> CheckReport:
        """Run check `name` on the preview of merging `source` into this branch (on the
        branch as it is without one): the report; nothing is merged or recorded."""
        return self.store.test_check(self.name, name,
                                     None if source is None else ref_expression(source))

    def remove_check(self, name: str) -> bool:
        return self.store.remove_check(self.name, name)

    def checks(self) -> list[CheckSpec]:
        return self.store.list_checks(self.name)

    def check_runs(self, limit: int = 50) -> list[CheckRun]:
        """The latest check runs of merges into this branch, newest first."""
        return self.store.check_runs(self.name, limit)

    def revert(self, commit: RefLike, *, dry_run: bool = False) -> MergeResult:
        """Undo one commit's changes on this branch, as a new commit."""
        commit_id = self.store.resolve(ref_expression(commit)).commit_id
        return self.store.revert(commit_id, self.name, dry_run=dry_run,
                                 author=self.catalog.author)

    def cherry_pick(self, *commits: RefLike, dry_run: bool = False) -> MergeResult:
        ids = [self.store.resolve(ref_expression(c)).commit_id for c in commits]
        if not ids:
            raise InvalidInput("cherry_pick needs at least one commit")
        return self.store.cherry_pick(ids, self.name, dry_run=dry_run,
                                      author=self.catalog.author)

    def rollback_table(self, key: KeyLike, *, to: RefLike, message: str | None = None,
                       properties: Mapping[str, str] | None = None) -> Commit:
        """Set one table to its state at `to` (deleting it if absent there), as a new commit
        carrying the catalog's properties (a run's id) and `properties`."""
        return self.store.rollback_table(
            self.name, Key.of(key), ref_expression(to), author=self.catalog.author,
            message=message, properties={**self.catalog.properties, **(properties or {})})
