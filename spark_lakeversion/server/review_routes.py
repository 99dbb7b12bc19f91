"""`/api/v1/merge-requests`: open, list, show, approve, merge and close merge requests
(`versioning.reviews`). A merge runs the ordinary merge path: a failed check answers 412
`ChecksFailed` with its reports, missing approvals 403 `ProtectedBranch`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import MrStatus
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.server.headers import commit_meta
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenBody(_Body):
    source: str
    target: str = DEFAULT_BRANCH
    title: str
    description: str = ""


class ApproveBody(_Body):
    approver: str | None = None  # taken only without authentication (else: the principal)


class MergeRequestMergeBody(_Body):
    message: str | None = None


def parse_status(status: str | None) -> MrStatus | None:
    if status in (None, "", "all"):
        return None
    try:
        return MrStatus(status)
    except ValueError:
        raise InvalidInput(f"status must be one of open, merged, closed, all; not "
                           f"{str(status)[:32]!r}") from None


def router(ctx: ServerContext) -> APIRouter:
    store = ctx.store
    router = APIRouter(prefix="/api/v1", tags=["lakeversion"])

    @router.get("/merge-requests")
    async def list_requests(status: str | None = None, before: int | None = None,
                            limit: int = 50) -> dict[str, Any]:
        found = await run_in_threadpool(store.list_merge_requests, parse_status(status),
                                        before, limit)
        more = len(found) == limit and found[-1].number > 1
        return {"merge_requests": [r.to_dict() for r in found],
                "next_before": found[-1].number if more else None}

    @router.post("/merge-requests", status_code=201)
    async def open_request(body: OpenBody, request: Request) -> dict[str, Any]:
        meta = commit_meta(request)
        return (await run_in_threadpool(
            lambda: store.open_merge_request(body.source, body.target, title=body.title,
                                             description=body.description,
                                             author=meta.author))).to_dict()

    @router.get("/merge-requests/{number}")
    async def show(number: int) -> dict[str, Any]:
        return (await run_in_threadpool(store.get_merge_request, number)).to_dict()

    @router.post("/merge-requests/{number}/approve")
    async def approve(number: int, request: Request,
                      body: ApproveBody | None = None) -> dict[str, Any]:
        approver = (body.approver if body else None) or commit_meta(request).author
        return (await run_in_threadpool(store.approve_merge_request, number,
                                        approver)).to_dict()

    @router.post("/merge-requests/{number}/merge")
    async def merge(number: int, request: Request,
                    body: MergeRequestMergeBody | None = None) -> dict[str, Any]:
        meta = commit_meta(request)
        result = await run_in_threadpool(
            lambda: store.merge_merge_request(number, author=meta.author,
                                              message=(body.message if body else None)))
        return result.to_dict()

    @router.post("/merge-requests/{number}/close")
    async def close(number: int) -> dict[str, Any]:
        return (await run_in_threadpool(store.close_merge_request, number)).to_dict()

    return router
