"""Error bodies of both APIs, from one place, so a client sees a typed error and never a trace.

`/api/v1` speaks our error tree (`spark_lakeversion.errors`); `/iceberg` speaks the Iceberg
REST error model (`{"error": {"message", "type", "code"}}`) with the exception type names
the Java and Python Iceberg clients map onto their own exceptions.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from spark_lakeversion.errors import (
    AlreadyExists,
    ChecksFailed,
    CommitOutcomeUnknown,
    ConflictError,
    Forbidden,
    HistoryCollected,
    InvalidInput,
    KeyNotFound,
    LakeVersionError,
    NotFound,
    ProtectedBranch,
    ReadOnlyRef,
    ServerError,
    TooLarge,
    UnsafeOperation,
)
from spark_lakeversion.formats.iceberg.catalog.errors import (
    IcebergError,
    already_exists,
    bad_request,
    commit_failed,
    no_such_namespace,
    no_such_table,
)

log = logging.getLogger("spark_lakeversion.server")


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: a lone surrogate stored by an older version is sent as its
    JSON escape (``\\ud800``) instead of failing the whole answer."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8", "backslashreplace")


def status_of(exc: LakeVersionError) -> int:
    """HTTP status of an error of our tree (the table in DEVELOPERS.md)."""
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (AlreadyExists, ConflictError, HistoryCollected)):
        return 409
    if isinstance(exc, (ReadOnlyRef, ProtectedBranch, UnsafeOperation, Forbidden)):
        return 403
    if isinstance(exc, ChecksFailed):
        return 412
    if isinstance(exc, CommitOutcomeUnknown):
        return 503
    if isinstance(exc, ServerError):
        return 502
    return 500


def api_error_body(exc: LakeVersionError) -> dict[str, Any]:
    body = exc.to_dict()
    body.setdefault("conflicts", [])
    if isinstance(exc, ConflictError) and exc.result is not None:
        body["result"] = exc.result.to_dict()
    return {"error": body}


def iceberg_from_lakeversion(exc: LakeVersionError, *, table_op: bool = False) -> IcebergError:
    """Our error as the Iceberg exception a stock client understands."""
    if isinstance(exc, KeyNotFound):
        return no_such_table(exc.message) if table_op else no_such_namespace(exc.message)
    if isinstance(exc, NotFound):
        # an unknown ref/commit in a prefix or `db@ref`: the table/namespace is not there
        return no_such_table(exc.message) if table_op else no_such_namespace(exc.message)
    if isinstance(exc, TooLarge):  # no Iceberg type of its own: a bad request, status 413
        return IcebergError(413, "BadRequestException", exc.message)
    if isinstance(exc, InvalidInput):
        return bad_request(exc.message)
    if isinstance(exc, AlreadyExists):
        return already_exists(exc.message)
    if isinstance(exc, ConflictError):
        return commit_failed(exc.message)
    if isinstance(exc, (ReadOnlyRef, ProtectedBranch, Forbidden)):
        return IcebergError(403, "ForbiddenException", exc.message)
    if isinstance(exc, CommitOutcomeUnknown):
        return IcebergError(503, "CommitStateUnknownException", exc.message)
    return IcebergError(500, "ServiceFailureException", exc.message)


def iceberg_response(exc: IcebergError) -> SafeJSONResponse:
    return SafeJSONResponse(
        {"error": {"message": exc.message, "type": exc.type, "code": exc.status}},
        status_code=exc.status,
    )


def is_iceberg_path(request: Request) -> bool:
    return request.url.path.startswith("/iceberg")


async def handle_iceberg_error(request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, IcebergError)
    return iceberg_response(exc)


async def handle_lakeversion_error(request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, LakeVersionError)
    if is_iceberg_path(request):
        return iceberg_response(iceberg_from_lakeversion(exc))
    return SafeJSONResponse(api_error_body(exc), status_code=status_of(exc))


#: Iceberg exception names of the statuses the router itself answers (no such route, method)
_ICEBERG_HTTP_TYPES = {404: "NotFoundException", 405: "UnsupportedOperationException"}


async def handle_http_error(request: Request, exc: Exception) -> SafeJSONResponse:
    """The router's own answers (no route for this path or method) in each API's error model,
    not Starlette's `{"detail": ...}`."""
    assert isinstance(exc, HTTPException)
    message = f"{exc.detail}: {request.method} {request.url.path}"
    if is_iceberg_path(request):
        type_ = _ICEBERG_HTTP_TYPES.get(exc.status_code, "BadRequestException")
        return iceberg_response(IcebergError(exc.status_code, type_, message))
    name = "".join(w.capitalize() for w in str(exc.detail).split()) or "HttpError"
    body = {"error": {"type": name, "code": "_".join(str(exc.detail).upper().split()),
                      "message": message, "conflicts": []}}
    return SafeJSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def handle_validation_error(request: Request, exc: Exception) -> SafeJSONResponse:
    """FastAPI's 422 for a malformed body/query becomes our 400 InvalidInput."""
    errors = getattr(exc, "errors", None)
    detail = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
        for e in (errors() if callable(errors) else [])
    ) or str(exc)
    message = f"invalid request: {detail}"
    if is_iceberg_path(request):
        return iceberg_response(bad_request(message))
    return SafeJSONResponse(api_error_body(InvalidInput(message)), status_code=400)


async def handle_unexpected(request: Request, exc: Exception) -> SafeJSONResponse:
    """Anything unforeseen: logged with its trace, answered without it (as a 500, never as
    outcome-unknown: that is only for a store commit that failed ambiguously)."""
    log.error("unexpected error on %s %s", request.method, request.url.path,
              exc_info=(type(exc), exc, exc.__traceback__))
    message = f"internal error ({type(exc).__name__}); see the server log"
    if is_iceberg_path(request):
        return iceberg_response(IcebergError(500, "ServiceFailureException", message))
    return SafeJSONResponse(api_error_body(LakeVersionError(message)), status_code=500)
