"""`POST /api/v1/delta/create` and `POST /api/v1/delta/register`: Delta tables made by the
server, which decides where files live (its warehouse; registered tables under its allowed
roots). Reads and writes of the rows go through the Python API (`DeltaHandle`); every
write lands through `/api/v1/commits`, where `DeltaFormat.validate` checks it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.errors import (
    AlreadyExists,
    CommitOutcomeUnknown,
    InvalidInput,
    LakeVersionError,
    ReadOnlyRef,
    ReferenceConflict,
)
from spark_lakeversion.formats.delta import tables
from spark_lakeversion.formats.delta.format import DeltaFormat
from spark_lakeversion.formats.validate import check_not_owned, check_overlap
from spark_lakeversion.gc.fence import fence
from spark_lakeversion.model import Commit, Content, Key, Put
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.server.headers import commit_meta
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    branch: str = DEFAULT_BRANCH
    table: str
    message: str | None = None
    expected_head: str | None = None


class CreateBody(_Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: dict[str, Any] | str = Field(alias="schema")  # Delta's schema JSON
    partition_by: list[str] = []
    configuration: dict[str, str] = {}


class RegisterBody(_Body):
    location: str


def router(ctx: ServerContext) -> APIRouter:
    store, roots = ctx.store, ctx.roots
    router = APIRouter(prefix="/api/v1/delta", tags=["lakeversion"])

    def prepare(body: _Body) -> tuple[Key, str, str]:
        if not body.table:
            raise InvalidInput("table must be a non-empty key such as db.events")
        key = Key.of(body.table)
        resolved = store.resolve(body.branch)
        if not resolved.writable or resolved.branch is None:
            raise ReadOnlyRef(f"{body.branch!r} is not a branch: Delta tables are created "
                              "on branches only")
        head = resolved.commit_id
        if body.expected_head and store.resolve(body.expected_head).commit_id != head:
            raise ReferenceConflict(f"branch {resolved.branch!r} is not at "
                                    f"{body.expected_head}")
        if store.get_content(head, key) is not None:
            raise AlreadyExists(f"{key} exists already on {resolved.branch}")
        return key, resolved.branch, head

    def land(key: Key, branch: str, head: str, content: Content, message: str,
             author: str | None) -> Commit:
        puts = tables.missing_namespaces(key, store.get_contents(
            head, tables.namespace_keys(key)))
        check_overlap(store, key, content)
        epoch = fence(store, [(key, None, content)], ctx.io)  # as every commit adding files
        return store.commit(branch, [*puts, Put(key, content)], message=message,
                            author=author, expected_head=head, expected_gc_epoch=epoch)

    def create(body: CreateBody, author: str | None, message: str | None) -> Commit:
        key, branch, head = prepare(body)
        content, cleanup = tables.new_table(
            ctx.catalog.warehouse_location, key, body.schema_, body.partition_by,
            body.configuration, branch)
        try:
            return land(key, branch, head, content,
                        body.message or message or f"Create Delta table {key}", author)
        except LakeVersionError as exc:
            if not isinstance(exc, CommitOutcomeUnknown):
                cleanup()  # the commit did not land: the new directory is nobody's
            raise

    def register(body: RegisterBody, author: str | None, message: str | None) -> Commit:
        key, branch, head = prepare(body)
        content = tables.existing_table(key, body.location, roots)
        check_not_owned(store, f"cannot register {key}",
                        DeltaFormat().claimed_locations(content, ctx.io))
        return land(key, branch, head, content,
                    body.message or message or f"Register Delta table {key}", author)

    @router.post("/create", status_code=201)
    async def create_table(body: CreateBody, request: Request) -> dict[str, Any]:
        meta = commit_meta(request)
        commit = await run_in_threadpool(create, body, meta.author, meta.message)
        return commit.to_dict()

    @router.post("/register", status_code=201)
    async def register_table(body: RegisterBody, request: Request) -> dict[str, Any]:
        meta = commit_meta(request)
        commit = await run_in_threadpool(register, body, meta.author, meta.message)
        return commit.to_dict()

    return router
