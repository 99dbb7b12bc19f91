"""Grants enforced once: `AccessControlledStore` wraps any `VersionStore` for a principal.

Every surface of the server (Iceberg REST, `/api/v1`, the CLI and Spark over HTTP, the
embedded server) reaches the store through this wrapper, so one table (`RULES`) decides
who may do what. Each operation checks its permission on the ref(s) it touches *before*
delegating (a refusal writes nothing) and leaves an audit record (done, denied or failed)
in the store. Listings show only refs the principal may read.

Reads by commit id and time travel: `main~2` and `main#<time>` need `read` on `main`; a
commit id (or prefix) needs a store-wide `read` grant (`refs = "*"`), or `read` on a ref
whose history contains that commit.

Commits carry the principal as author; an author the client sent is kept in the commit's
`lakeversion.client-author` property (the single `--token` principal keeps the client's
author, as before: it names nobody).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from spark_lakeversion.auth.grants import EVERY_REF, Permission, Principal
from spark_lakeversion.errors import FORBIDDEN_PREFIX, Forbidden, LakeVersionError, RefNotFound
from spark_lakeversion.limits import Limits
from spark_lakeversion.model import (
    MAX_AUDIT_RECORDS,
    AuditRecord,
    CheckReport,
    CheckRun,
    CheckSpec,
    Commit,
    Content,
    DiffEntry,
    GcState,
    Key,
    KeyLike,
    MergeResult,
    Operation,
    Outcome,
    Ref,
    ReflogEntry,
    RefType,
    ResolvedRef,
)
from spark_lakeversion.versioning.gates.policy import CheckPolicy
from spark_lakeversion.versioning.interface import (
    DEFAULT_BRANCH,
    TABLE_STATES_PAGE,
    LogPage,
    TableStatesPage,
    VersionStore,
)
from spark_lakeversion.versioning.names import (
    FULL_HASH_LENGTH,
    is_commit_hash,
    parse_ref_expression,
)
from spark_lakeversion.versioning.options import MergeOptions
from spark_lakeversion.versioning.suggest import rehint

T = TypeVar("T")
log = logging.getLogger("spark_lakeversion.audit")
CLIENT_AUTHOR = "lakeversion.client-author"

READ, WRITE, CREATE, DELETE, MERGE, ADMIN = (
    Permission.READ, Permission.WRITE, Permission.CREATE, Permission.DELETE,
    Permission.MERGE, Permission.ADMIN)


class AccessControlledStore(VersionStore):
    """`inner` as seen by the principal `principal()` returns (called once per operation,
    so the server can pass the request's principal through a context variable)."""

    def __init__(self, inner: VersionStore, principal: Principal | Callable[[], Principal]
                 ) -> None:
        self.inner = inner
        self.url = inner.url
        self._principal: Callable[[], Principal] = \
            principal if callable(principal) else (lambda: principal)

    @property
    def limits(self) -> Limits:
        return self.inner.limits

    @property
    def io_properties(self) -> Mapping[str, str]:
        return self.inner.io_properties

    @property
    def check_policy(self) -> CheckPolicy:
        return self.inner.check_policy

    # ---- the checks -------------------------------------------------------------------
    def _denied(self, who: Principal, permission: Permission, ref: str,
                operation: str) -> Forbidden:
        error = Forbidden(f"{FORBIDDEN_PREFIX}principal {who.name!r} lacks {permission.value!r}"
                          f" on {_shown(ref)} (needed for {operation})")
        self._audit(who, operation, ref, Outcome.DENIED, error.message)
        return error

    def _require(self, who: Principal, permission: Permission, ref: str,
                 operation: str) -> None:
        allowed = who.may_everywhere(permission) if ref == EVERY_REF \
            else who.may(permission, ref)
        if not allowed:
            raise self._denied(who, permission, ref, operation)

    def _require_read(self, who: Principal, expression: str, operation: str) -> None:
        """The read rule for ref expressions (module docstring)."""
        if who.may_everywhere(READ):
            return
        base = parse_ref_expression(expression).base
        if not is_commit_hash(base) or self._is_ref(base):
            self._require(who, READ, base, operation)
            return
        try:
            commit_id = self.inner.resolve(base).commit_id
        except RefNotFound as exc:
            raise self._rehinted(who, exc) from None
        if not self._reads_commit(who, commit_id):
            raise self._denied(who, READ, f"commit {base}", operation)

    def _reads_commit(self, who: Principal, commit_id: str) -> bool:
        """Whether a ref `who` may read holds `commit_id` in its history."""
        return any(who.may(READ, ref.name) and (
            ref.head == commit_id or self.inner.merge_base(commit_id, ref.head) == commit_id)
            for ref in self.inner.list_refs())

    def _is_ref(self, name: str) -> bool:
        if len(name) == FULL_HASH_LENGTH:  # a full commit id never names a ref
            return False
        try:
            self.inner.get_ref(name)
        except RefNotFound:
            return False
        return True

    def _audit(self, who: Principal, operation: str, ref: str | None, outcome: Outcome,
               detail: str = "") -> None:
        """Keep the record; if the store cannot, the operation's own answer still stands
        (it may have landed), and the loss is logged."""
        record = AuditRecord(datetime.now(timezone.utc), who.name, operation, ref, outcome,
                             detail)
        try:
            self.inner.record_audit(record)
        except Exception:
            log.exception("audit record lost: %s %s %s %s", who.name, operation, ref,
                          outcome.value)

    def _read(self, operation: str, expressions: Iterable[str], call: Callable[[], T]) -> T:
        who = self._principal()
        for expression in expressions:
            self._require_read(who, expression, operation)
        try:
            return call()
        except RefNotFound as exc:
            raise self._rehinted(who, exc) from None

    def _mutate(self, operation: str, ref: str,
                needs: Sequence[tuple[Permission, str]], reads: Iterable[str],
                call: Callable[[Principal], T]) -> T:
        """Check every (permission, ref) and read, then run and audit the mutation."""
        who = self._principal()
        for permission, name in needs:
            self._require(who, permission, name, operation)
        for expression in reads:
            self._require_read(who, expression, operation)
        try:
            result = call(who)
        except LakeVersionError as exc:
            self._audit(who, operation, ref, Outcome.FAILED, exc.code)
            if isinstance(exc, RefNotFound):
                raise self._rehinted(who, exc) from None
            raise
        self._audit(who, operation, ref, Outcome.DONE)
        return result

    def _rehinted(self, who: Principal, error: RefNotFound) -> RefNotFound:
        """The error's "did you mean" chosen among the refs `who` may read only."""
        if who.may_everywhere(READ):
            return error
        return rehint(error, who.readable(r.name for r in self.inner.list_refs()))

    def _authored(self, who: Principal, author: str | None,
                  properties: Mapping[str, str] | None) -> tuple[str | None, dict[str, str]]:
        """(author, properties) of a commit this principal makes."""
        props = dict(properties or {})
        if who.unrestricted:
            return author, props
        if author and author != who.name:
            props[CLIENT_AUTHOR] = author
        return who.name, props

    # ---- refs -------------------------------------------------------------------------
    def list_refs(self, type: RefType | None = None) -> list[Ref]:
        who = self._principal()
        return [r for r in self.inner.list_refs(type) if who.may(READ, r.name)]

    def get_ref(self, name: str) -> Ref:
        return self._read("get_ref", [name], lambda: self.inner.get_ref(name))

    def create_ref(self, name: str, type: RefType = RefType.BRANCH,
                   from_ref: str = DEFAULT_BRANCH) -> Ref:
        return self._mutate("create_ref", name, [(CREATE, name)], [from_ref],
                            lambda _: self.inner.create_ref(name, type, from_ref))

    def delete_ref(self, name: str, type: RefType | None = None,
                   expected_head: str | None = None, force: bool = False) -> None:
        """`force` deletes a branch with commits no other ref holds (`delete` is enough) or
        a protected branch (that needs `admin` too)."""
        protected = force and name in self.inner.protected_branches()
        needs = [(DELETE, name)] + ([(ADMIN, name)] if protected else [])
        self._mutate("delete_ref", name, needs, [],
                     lambda _: self.inner.delete_ref(name, type, expected_head, force=force))

    def assign_ref(self, name: str, to: str, expected_head: str | None = None,
                   force: bool = False) -> Ref:
        """A branch reset needs `write` (tags are immutable: the store refuses them);
        `force` (resetting a protected branch) needs `admin` too."""
        needs = [(WRITE, name)] + ([(ADMIN, name)] if force else [])
        return self._mutate("assign_ref", name, needs, [to],
                            lambda _: self.inner.assign_ref(name, to, expected_head,
                                                            force=force))

    # ---- merge gates: protection and check settings need admin on the branch -------------
    def protect_branch(self, name: str) -> bool:
        return self._mutate("protect_branch", name, [(ADMIN, name)], [],
                            lambda _: self.inner.protect_branch(name))

    def unprotect_branch(self, name: str) -> bool:
        return self._mutate("unprotect_branch", name, [(ADMIN, name)], [],
                            lambda _: self.inner.unprotect_branch(name))

    def protected_branches(self) -> set[str]:
        who = self._principal()
        return {b for b in self.inner.protected_branches() if who.may(READ, b)}

    def add_check(self, spec: CheckSpec, allow_missing: bool = False) -> CheckSpec:
        return self._mutate("add_check", spec.branch, [(ADMIN, spec.branch)], [],
                            lambda _: self.inner.add_check(spec, allow_missing))

    def test_check(self, branch: str, name: str, source: str | None = None) -> CheckReport:
        """As a dry-run merge: `read` on the branch and on the source."""
        return self._read("test_check", [branch, *([source] if source else [])],
                          lambda: self.inner.test_check(branch, name, source))

    def remove_check(self, branch: str, name: str) -> bool:
        return self._mutate("remove_check", branch, [(ADMIN, branch)], [],
                            lambda _: self.inner.remove_check(branch, name))

    def list_checks(self, branch: str | None = None) -> list[CheckSpec]:
        who = self._principal()
        if branch is not None:
            self._require(who, READ, branch, "list_checks")
        return [c for c in self.inner.list_checks(branch) if who.may(READ, c.branch)]

    def check_runs(self, branch: str | None = None, limit: int = 50) -> list[CheckRun]:
        who = self._principal()
        if branch is not None:
            self._require(who, READ, branch, "check_runs")
        # a run's samples are rows of its target and its source: both must be readable
        readable: dict[str, bool] = {}
        return [r for r in self.inner.check_runs(branch, limit)
                if who.may(READ, r.branch) and self._may_read(who, r.source, readable)]

    def _may_read(self, who: Principal, expression: str, seen: dict[str, bool]) -> bool:
        """`_require_read` as a yes/no, without an audit record per listed row."""
        if expression not in seen:
            try:
                base = parse_ref_expression(expression).base
                if who.may_everywhere(READ):
                    seen[expression] = True
                elif not is_commit_hash(base) or self._is_ref(base):
                    seen[expression] = who.may(READ, base)
                else:
                    seen[expression] = self._reads_commit(
                        who, self.inner.resolve(base).commit_id)
            except LakeVersionError:
                seen[expression] = who.may_everywhere(READ)
        return seen[expression]

    def preview_commits(self, since: datetime) -> list[str]:
        """What gc keeps: store-wide, like gc's other reads."""
        self._require(self._principal(), ADMIN, EVERY_REF, "preview_commits")
        return self.inner.preview_commits(since)

    def resolve(self, expression: str) -> ResolvedRef:
        return self._read("resolve", [expression], lambda: self.inner.resolve(expression))

    # ---- commits ----------------------------------------------------------------------
    def commit(self, branch: str, operations: Sequence[Operation], *, message: str,
               author: str | None = None, properties: Mapping[str, str] | None = None,
               expected_head: str | None = None,
               expected_gc_epoch: int | None = None) -> Commit:
        def run(who: Principal) -> Commit:
            by, props = self._authored(who, author, properties)
            return self.inner.commit(branch, operations, message=message, author=by,
                                     properties=props, expected_head=expected_head,
                                     expected_gc_epoch=expected_gc_epoch)
        return self._mutate("commit", branch, [(WRITE, branch)], [], run)

    def get_commit(self, commit_id: str) -> Commit:
        return self._read("get_commit", [commit_id], lambda: self.inner.get_commit(commit_id))

    def log(self, ref: str, *, key: KeyLike | None = None, limit: int = 50,
            page_token: str | None = None) -> LogPage:
        return self._read("log", [ref], lambda: self.inner.log(
            ref, key=key, limit=limit, page_token=page_token))

    # ---- contents ---------------------------------------------------------------------
    def get_contents(self, ref: str, keys: Iterable[KeyLike]) -> dict[Key, Content]:
        return self._read("get_contents", [ref], lambda: self.inner.get_contents(ref, keys))

    def list_keys(self, ref: str, prefix: KeyLike | None = None) -> list[tuple[Key, Content]]:
        return self._read("list_keys", [ref], lambda: self.inner.list_keys(ref, prefix))

    def diff(self, from_ref: str, to_ref: str) -> list[DiffEntry]:
        return self._read("diff", [from_ref, to_ref],
                          lambda: self.inner.diff(from_ref, to_ref))

    # ---- merging ----------------------------------------------------------------------
    def merge_base(self, a: str, b: str) -> str | None:
        return self._read("merge_base", [a, b], lambda: self.inner.merge_base(a, b))

    def merge_with(self, source: str, target: str, options: MergeOptions) -> MergeResult:
        def run(who: Principal) -> MergeResult:
            by, props = self._authored(who, options.author, options.properties)
            return self.inner.merge_with(source, target, MergeOptions.from_dict(
                {**options.to_dict(), "author": by, "properties": props}))
        needs = [(READ if options.dry_run else MERGE, target)]
        return self._mutate("merge", target, needs, [source], run)

    def cherry_pick(self, commit_ids: Sequence[str], onto: str, *, dry_run: bool = False,
                    author: str | None = None,
                    expected_head: str | None = None) -> MergeResult:
        return self._mutate(
            "cherry_pick", onto, [(READ if dry_run else WRITE, onto)], commit_ids,
            lambda who: self.inner.cherry_pick(
                commit_ids, onto, dry_run=dry_run, author=self._authored(who, author, {})[0],
                expected_head=expected_head))

    def revert(self, commit_id: str, on: str, *, dry_run: bool = False,
               author: str | None = None, expected_head: str | None = None) -> MergeResult:
        return self._mutate(
            "revert", on, [(READ if dry_run else WRITE, on)], [commit_id],
            lambda who: self.inner.revert(
                commit_id, on, dry_run=dry_run, author=self._authored(who, author, {})[0],
                expected_head=expected_head))

    def rollback_table(self, branch: str, key: KeyLike, to: str, *,
                       author: str | None = None, message: str | None = None,
                       expected_head: str | None = None,
                       properties: Mapping[str, str] | None = None) -> Commit:
        return self._mutate(
            "rollback", branch, [(WRITE, branch)], [to],
            lambda who: self._rollback(who, branch, key, to, author, message,
                                       expected_head, properties))

    def _rollback(self, who: Principal, branch: str, key: KeyLike, to: str,
                  author: str | None, message: str | None, expected_head: str | None,
                  properties: Mapping[str, str] | None) -> Commit:
        by, props = self._authored(who, author, properties)
        return self.inner.rollback_table(branch, key, to, author=by, message=message,
                                         expected_head=expected_head, properties=props)

    # ---- file safety: the server's own overlap check, which must see every table --------
    def location_owner(self, location: str, content_id: str | None = None
                       ) -> tuple[str, str] | None:
        return self.inner.location_owner(location, content_id)

    # ---- store-wide: gc, its reads and the audit trail need admin on every ref ----------
    def reflog(self, since: datetime) -> list[ReflogEntry]:
        self._require(self._principal(), ADMIN, EVERY_REF, "reflog")
        return self.inner.reflog(since)

    def table_states(self, page_token: str | None = None,
                     limit: int = TABLE_STATES_PAGE) -> TableStatesPage:
        self._require(self._principal(), ADMIN, EVERY_REF, "table_states")
        return self.inner.table_states(page_token, limit)

    def gc_state(self) -> GcState:
        """Open to every principal: commits read gc's epoch (it holds no table data)."""
        return self.inner.gc_state()

    def begin_gc(self, cutoff: datetime, retained_since: datetime) -> GcState:
        return self._mutate("gc", EVERY_REF, [(ADMIN, EVERY_REF)], [],
                            lambda _: self.inner.begin_gc(cutoff, retained_since))

    def audit(self, since: datetime | None = None, principal: str | None = None,
              limit: int = MAX_AUDIT_RECORDS) -> list[AuditRecord]:
        self._require(self._principal(), ADMIN, EVERY_REF, "audit")
        return self.inner.audit(since, principal, limit)

    def record_audit(self, record: AuditRecord) -> None:
        self.inner.record_audit(record)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        """An operation this wrapper has no rule for is refused, never passed through."""
        if name.startswith("_") or not hasattr(self.inner, name):
            raise AttributeError(name)
        raise Forbidden(f"{FORBIDDEN_PREFIX}{name} has no access rule "
                        "(spark_lakeversion.versioning.access)")


def _shown(ref: str) -> str:
    if ref == EVERY_REF:
        return "every ref (a grant with refs = \"*\")"
    return ref if ref.startswith("commit ") else f"ref {ref!r}"
