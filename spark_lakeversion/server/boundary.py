"""The server's input boundary: every request is checked once, before any handler runs.

Two pure ASGI middlewares wrap the whole app (both APIs):
- `ErrorBoundary` (outermost) turns every exception into a response, so no error ever
  reaches uvicorn, which would close the client's keep-alive connection;
- `InputBoundary` bounds the request line and headers, reads the body while counting
  bytes (and refuses an oversized Content-Length before reading any), then checks it is
  JSON nested at most `max_json_depth` levels with only valid Unicode strings. Handlers
  then read the parsed value with `request_json`, never parsing untrusted bytes themselves.
  The web UI's form posts (`is_ui_path`) are bounded the same way and parsed by the UI.
"""

from __future__ import annotations

import json
import logging
import re
from itertools import accumulate
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spark_lakeversion.errors import InvalidInput, LakeVersionError, TooLarge
from spark_lakeversion.limits import DEFAULT_LIMITS, Limits, invalid_unicode_path

log = logging.getLogger("spark_lakeversion.server")

#: where `InputBoundary` leaves the parsed body in the ASGI scope
SCOPE_JSON = "lakeversion.json"
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def is_ui_path(path: str) -> bool:
    """The web UI's paths (`server.ui`): HTML forms, signed in by session cookie, not JSON
    bodies and bearer tokens."""
    return path in ("/", "/ui") or path.startswith("/ui/")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json(text: str | bytes, what: str, max_depth: int) -> Any:
    """Parse untrusted JSON: UTF-8, nested at most `max_depth`, strings valid Unicode.

    The depth is measured on the text (brackets outside strings) before `json.loads` could
    recurse into a RecursionError; NaN and Infinity are refused (they are not JSON).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{what} is not UTF-8 (invalid byte at {exc.start})") from None
    brackets = _BRACKET.findall(_STRING.sub("", text))
    depth = max(accumulate(_DEPTH_STEP[b] for b in brackets), default=0)
    if depth > max_depth:
        raise InvalidInput(f"{what} is nested {depth} levels deep, over the limit of "
                           f"{max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"{what} is not valid JSON: {str(exc)[:200]}") from None
    where = invalid_unicode_path(value)
    if where is not None:
        raise InvalidInput(f"{what}: the string at {where[:200]} is not valid Unicode (a lone "
                           "surrogate such as \\ud800)")
    return value


def request_json(request: Request) -> Any:
    """The body `InputBoundary` parsed; `InvalidInput` if the request had none."""
    if SCOPE_JSON not in request.scope:
        raise InvalidInput("the request needs a JSON body")
    return request.scope[SCOPE_JSON]


def error_response(path: str, exc: LakeVersionError) -> JSONResponse:
    """`exc` in the error model of the API `path` belongs to."""
    from spark_lakeversion.server.errors import (
        api_error_body,
        iceberg_from_lakeversion,
        iceberg_response,
    )

    if path.startswith("/iceberg"):
        return iceberg_response(iceberg_from_lakeversion(exc))
    return JSONResponse(api_error_body(exc), status_code=exc.http_status)


class InputBoundary:
    """Pure ASGI middleware: body size, JSON nesting and Unicode checked once per request."""

    def __init__(self, app: ASGIApp, limits: Limits = DEFAULT_LIMITS) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_headers(scope)
            body = await self._read(scope, receive)
            if body.strip() and not is_ui_path(str(scope.get("path", ""))):
                scope[SCOPE_JSON] = parse_json(body, "the request body",
                                               self.limits.max_json_depth)
        except LakeVersionError as exc:
            await error_response(str(scope.get("path", "")), exc)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _check_headers(self, scope: Scope) -> None:
        """uvicorn's parser bounds headers that arrive in pieces; this bounds them all."""
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        size += sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))
        if size > self.limits.max_header_bytes:
            raise TooLarge(f"the request line and headers are {size:,} bytes, over the limit of "
                           f"{self.limits.max_header_bytes:,} bytes "
                           f"(lakeversion serve {Limits.option('max_header_bytes')})")

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.limits.max_body_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise InvalidInput("Content-Length is not a number") from None
                if declared > limit:
                    raise self._too_large(declared)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(size, at_least=True)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self, size: int, at_least: bool = False) -> TooLarge:
        limit = self.limits.max_body_bytes
        return TooLarge(f"the request body is {'over ' if at_least else ''}{size:,} bytes, "
                        f"over the limit of {limit:,} bytes "
                        f"(lakeversion serve {Limits.option('max_body_bytes')})")


class ErrorBoundary:
    """Outermost pure ASGI middleware: every exception becomes a response in the API's
    error model; none re-raises, so keep-alive connections stay usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:  # half-sent: only closing the connection can tell the client
                log.exception("error after the response started: %s", scope.get("path"))
                raise
            from spark_lakeversion.server.errors import handle_unexpected

            response = await handle_unexpected(Request(scope), exc)
            await response(scope, receive, send)
