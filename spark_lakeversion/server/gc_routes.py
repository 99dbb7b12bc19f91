"""`POST /api/v1/gc`: the same garbage collection as `lakeversion gc`, run by the server;
`GET /api/v1/gc/state`: gc's epoch and cutoffs as the store records them.

The server is where table locations are usually reachable from, so running gc there
avoids handing file-system credentials to clients. It lists and deletes only under the
server's allowed roots (`ServerContext.roots`). Its grace period cannot go below
`spark_lakeversion.gc.durations.MIN_OLDER_THAN` (there is no `force` over HTTP). Errors are our
error tree; the app's handlers turn them into the documented status codes (400 bad
duration or too short a grace period, 409 refused).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.gc.collect import collect_garbage
from spark_lakeversion.gc.durations import (
    DEFAULT_KEEP_COMMITS_SINCE,
    DEFAULT_OLDER_THAN,
    check_grace,
    parse_duration,
)
from spark_lakeversion.server.context import ServerContext


class GcBody(BaseModel):
    """Durations are strings (`3h`, `7d`) or seconds."""

    model_config = ConfigDict(extra="forbid")

    older_than: str | float = f"{int(DEFAULT_OLDER_THAN.total_seconds())}s"
    keep_commits_since: str | float = f"{int(DEFAULT_KEEP_COMMITS_SINCE.total_seconds())}s"
    dry_run: bool = False


def router(ctx: ServerContext) -> APIRouter:
    """Routes under `/api/v1/gc`: gc lists and deletes only under the catalog's allowed
    roots (its warehouse and every `--allowed-location`)."""
    store, roots, io = ctx.store, ctx.roots, ctx.io
    router = APIRouter(prefix="/api/v1", tags=["lakeversion"])

    @router.post("/gc")
    async def gc(body: GcBody | None = None) -> dict[str, Any]:
        """Run gc over the server's store; answers the `GcReport` JSON document."""
        body = body or GcBody()
        older_than = parse_duration(body.older_than)
        keep = parse_duration(body.keep_commits_since)
        check_grace(older_than, force=False)
        report = await run_in_threadpool(
            lambda: collect_garbage(store, roots=roots, older_than=older_than,
                                    keep_commits_since=keep, dry_run=body.dry_run,
                                    io_properties=io))
        return report.to_dict()

    @router.get("/gc/state")
    async def gc_state() -> dict[str, Any]:
        """`GcState`: epoch, cutoff, retained_since, started (ISO-8601 or null)."""
        return (await run_in_threadpool(store.gc_state)).to_dict()

    return router
