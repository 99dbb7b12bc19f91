"""`/api/v1`: refs, commits, log, contents, diff, merge, cherry-pick, revert, rollback.

The contract is the table in DEVELOPERS.md; shapes are the `to_dict()` of the store's model
values and errors are those of `spark_lakeversion.errors`. Ref expressions travel in query
parameters and bodies only (they may contain `/`, `~`, `#`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.errors import (
    AlreadyExists,
    CommitOutcomeUnknown,
    GcEpochChanged,
    InvalidInput,
    LakeVersionError,
    LocationNotAllowed,
)
from spark_lakeversion.gc.fence import fence
from spark_lakeversion.locations import AllowedRoots, check_new_key
from spark_lakeversion.model import (
    STRATEGY_NAMES,
    Content,
    Delete,
    Key,
    MergeBehavior,
    Operation,
    Put,
    RefType,
)
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.server.headers import commit_meta
from spark_lakeversion.tableformat.validate import check_overlap, owned, validate_content
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH, TABLE_STATES_PAGE, VersionStore
from spark_lakeversion.versioning.options import MergeOptions


class RefTypeName(str, enum.Enum):
    BRANCH = "BRANCH"
    TAG = "TAG"


class OperationKind(str, enum.Enum):
    put = "put"
    delete = "delete"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CreateRefBody(Body):
    name: str
    type: RefTypeName = RefTypeName.BRANCH
    from_: str = Field(DEFAULT_BRANCH, alias="from")
    if_not_exists: bool = False


class DeleteRefBody(Body):
    name: str
    type: RefTypeName | None = None
    if_exists: bool = False
    expected_head: str | None = None
    force: bool = False  # unmerged commits (UnmergedBranch), or a protected branch (admin)


class AssignRefBody(Body):
    name: str
    to: str
    expected_head: str | None = None
    force: bool = False  # a protected branch: an admin action


class MergeBody(Body):
    source: str
    target: str = DEFAULT_BRANCH
    dry_run: bool = False
    fast_forward: bool = True
    strategy: str = STRATEGY_NAMES[MergeBehavior.NORMAL]
    behaviors: dict[str, str] = Field(default_factory=dict)
    message: str | None = None
    author: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    expected_target_head: str | None = None
    #: passed to content mergers, e.g. {"isolation_level": "snapshot"}
    options: dict[str, str] = Field(default_factory=dict)
    #: how row-level merges settle ROW_CONFLICTs: "source-wins" | "target-wins" (None: report)
    row_conflicts: str | None = None
    #: with dry_run: plan only (no check runs, nothing written or audited)
    plan_only: bool = False
    #: with plan_only: plan each row-level merge for Spark (`rows.merge_plan`)
    plan_rows: bool = False
    #: what Spark computed for those row merges, per table (`EngineRows`)
    row_results: dict[str, Any] = Field(default_factory=dict)


class OperationBody(Body):
    op: OperationKind
    key: list[str] = Field(min_length=1)
    content: dict[str, Any] | None = None


class CommitBody(Body):
    branch: str
    operations: list[OperationBody] = Field(min_length=1)
    message: str
    author: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    expected_head: str | None = None
    expected_gc_epoch: int | None = Field(default=None, ge=0)


class LookupBody(Body):
    ref: str = DEFAULT_BRANCH
    keys: list[list[str]]


class CherryPickBody(Body):
    commits: list[str] = Field(min_length=1)
    branch: str
    dry_run: bool = False
    expected_head: str | None = None


class RevertBody(Body):
    commit: str
    branch: str
    dry_run: bool = False
    expected_head: str | None = None


class RollbackBody(Body):
    branch: str
    table: str
    to: str
    message: str | None = None
    expected_head: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)


def _ref_type(value: RefTypeName | None) -> RefType | None:
    return RefType(value.value) if value is not None else None


def _key(value: str, what: str) -> Key:
    if not value:
        raise InvalidInput(f"{what} must be a non-empty key such as db.orders")
    return Key.of(value)


def _instant(value: str, what: str) -> datetime:
    """An ISO-8601 time; one without a zone is UTC."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what} must be an ISO-8601 time, not {value[:64]!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _operation(body: OperationBody) -> Operation:
    key = Key(tuple(body.key))
    if body.op is OperationKind.delete:
        return Delete(key)
    if body.content is None:
        raise InvalidInput(f"put {key} needs a content")
    try:
        return Put(key, Content.from_dict(body.content))
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidInput(f"put {key}: invalid content ({exc})") from None


T = TypeVar("T")
log = logging.getLogger("spark_lakeversion.server")


def _committing(write: Callable[[], T]) -> T:
    """A store commit: an unforeseen failure inside it may have landed (outcome unknown);
    bad input never gets here, the boundary and the store's checks refuse it first."""
    try:
        return write()
    except LakeVersionError:
        raise
    except Exception as exc:
        log.exception("store commit failed")
        raise CommitOutcomeUnknown(
            f"the store commit failed ({type(exc).__name__}); it may or may not have "
            "landed: re-read the branch before retrying") from None


