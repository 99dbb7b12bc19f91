"""`POST /api/v1/delta/create` and `POST /api/v1/delta/register`: HTTP only; the tables
are made by `formats.delta.tables` on the server's terms (its warehouse; registered tables
under its allowed roots). Reads and writes of the rows go through the Python API
(`formats.delta.handle.DeltaHandle`); every write lands through `/api/v1/commits`, where
`DeltaFormat.validate` checks it."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.formats.delta import tables
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
    router = APIRouter(prefix="/api/v1/delta", tags=["lakeversion"])

    @router.post("/create", status_code=201)
    async def create_table(body: CreateBody, request: Request) -> dict[str, Any]:
        meta = commit_meta(request)
        commit = await run_in_threadpool(
            partial(tables.create_table, ctx.store, ctx.catalog.warehouse_location,
                    body.table, body.schema_, body.partition_by, body.configuration,
                    branch=body.branch, expected_head=body.expected_head,
                    message=body.message or meta.message, author=meta.author, io=ctx.io))
        return commit.to_dict()

    @router.post("/register", status_code=201)
    async def register_table(body: RegisterBody, request: Request) -> dict[str, Any]:
        meta = commit_meta(request)
        commit = await run_in_threadpool(
            partial(tables.register_table, ctx.store, ctx.roots, body.table, body.location,
                    branch=body.branch, expected_head=body.expected_head,
                    message=body.message or meta.message, author=meta.author, io=ctx.io))
        return commit.to_dict()

    return router
