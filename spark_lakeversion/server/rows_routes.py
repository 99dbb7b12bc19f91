"""`GET /api/v1/diff/rows`: one page of the row diff of a table between two refs.

JSON by default (`{"columns", "rows", "total", "next_page_token", "statistics"}`); with
``Accept: application/vnd.apache.arrow.stream`` an Arrow IPC stream whose schema metadata
carries the total, the next page token and the figures (what the Python client asks for: it
keeps the table's types). A page holds at most `MAX_ROW_PAGE` rows; pass
`next_page_token` back for the next one. Access: read on both refs (the access layer's rule).

`GET /api/v1/diff/rows/plan`: the same diff planned for Spark (`rows.plan`), which reads
the rows in the caller's session: the shim's `RowEngine` for `SHOW DIFF ... ROWS`, and
`spark/rows.py` for the Python API and `lakeversion diff --rows --engine spark`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import Key
from spark_lakeversion.server.context import ServerContext

#: the most rows one page holds
MAX_ROW_PAGE = 10_000


def parse_limit(text: str | None) -> int:
    if text is None or text == "":
        return MAX_ROW_PAGE
    if not text.isdigit():
        raise InvalidInput(f"limit must be an integer >= 0, not {text!r}")
    return min(int(text), MAX_ROW_PAGE)


def parse_count(text: str) -> int:
    """A row count: digits, below 2**62."""
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput(f"limit must be an integer from 0 to 2**62 - 1, not {text!r}")
    return int(text)


def parse_bool(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidInput(f"{name} must be true or false, not {text!r}")
    return value in ("true", "1")


def parse_columns(text: str | None) -> list[str] | None:
    if text is None:
        return None
    columns = [c.strip() for c in text.split(",")]
    if not all(columns):
        raise InvalidInput(f"columns must be names separated by commas, not {text!r}")
    return columns


def router(ctx: ServerContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/diff/rows", response_model=None)
    async def diff_rows(request: Request, from_: Annotated[str, Query(alias="from")], to: str,
                        table: str, columns: str | None = None, limit: str | None = None,
                        page_token: str | None = None, summary: str = "false"
                        ) -> Response | dict[str, Any]:
        key = Key.of(table)
        page = await run_in_threadpool(
            lambda: ctx.store.diff_rows(from_, to, key, columns=parse_columns(columns),
                                        limit=parse_limit(limit), page_token=page_token,
                                        summary=parse_bool(summary, "summary")))
        from spark_lakeversion.rows.page import ARROW_STREAM

        if ARROW_STREAM in request.headers.get("accept", ""):
            return Response(page.to_ipc(), media_type=ARROW_STREAM)
        return page.to_dict()

    @router.get("/diff/rows/plan")
    async def plan_diff_rows(from_: Annotated[str, Query(alias="from")], to: str, table: str,
                             columns: str | None = None, limit: str | None = None,
                             summary: str = "false", dialect: str = "spark"
                             ) -> dict[str, Any]:
        """The same diff planned for an engine that reads the rows itself (Spark, past the
        memory budget): each side's commit and files, and the SQL; no row is read here."""
        key = Key.of(table)
        rows_limit = None if limit is None or limit == "" else parse_count(limit)
        return await run_in_threadpool(  # type: ignore[no-any-return]
            lambda: ctx.store.plan_row_diff(from_, to, key, columns=parse_columns(columns),
                                            limit=rows_limit,
                                            summary=parse_bool(summary, "summary"),
                                            dialect=dialect))

    return router
