"""`GET /api/v1/audit`: the audit trail (admin on every ref; see
`spark_lakeversion.versioning.access`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.gc.durations import parse_since
from spark_lakeversion.model import MAX_AUDIT_RECORDS
from spark_lakeversion.server.context import ServerContext


def router(ctx: ServerContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["lakeversion"])

    @router.get("/audit")
    async def audit(since: str | None = None, principal: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_RECORDS)]
                    = MAX_AUDIT_RECORDS) -> dict[str, Any]:
        """Who did what to which ref, when, and how it ended (`done`, `denied`, `failed`),
        oldest first; the newest `limit` records from `since` on."""
        start = parse_since(since) if since is not None else None
        records = await run_in_threadpool(ctx.store.audit, start, principal, limit)
        return {"records": [r.to_dict() for r in records]}

    return router
