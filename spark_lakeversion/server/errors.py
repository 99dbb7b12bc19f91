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
    ConflictError,
    InvalidInput,
    LakeVersionError,
    NotFound,
    marked_message,
)
from spark_lakeversion.formats.iceberg.catalog.errors import (
    IcebergError,
    bad_request,
)

log = logging.getLogger("spark_lakeversion.server")


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: a lone surrogate stored by an older version is sent as its
    JSON escape (``\\ud800``) instead of failing the whole answer."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8", "backslashreplace")




def api_error_body(exc: LakeVersionError) -> dict[str, Any]:
    body = exc.to_dict()
    body.setdefault("conflicts", [])
    if isinstance(exc, ConflictError) and exc.result is not None:
        body["result"] = exc.result.to_dict()
    return {"error": body}


def iceberg_from_lakeversion(exc: LakeVersionError, *, table_op: bool = False) -> IcebergError:
    """Our error as the Iceberg exception a stock client understands (its row in `errors.py`),
    the message behind the error's code marker, which is all an Iceberg client keeps. Only
    not-found depends on the route: a namespace operation answers ``NoSuchNamespace``."""
    type_ = exc.iceberg_type
    if isinstance(exc, NotFound) and not table_op:
        type_ = "NoSuchNamespaceException"
    return IcebergError(exc.iceberg_status, type_, marked_message(exc))


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
    return SafeJSONResponse(api_error_body(exc), status_code=exc.http_status)


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
