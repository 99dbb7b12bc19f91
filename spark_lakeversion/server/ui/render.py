"""How every UI request runs: session (or redirect to the login page), the CSRF check of a
state-changing request, the work on a worker thread as the session's principal (so the
`AccessControlledStore` checks its grants and audits it as for any API client), then a
template, or our typed error as a page with the error's status: never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from spark_lakeversion.auth.grants import Permission, Principal
from spark_lakeversion.errors import Forbidden, InvalidInput, LakeVersionError
from spark_lakeversion.server.auth import acting_as, client_author
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.server.ui.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    Sessions,
    same_secret,
    session_table,
)

log = logging.getLogger("spark_lakeversion.server.ui")
HERE = Path(__file__).parent
#: scripts and styles from the package only; no framing, forms post only here
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
#: the most bytes of one form field the UI accepts
MAX_FIELD = 100_000


def ref_url(ref: str) -> str:
    return "/ui/ref/" + quote(ref, safe="")


def table_url(ref: str, table: str) -> str:
    return f"{ref_url(ref)}/table/{quote(table, safe='')}"


def short(commit_id: str | None) -> str:
    return (commit_id or "")[:12]


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.globals.update(ref_url=ref_url, table_url=table_url, short=short,
                       quote=lambda s: quote(str(s), safe=""))
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M:%S UTC") if d else ""
    return env


@dataclass(frozen=True)
class Page:
    template: str
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass
class View:
    """One request as the UI's handlers see it."""

    ctx: ServerContext
    principal: Principal
    query: Mapping[str, str]
    form: Mapping[str, str]

    @property
    def store(self) -> Any:
        return self.ctx.store

    @property
    def io(self) -> Mapping[str, str]:
        return self.ctx.io

    def may(self, permission: str, ref: str) -> bool:
        return self.principal.may(Permission(permission), ref)

    def field(self, name: str, default: str | None = None) -> str:
        value = self.form.get(name, self.query.get(name, default))
        if value is None:
            raise InvalidInput(f"the form needs {name!r}")
        return value

    def number(self, name: str, default: int, low: int = 0, high: int = 1_000_000) -> int:
        raw = self.query.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(str(raw))
        except ValueError:
            raise InvalidInput(f"{name} must be a whole number") from None
        if not low <= value <= high:
            raise InvalidInput(f"{name} must be from {low} to {high}")
        return value


Handler = Callable[[View], "Page | Response"]


class Ui:
    """The UI's shared parts: the server context, the sessions and the templates."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        # the store's database keeps the sessions (fixed here, for the server's life)
        self.sessions = Sessions(session_table(ctx.backing or ctx.store), ctx.auth)
        self.env = _environment()

    @property
    def auth_on(self) -> bool:
        return self.ctx.auth is not None

    def render(self, request: Request, page: Page, session: Session | None) -> HTMLResponse:
        principal = session.principal if session else None
        html = self.env.get_template(page.template).render(
            **page.values, me=principal, csrf=session.csrf if session else "",
            auth_on=self.auth_on, path=request.url.path,
            is_admin=bool(principal and principal.may_everywhere(Permission.ADMIN)))
        return HTMLResponse(html, status_code=page.status,
                            headers={"Cache-Control": "no-store",
                                     "Content-Security-Policy": CSP,
                                     "X-Frame-Options": "DENY",
                                     "Referrer-Policy": "same-origin",
                                     "X-Content-Type-Options": "nosniff"})

    def error(self, request: Request, error: LakeVersionError,
              session: Session | None) -> HTMLResponse:
        status = error.http_status if error.http_status < 500 else 409
        return self.render(request, Page("error.html", {
            "error_type": type(error).__name__, "code": error.code,
            "message": error.message}, status), session)

    def session_of(self, request: Request) -> tuple[Session | None, str | None]:
        """The request's session, and the id of one just opened (no authentication)."""
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is not None or self.auth_on:
            return session, None
        sid, session = self.sessions.open(client_author(request.scope.get("headers", [])))
        return session, sid

    def set_session_cookie(self, request: Request, response: Response, sid: str) -> None:
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")

    async def handle(self, request: Request, handler: Handler, *,
                     write: bool = False) -> Response:
        session, new_sid = await run_in_threadpool(self.session_of, request)
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/ui/login?next=" + quote(target, safe=""), 303)
        try:
            form: dict[str, str] = {}
            if write:
                form = await read_form(request)
                given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
                if not same_secret(given, session.csrf):
                    raise Forbidden("this form is missing its CSRF token, or it is stale: "
                                    "reload the page and try again")
            view = View(self.ctx, session.principal, dict(request.query_params), form)

            def run() -> Page | Response:
                with acting_as(session.principal):
                    return handler(view)

            result = await run_in_threadpool(run)
            response = result if isinstance(result, Response) \
                else self.render(request, result, session)
        except LakeVersionError as exc:
            response = self.error(request, exc, session)
        except Exception:  # noqa: BLE001 - a page never shows a trace
            log.exception("UI page %s failed", request.url.path)
            response = self.render(request, Page("error.html", {
                "error_type": "UnexpectedError", "code": "UNEXPECTED",
                "message": "the server could not build this page (the error is in its "
                           "log)"}, 409), session)
        if new_sid is not None:
            self.set_session_cookie(request, response, new_sid)
        return response


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded or multipart form's text fields (files refused), each bounded."""
    try:
        form = await request.form(max_files=0, max_fields=200)
    except Exception:  # noqa: BLE001 - a malformed form is bad input
        raise InvalidInput("the form could not be read") from None
    values: dict[str, str] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidInput("the UI's forms take no files")
        if len(value) > MAX_FIELD:
            raise InvalidInput(f"form field {name!r} is over {MAX_FIELD:,} characters")
        values[name] = value
    return values