def _validated(store: VersionStore, roots: AllowedRoots, branch: str,
               ops: list[Operation], io: Mapping[str, str] | None = None) -> list[Operation]:
    """Every Put: a safe key, a content its format accepts (the Iceberg REST catalog's
    file rules: locations and statistics under `roots`, files readable) claiming no
    location another table owns; checked before the store writes. A table the catalog
    already owns may be put only on a branch that holds it (a new state, a rename): as
    for register, the catalog's tables reach another branch by merge, so no put copies
    one from a ref its caller may not read."""
    out: list[Operation] = []
    held: set[str] | None = None
    for op in ops:
        if isinstance(op, Put):
            check_new_key(op.key.elements, "key element")
            content = validate_content(op.key, op.content, roots, io)
            check_overlap(store, op.key, content, io)
            if content.is_table and owned(store, content, io):
                if held is None:  # the keys this commit touches, then the whole branch
                    held = {c.id for c in store.get_contents(
                        branch, [o.key for o in ops]).values()}
                if content.id not in held:
                    held |= {c.id for _, c in store.list_keys(branch) if c.is_table}
                if content.id not in held:
                    raise LocationNotAllowed(
                        f"put {op.key}: table id {content.id} is not on {branch}, and its "
                        "files lie where a table of this catalog keeps them: a table the "
                        "catalog owns reaches another branch by merge (register is for "
                        "files the catalog does not own yet)")
            op = Put(op.key, content)
        out.append(op)
    return out


def _fenced(store: VersionStore, branch: str, ops: list[Operation],
            expected_gc_epoch: int | None, io: Mapping[str, str]) -> int | None:
    """The gc epoch the commit lands in: the files its puts add (over the states at the
    branch head) pass gc's fence (`gc.fence`), as an Iceberg REST commit's do; the
    client's `expected_gc_epoch`, when given, must still be gc's epoch."""
    puts = [op for op in ops if isinstance(op, Put) and op.content.is_table]
    if not puts:
        return expected_gc_epoch
    bases = store.get_contents(branch, [op.key for op in puts])
    epoch = fence(store, [(op.key, bases.get(op.key), op.content) for op in puts], io)
    if expected_gc_epoch is not None and expected_gc_epoch != epoch:
        raise GcEpochChanged(f"gc started a new run (epoch {epoch}) since the commit was "
                             f"checked in epoch {expected_gc_epoch}: nothing was committed; "
                             "check the files again and retry")
    return epoch


