"""Authentication: who is calling, decided once per request before routing.

`Authentication` (pure ASGI middleware) reads `Authorization: Bearer TOKEN` (the scheme in
any case, RFC 7235), finds the principal holding the token (`AuthConfig.authenticate`,
constant time) and sets it for the request in a context variable; handlers and the worker
threads they start see it through `current_principal`, which `AccessControlledStore`
asks on every operation. No principal means 401 before any body is read. The token is never
logged, echoed or audited.

Without authentication, `ClientAuthor` sets an unrestricted principal named by the
client's `X-Lakeversion-Author` header (`anonymous` without one), so the audit trail
records on every server: it names who said they were, not who was proven to be.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from spark_lakeversion.auth.config import AuthConfig
from spark_lakeversion.auth.grants import ANONYMOUS, Principal
from spark_lakeversion.errors import InvalidInput, Unauthorized
from spark_lakeversion.limits import DEFAULT_LIMITS, check_text
from spark_lakeversion.server.boundary import error_response, is_ui_path

#: outside a request nobody is authenticated: no grants, so every check fails closed
NOBODY = Principal("unauthenticated")
_CURRENT: ContextVar[Principal] = ContextVar("lakeversion_principal", default=NOBODY)
_MESSAGE = "missing or unknown bearer token (Authorization: Bearer TOKEN)"


def current_principal() -> Principal:
    """The principal of the request being served (`NOBODY` outside one)."""
    return _CURRENT.get()


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header (scheme in any case); None when
    absent, of another scheme, or empty."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class Authentication:
    def __init__(self, app: ASGIApp, config: AuthConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if is_ui_path(str(scope.get("path", ""))):
            # the web UI signs in with the same tokens, once, into a session of its own
            # (`server.ui.session`); its routes act as the session's principal
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope.get("headers", []))
        principal = self.config.authenticate(token) if token is not None else None
        if principal is None:
            await _unauthorized(scope, send)
            return
        reset = _CURRENT.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            _CURRENT.reset(reset)


@contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    """Serve the rest of this request (and the worker threads it starts) as `principal`:
    the web UI's session principal."""
    reset = _CURRENT.set(principal)
    try:
        yield
    finally:
        _CURRENT.reset(reset)


def client_author(headers: list[tuple[bytes, bytes]]) -> Principal:
    """The unrestricted principal a server without authentication acts as: named by the
    `X-Lakeversion-Author` header when it is a valid commit author, else `anonymous`."""
    for name, value in headers:
        if name == b"x-lakeversion-author":
            author = value.decode("utf-8", "replace").strip()
            try:
                check_text(author, "X-Lakeversion-Author",
                           DEFAULT_LIMITS.max_property_value_bytes, "max_property_value_bytes")
            except InvalidInput:
                return ANONYMOUS
            return Principal(author, unrestricted=True) if author else ANONYMOUS
    return ANONYMOUS


class ClientAuthor:
    """No authentication: every request acts as `client_author(headers)`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reset = _CURRENT.set(client_author(scope.get("headers", [])))
        try:
            await self.app(scope, receive, send)
        finally:
            _CURRENT.reset(reset)


async def _unauthorized(scope: Scope, send: Send) -> None:
    """401 in the API's own error shape (Iceberg's under /iceberg): `errors.Unauthorized`'s row."""
    response = error_response(str(scope.get("path", "")), Unauthorized(_MESSAGE))
    payload = response.body
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"www-authenticate", b"Bearer")]})
    await send({"type": "http.response.body", "body": payload})
