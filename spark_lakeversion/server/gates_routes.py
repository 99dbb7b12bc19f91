"""`/api/v1` routes of merge gates: protected branches, checks, check runs and previews.
Every merge route (`/api/v1/merge`) already goes through the gate in the version-control
layer; a failed check answers 412 `ChecksFailed` with the reports in the error body."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import CheckKind, CheckSpec
from spark_lakeversion.server.context import ServerContext


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BranchBody(_Body):
    name: str


class ProtectBody(_Body):
    name: str
    require_approvals: int | None = None  # merges into it need N approvals (None: unchanged)


class CheckBody(_Body):
    branch: str
    name: str
    kind: CheckKind
    spec: str
    tables: list[str] = Field(default_factory=list)
    timeout_s: float = 60.0
    allow_missing: bool = False


class CheckTrialBody(_Body):
    branch: str
    name: str
    source: str | None = None


class RemoveCheckBody(_Body):
    branch: str
    name: str


def router(ctx: ServerContext) -> APIRouter:
    store = ctx.store
    router = APIRouter(prefix="/api/v1", tags=["lakeversion"])

    @router.get("/protected-branches")
    async def protected() -> dict[str, Any]:
        branches = sorted(await run_in_threadpool(store.protected_branches))
        required = await run_in_threadpool(store.required_approvals)
        return {"branches": branches,
                "required_approvals": {b: n for b, n in required.items() if b in branches}}

    @router.post("/branches/protect")
    async def protect(body: ProtectBody) -> dict[str, Any]:
        changed = await run_in_threadpool(store.protect_branch, body.name,
                                          body.require_approvals)
        required = (await run_in_threadpool(store.required_approvals)).get(body.name, 0)
        return {"name": body.name, "protected": True, "changed": changed,
                "require_approvals": required}

    @router.post("/branches/unprotect")
    async def unprotect(body: BranchBody) -> dict[str, Any]:
        changed = await run_in_threadpool(store.unprotect_branch, body.name)
        return {"name": body.name, "protected": False, "changed": changed}

    @router.get("/checks")
    async def list_checks(branch: str | None = None) -> dict[str, Any]:
        checks = await run_in_threadpool(store.list_checks, branch)
        return {"checks": [c.to_dict() for c in checks]}

    @router.post("/checks", status_code=201)
    async def add_check(body: CheckBody) -> dict[str, Any]:
        spec = CheckSpec(body.branch, body.name, body.kind, body.spec, tuple(body.tables),
                         body.timeout_s)
        return (await run_in_threadpool(store.add_check, spec, body.allow_missing)).to_dict()

    @router.post("/checks/test")
    async def test_check(body: CheckTrialBody) -> dict[str, Any]:
        report = await run_in_threadpool(store.test_check, body.branch, body.name,
                                         body.source)
        return report.to_dict()

    @router.post("/checks/delete")
    async def remove_check(body: RemoveCheckBody) -> dict[str, Any]:
        return {"deleted": await run_in_threadpool(store.remove_check, body.branch, body.name)}

    @router.get("/check-runs")
    async def check_runs(branch: str | None = None, limit: int = 50) -> dict[str, Any]:
        runs = await run_in_threadpool(store.check_runs, branch, limit)
        return {"runs": [r.to_dict() for r in runs]}

    @router.get("/previews")
    async def previews(since: str) -> dict[str, Any]:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidInput(f"since {since[:64]!r} is not an ISO-8601 time") from None
        if when.tzinfo is None:
            raise InvalidInput("since needs a time zone (e.g. 2026-01-01T00:00:00Z)")
        return {"commits": await run_in_threadpool(store.preview_commits, when)}

    return router
