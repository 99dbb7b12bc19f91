"""Grants enforced once: `AccessControlledStore` wraps any `VersionStore` for a principal.

Every surface of the server (Iceberg REST, `/api/v1`, the CLI and Spark over HTTP, the
embedded server) reaches the store through this wrapper, so one table (`RULES`, one row
per `VersionStore` operation) decides who may do what, applied by one wrapper
(`AccessControlledStore._apply`); an operation without a row is refused. Each operation
checks its permission on the ref(s) it touches *before* delegating (a refusal writes
nothing) and a write leaves an audit record (done, denied or failed) in the store.
Listings show only refs the principal may read.

Reads by commit id and time travel: `main~2` and `main#<time>` need `read` on `main`; a
commit id (or prefix) needs a store-wide `read` grant (`refs = "*"`), or `read` on a ref
whose history contains that commit.

Commits carry the principal as author; an author the client sent is kept in the commit's
`lakeversion.client-author` property (the single `--token` principal keeps the client's
author, as before: it names nobody).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any

from spark_lakeversion.auth.grants import EVERY_REF, Permission, Principal
from spark_lakeversion.errors import FORBIDDEN_PREFIX, Forbidden, LakeVersionError, RefNotFound
from spark_lakeversion.limits import Limits
from spark_lakeversion.model import AuditRecord, CheckRun, MergeRequest, Outcome
from spark_lakeversion.versioning.gates.policy import CheckPolicy
from spark_lakeversion.versioning.interface import VersionStore
from spark_lakeversion.versioning.names import (
    FULL_HASH_LENGTH,
    is_commit_hash,
    parse_ref_expression,
)
from spark_lakeversion.versioning.options import MergeOptions
from spark_lakeversion.versioning.suggest import rehint

log = logging.getLogger("spark_lakeversion.audit")
CLIENT_AUTHOR = "lakeversion.client-author"

READ, WRITE, CREATE, DELETE, MERGE, ADMIN = (
    Permission.READ, Permission.WRITE, Permission.CREATE, Permission.DELETE,
    Permission.MERGE, Permission.ADMIN)


#: an operation's arguments by name, defaults applied (`inspect.BoundArguments.arguments`);
#: for a write, its request value's fields (`versioning.requests`)
Args = Mapping[str, Any]
Needs = Sequence[tuple[Permission, str]]

#: which refs' contents the call under way may count on where its answer would otherwise
#: tell whether a table exists (`checks.runner.missing_tables`): every ref, or, while this
#: wrapper runs a `scoped` operation, those its principal may read
VISIBLE_REFS: ContextVar[Callable[[str], bool]] = ContextVar(
    "lakeversion_visible_refs", default=lambda _: True)


def _none(*_: Any) -> Sequence[Any]:
    return ()


@dataclass(frozen=True)
class Rule:
    """How one `VersionStore` operation is guarded.

    `needs(args, inner)`: the (permission, ref) pairs it needs; `reads(args)`: the ref
    expressions it reads (the read rule of the module docstring); `audit_ref(args)`: for a
    write, the ref its audit record names (None: not audited); `authored`: makes the
    principal the author, or states its authority (rewrites `args`); `shown`: filters what
    a listing answers; `audited(args)`: whether this call of a write is audited (a plan-only
    merge preview writes nothing: not); `rehint`: a `RefNotFound`'s "did you mean" is
    picked among readable refs; `operation`: its name in refusals and the audit trail, or
    how to read it from `args` (default: the method's, without `_with`); `is_open`: no
    check at all (gc's epoch, the server's own overlap check, the audit writer); `scoped`:
    the call runs with `VISIBLE_REFS` narrowed to the refs the principal may read (adding a
    check: whether a table it names exists on a ref it cannot read stays unsaid)."""

    needs: Callable[[Args, VersionStore], Needs] = _none
    reads: Callable[[Args], Iterable[str]] = _none
    audit_ref: Callable[[Args], str] | None = None
    audited: Callable[[Args], bool] = lambda _: True
    authored: Callable[[AccessControlledStore, Principal, dict[str, Any]], None] | None = None
    shown: Callable[[AccessControlledStore, Principal, Any], Any] | None = None
    rehint: bool = True
    operation: str | Callable[[Args], str] | None = None
    is_open: bool = False
    scoped: bool = False


def read(*names: str) -> Rule:
    """Reads the ref expressions in the arguments `names` (a None one reads nothing)."""
    return Rule(reads=lambda a: [a[n] for n in names if a[n] is not None])


def write(ref: str, needs: Callable[[Args, VersionStore], Needs], *,
          reads: Callable[[Args], Iterable[str]] = _none,
          operation: str | Callable[[Args], str] | None = None,
          authored: Callable[[AccessControlledStore, Principal, dict[str, Any]], None]
          | None = None) -> Rule:
    """A write, audited under the ref in argument `ref`."""
    return Rule(needs=needs, reads=reads, audit_ref=lambda a: a[ref], authored=authored,
                operation=operation)


def on(permission: Permission, ref: str) -> Callable[[Args, VersionStore], Needs]:
    """`permission` on the ref in argument `ref`."""
    return lambda a, _: [(permission, a[ref])]


def listing(shown: Callable[[AccessControlledStore, Principal, Any], Any],
            needs: Callable[[Args, VersionStore], Needs] = _none) -> Rule:
    return Rule(needs=needs, shown=shown, rehint=False)


STORE_WIDE = Rule(needs=lambda *_: [(ADMIN, EVERY_REF)], rehint=False)
OPEN = Rule(is_open=True)


def _read_if_given(name: str) -> Callable[[Args, VersionStore], Needs]:
    return lambda a, _: [(READ, a[name])] if a[name] is not None else []


def _author(store: AccessControlledStore, who: Principal, a: dict[str, Any]) -> None:
    a["author"] = store._authored(who, a["author"], {})[0]


def _author_and_properties(store: AccessControlledStore, who: Principal,
                           a: dict[str, Any]) -> None:
    a["author"], a["properties"] = store._authored(who, a["author"], a["properties"])


def _pick_name(a: Args) -> str:
    """A pick's name in refusals and the audit trail: `cherry_pick` or `revert`."""
    return str(a["kind"]).replace("-", "_")


def _merge_author(store: AccessControlledStore, who: Principal, a: dict[str, Any]) -> None:
    options: MergeOptions = a["options"]
    by, props = store._authored(who, options.author, options.properties)
    a["options"] = MergeOptions.from_dict({**options.to_dict(), "author": by,
                                           "properties": props})


def _delete_needs(a: Args, inner: VersionStore) -> Needs:
    """`force` deletes a branch with commits no other ref holds (`delete` is enough) or a
    protected branch (that needs `admin` too). Read here to refuse early; the delete's
    transaction checks protection again (`_delete_authority`)."""
    protected = a["force"] and a["name"] in inner.protected_branches()
    return [(DELETE, a["name"])] + ([(ADMIN, a["name"])] if protected else [])


def _delete_authority(store: AccessControlledStore, who: Principal, a: dict[str, Any]) -> None:
    """Whether this principal's forced delete may remove a protected branch, decided by its
    grant and checked by the store in the delete's transaction: a branch protected after
    `_delete_needs` read it is not deleted by someone without `admin` on it."""
    a["allow_protected"] = who.may(ADMIN, a["name"])


def _check_runs_shown(store: AccessControlledStore, who: Principal,
                      runs: list[CheckRun]) -> list[CheckRun]:
    """A run's samples are rows of its target and its source: both must be readable."""
    readable: dict[str, bool] = {}
    return [r for r in runs
            if who.may(READ, r.branch) and store._may_read(who, r.source, readable)]


def _on_request(*needs: Permission) -> Callable[[Args, VersionStore], Needs]:
    """Permissions on a merge request's target (the first) and `read` on its source."""
    def needed(a: Args, inner: VersionStore) -> Needs:
        request = inner.get_merge_request(a["number"])
        return [(p, request.target) for p in needs] + [(READ, request.source)]
    return needed


def _request_ref(a: Args) -> str:
    return f"merge-request/{a['number']}"


def _approver(store: AccessControlledStore, who: Principal, a: dict[str, Any]) -> None:
    """The principal approves (unrestricted, as without authentication: the name sent)."""
    a["approver"] = (a["approver"] or who.name) if who.unrestricted else who.name


def _requests_shown(store: AccessControlledStore, who: Principal,
                    requests: list[MergeRequest]) -> list[MergeRequest]:
    return [r for r in requests if who.may(READ, r.target) and who.may(READ, r.source)]


#: one row per `VersionStore` operation; an operation without one is refused. A write's row
#: reads its request value's fields by name; its keyword form (`create_ref` for
#: `create_ref_with`) is the interface's own and reaches the row through it
RULES: dict[str, Rule] = {
    # refs: listings show only readable refs
    "list_refs": listing(lambda _, who, refs: [r for r in refs if who.may(READ, r.name)]),
    "get_ref": read("name"),
    "resolve": read("expression"),
    "create_ref_with": write("name", on(CREATE, "name"), reads=lambda a: [a["from_ref"]]),
    "delete_ref_with": write("name", _delete_needs, authored=_delete_authority),
    # a branch reset needs `write` (tags are immutable: the store refuses them); `force`
    # (resetting a protected branch) needs `admin` too
    "assign_ref_with": write("name", lambda a, _: [(WRITE, a["name"])]
                        + ([(ADMIN, a["name"])] if a["force"] else []),
                        reads=lambda a: [a["to"]]),
    # merge gates: protection and check settings need admin on the branch
    "protect_branch": write("name", on(ADMIN, "name")),
    "unprotect_branch": write("name", on(ADMIN, "name")),
    "protected_branches": listing(lambda _, who, names: {b for b in names
                                                         if who.may(READ, b)}),
    "required_approvals": listing(lambda _, who, required: {
        b: n for b, n in required.items() if who.may(READ, b)}),
    "add_check": Rule(needs=lambda a, _: [(ADMIN, a["spec"].branch)],
                      audit_ref=lambda a: a["spec"].branch, scoped=True),
    "remove_check": write("branch", on(ADMIN, "branch")),
    # as a dry-run merge: read on the branch and on the source
    "test_check": Rule(reads=lambda a: [a["branch"], *([a["source"]] if a["source"] else [])]),
    "list_checks": listing(lambda _, who, checks: [c for c in checks
                                                   if who.may(READ, c.branch)],
                           _read_if_given("branch")),
    "check_runs": listing(_check_runs_shown, _read_if_given("branch")),
    "preview_commits": STORE_WIDE,  # what gc keeps: store-wide, like gc's other reads
    # commits and contents
    "commit_with": write("branch", on(WRITE, "branch"), authored=_author_and_properties),
    "get_commit": read("commit_id"),
    "log": read("ref"),
    "get_contents": read("ref"),
    "list_keys": read("ref"),
    "diff": read("from_ref", "to_ref"),
    # rows of both refs: read on both
    "diff_rows": read("from_ref", "to_ref"),
    "plan_row_diff": read("from_ref", "to_ref"),
    # merging
    "merge_base": read("a", "b"),
    # a dry run reads; one that runs the checks is audited (it records check runs), a
    # plan-only preview (what a UI page view shows) is not
    "merge_with": replace(write("target", lambda a, _: [
        (READ if a["options"].dry_run else MERGE, a["target"])],
        reads=lambda a: [a["source"]], operation="merge", authored=_merge_author),
        audited=lambda a: not a["options"].plan_only),
    "pick_with": write("onto", lambda a, _: [(READ if a["dry_run"] else WRITE, a["onto"])],
                       reads=lambda a: a["commit_ids"], operation=_pick_name,
                       authored=_author),
    "rollback_table_with": write("branch", on(WRITE, "branch"), reads=lambda a: [a["to"]],
                                 operation="rollback", authored=_author_and_properties),
    # merge requests: opening reads both sides; approving and merging need `merge` on the
    # target (the principal is the approver); closing too
    "open_merge_request": write("target", lambda a, _: [(READ, a["target"]),
                                                          (READ, a["source"])],
                                authored=_author),
    "list_merge_requests": listing(_requests_shown),
    "get_merge_request": Rule(needs=_on_request(READ)),
    "approve_merge_request": Rule(needs=_on_request(MERGE), audit_ref=_request_ref,
                                  authored=_approver, operation="approve"),
    "merge_merge_request": Rule(needs=_on_request(MERGE), audit_ref=_request_ref,
                                authored=_author, operation="merge"),
    "close_merge_request": Rule(needs=_on_request(MERGE), audit_ref=_request_ref,
                                operation="close"),
    # file safety: the server's own overlap check, which must see every table
    "location_owner": OPEN,
    # store-wide: gc, its reads and the audit trail need admin on every ref
    "reflog": STORE_WIDE,
    "table_states": STORE_WIDE,
    "gc_state": OPEN,  # commits read gc's epoch (it holds no table data)
    "begin_gc": Rule(needs=lambda *_: [(ADMIN, EVERY_REF)], audit_ref=lambda _: EVERY_REF,
                     operation="gc"),
    "audit": STORE_WIDE,
    "record_audit": OPEN,
    "close": OPEN,
}
SIGNATURES = {name: inspect.signature(getattr(VersionStore, name)) for name in RULES}


def _guarded(name: str) -> Callable[..., Any]:
    def guarded(self: AccessControlledStore, *args: Any, **kwargs: Any) -> Any:
        return self._apply(name, args, kwargs)
    guarded.__name__ = guarded.__qualname__ = name
    guarded.__doc__ = getattr(VersionStore, name).__doc__
    return guarded


#: every operation of `RULES`, each through `AccessControlledStore._apply`
_Guarded: Any = type("_Guarded", (), {name: _guarded(name) for name in RULES})


class AccessControlledStore(_Guarded, VersionStore):
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

    # ---- the one wrapper ------------------------------------------------------------------
    def _apply(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Operation `name` under its rule (`RULES`): every permission and read checked
        first (a refusal writes nothing), then the call, then the audit record of a write
        and the filter of a listing."""
        rule = RULES.get(name)
        if rule is None:
            raise no_rule(name)
        bound = SIGNATURES[name].bind(self, *args, **kwargs)
        bound.apply_defaults()
        if rule.is_open:
            return getattr(self.inner, name)(*bound.args[1:], **bound.kwargs)
        request = bound.arguments.get("request")
        a: dict[str, Any] = bound.arguments if request is None else \
            {f.name: getattr(request, f.name) for f in fields(request)}
        operation = rule.operation(a) if callable(rule.operation) else \
            rule.operation or name.removesuffix("_with")
        who = self._principal()
        for permission, ref in rule.needs(a, self.inner):
            self._require(who, permission, ref, operation)
        for expression in rule.reads(a):
            self._require_read(who, expression, operation)
        if rule.authored is not None:
            rule.authored(self, who, a)
        call = getattr(self.inner, name)
        scope = VISIBLE_REFS.set(lambda ref: who.may(READ, ref)) if rule.scoped else None
        try:
            result = call(*bound.args[1:], **bound.kwargs) if request is None \
                else call(replace(request, **a))
        except LakeVersionError as exc:
            if rule.audit_ref is not None and rule.audited(a):
                self._audit(who, operation, rule.audit_ref(a), Outcome.FAILED, exc.code)
            if rule.rehint and isinstance(exc, RefNotFound):
                raise self._rehinted(who, exc) from None
            raise
        finally:
            if scope is not None:
                VISIBLE_REFS.reset(scope)
        if rule.audit_ref is not None and rule.audited(a):
            self._audit(who, operation, rule.audit_ref(a), Outcome.DONE)
        return result if rule.shown is None else rule.shown(self, who, result)


    def __getattr__(self, name: str) -> Any:
        """An operation this wrapper has no rule for is refused, never passed through."""
        if name.startswith("_") or not hasattr(self.inner, name):
            raise AttributeError(name)
        raise no_rule(name)


def no_rule(name: str) -> Forbidden:
    return Forbidden(f"{FORBIDDEN_PREFIX}{name} has no access rule "
                     "(spark_lakeversion.versioning.access)")


def _shown(ref: str) -> str:
    if ref == EVERY_REF:
        return "every ref (a grant with refs = \"*\")"
    return ref if ref.startswith("commit ") else f"ref {ref!r}"
