"""`POST /api/v1/gc`: the same garbage collection as `lakeversion gc`, run by the server.

The server is where table locations are usually reachable from, so running gc there
avoids handing file-system credentials to clients. Errors are our error tree; the app's
handlers turn them into the documented status codes (400 bad duration, 409 refused).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.gc import (
    DEFAULT_KEEP_COMMITS_SINCE,
    DEFAULT_OLDER_THAN,
    collect_garbage,
    parse_duration,
)
from spark_lakeversion.store.base import VersionStore


class GcBody(BaseModel):
    """Durations are strings (`3h`, `7d`) or seconds."""

    model_config = ConfigDict(extra="forbid")

    older_than: str | float = f"{int(DEFAULT_OLDER_THAN.total_seconds())}s"
    keep_commits_since: str | float = f"{int(DEFAULT_KEEP_COMMITS_SINCE.total_seconds())}s"
    dry_run: bool = False


router = APIRouter(prefix="/api/v1", tags=["lakeversion"])


@router.post("/gc")
async def gc(request: Request, body: GcBody | None = None) -> dict[str, Any]:
    """Run gc over the server's store; answers the `GcReport` JSON document."""
    body = body or GcBody()
    store: VersionStore = request.app.state.store
    older_than = parse_duration(body.older_than)
    keep = parse_duration(body.keep_commits_since)
    report = await run_in_threadpool(
        lambda: collect_garbage(store, older_than=older_than, keep_commits_since=keep,
                                dry_run=body.dry_run))
    return report.to_dict()