def router(ctx: ServerContext) -> APIRouter:
    """Routes under `/api/v1`; Iceberg contents committed here may point only under the
    catalog's roots."""
    store, roots = ctx.store, ctx.roots
    router = APIRouter(prefix="/api/v1", tags=["lakeversion"])

    @router.get("/config")
    async def config() -> dict[str, Any]:
        """What a client sets itself up by: the schemes of the roots table files live under
        (`spark.spark_conf` adds the AWS SDK's jars to Spark only for `s3`)."""
        return {"storage_schemes": sorted({root.scheme for root in roots.roots})}

    @router.get("/merge-strategies")
    async def merge_strategies() -> dict[str, Any]:
        """The merge strategy names every surface accepts (`model.merges.STRATEGY_NAMES`,
        the one list), for clients that must not spell them again: the Java shim."""
        return {"strategies": list(STRATEGY_NAMES.values()),
                "default": STRATEGY_NAMES[MergeBehavior.NORMAL]}

    @router.get("/refs")
    async def list_refs(type: RefTypeName | None = None) -> dict[str, Any]:
        refs = await run_in_threadpool(store.list_refs, _ref_type(type))
        return {"refs": [r.to_dict() for r in refs]}

    @router.post("/refs", status_code=201)
    async def create_ref(body: CreateRefBody, response: Response) -> dict[str, Any]:
        def create() -> dict[str, Any]:
            try:
                return store.create_ref(body.name, RefType(body.type.value), body.from_).to_dict()
            except AlreadyExists:
                if not body.if_not_exists:
                    raise
                response.status_code = 200
                return store.get_ref(body.name).to_dict()

        result: dict[str, Any] = await run_in_threadpool(create)
        return result

    @router.get("/refs/get")
    async def get_ref(name: str) -> dict[str, Any]:
        ref = await run_in_threadpool(store.get_ref, name)
        return ref.to_dict()

    @router.post("/refs/delete")
    async def delete_ref(body: DeleteRefBody) -> dict[str, Any]:
        from spark_lakeversion.errors import RefNotFound

        def delete() -> bool:
            try:
                store.delete_ref(body.name, _ref_type(body.type), body.expected_head,
                                body.force)
            except RefNotFound:
                if body.if_exists:
                    return False
                raise
            return True

        return {"deleted": await run_in_threadpool(delete)}

    @router.post("/refs/assign")
    async def assign_ref(body: AssignRefBody) -> dict[str, Any]:
        ref = await run_in_threadpool(store.assign_ref, body.name, body.to, body.expected_head,
                                     body.force)
        return ref.to_dict()

    @router.get("/resolve")
    async def resolve(ref: str) -> dict[str, Any]:
        r = await run_in_threadpool(store.resolve, ref)
        return {"expression": r.expression, "commit_id": r.commit_id, "branch": r.branch,
                "writable": r.writable}

    @router.get("/log")
    async def log(ref: str = DEFAULT_BRANCH, key: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  page_token: str | None = None) -> dict[str, Any]:
        k = _key(key, "key") if key is not None else None
        page = await run_in_threadpool(
            lambda: store.log(ref, key=k, limit=limit, page_token=page_token))
        return {"commits": [c.to_dict() for c in page.commits],
                "next_page_token": page.next_page_token}

    @router.post("/commits", status_code=201)
    async def commit(body: CommitBody) -> dict[str, Any]:
        ops = [_operation(op) for op in body.operations]
        ops = await run_in_threadpool(_validated, store, roots, body.branch, ops, ctx.io)
        epoch = await run_in_threadpool(_fenced, store, body.branch, ops,
                                        body.expected_gc_epoch, ctx.io)
        result = await run_in_threadpool(
            _committing, lambda: store.commit(
                body.branch, ops, message=body.message, author=body.author,
                properties=body.properties, expected_head=body.expected_head,
                expected_gc_epoch=epoch))
        return result.to_dict()

    @router.get("/reflog")
    async def reflog(since: str) -> dict[str, Any]:
        entries = await run_in_threadpool(store.reflog, _instant(since, "since"))
        return {"entries": [e.to_dict() for e in entries]}

    @router.get("/table-states")
    async def table_states(page_token: str | None = None,
                           limit: Annotated[int, Query(ge=1, le=TABLE_STATES_PAGE)]
                           = TABLE_STATES_PAGE) -> dict[str, Any]:
        page = await run_in_threadpool(store.table_states, page_token, limit)
        return {"states": [c.to_dict() for c in page.states],
                "next_page_token": page.next_page_token}

    @router.get("/merge-base")
    async def merge_base(a: str, b: str) -> dict[str, Any]:
        return {"commit_id": await run_in_threadpool(store.merge_base, a, b)}

    @router.post("/contents/lookup")
    async def lookup(body: LookupBody) -> dict[str, Any]:
        keys = [Key(tuple(k)) for k in body.keys]
        found = await run_in_threadpool(store.get_contents, body.ref, keys)
        return {"entries": [{"key": str(k), "elements": list(k.elements),
                             "content": c.to_dict()} for k, c in sorted(found.items())]}

    @router.get("/commits/{commit_id}")
    async def get_commit(commit_id: str) -> dict[str, Any]:
        commit = await run_in_threadpool(store.get_commit, commit_id)
        return commit.to_dict()

    @router.get("/contents")
    async def contents(ref: str = DEFAULT_BRANCH, prefix: str | None = None) -> dict[str, Any]:
        p = _key(prefix, "prefix") if prefix is not None else None
        entries = await run_in_threadpool(store.list_keys, ref, p)
        return {"entries": [{"key": str(k), "elements": list(k.elements),
                             "content": c.to_dict()} for k, c in entries]}

    @router.get("/diff")
    async def diff(from_: Annotated[str, Query(alias="from")],
                   to: str) -> dict[str, Any]:
        diffs = await run_in_threadpool(store.diff, from_, to)
        return {"diffs": [d.to_dict() for d in diffs]}

    @router.post("/merge")
    async def merge(body: MergeBody, request: Request) -> dict[str, Any]:
        meta = commit_meta(request)
        options = MergeOptions.from_dict({
            **body.model_dump(), "message": body.message or meta.message,
            "author": body.author or meta.author,
            "properties": {**meta.properties, **body.properties}})
        result = await run_in_threadpool(
            _committing, lambda: store.merge(body.source, body.target, options))
        return result.to_dict()

    @router.post("/cherry-pick")
    async def cherry_pick(body: CherryPickBody, request: Request) -> dict[str, Any]:
        meta = commit_meta(request)
        result = await run_in_threadpool(
            _committing, lambda: store.cherry_pick(
                body.commits, body.branch, dry_run=body.dry_run, author=meta.author,
                expected_head=body.expected_head))
        return result.to_dict()

    @router.post("/revert")
    async def revert(body: RevertBody, request: Request) -> dict[str, Any]:
        meta = commit_meta(request)
        result = await run_in_threadpool(
            _committing, lambda: store.revert(
                body.commit, body.branch, dry_run=body.dry_run, author=meta.author,
                expected_head=body.expected_head))
        return result.to_dict()

    @router.post("/rollback")
    async def rollback(body: RollbackBody, request: Request) -> dict[str, Any]:
        meta = commit_meta(request)
        key = _key(body.table, "table")
        commit = await run_in_threadpool(
            _committing, lambda: store.rollback_table(
                body.branch, key, body.to, author=meta.author,
                message=body.message or meta.message, expected_head=body.expected_head,
                properties={**meta.properties, **body.properties}))
        return commit.to_dict()

    return router
