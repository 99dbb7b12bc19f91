"""The web UI: server-rendered pages (Jinja2 templates, htmx from `static/`) over the same
store the APIs use, at `/ui` (`/` redirects there). A surface on the server floor.

Routes (people bookmark and paste them): `/ui/login`, `/ui/refs`, `/ui/ref/{ref}` (the
catalog), `/ui/ref/{ref}/table/{table}`, `/ui/ref/{ref}/log`, `/ui/commit/{id}`,
`/ui/compare/{a}...{b}`, `/ui/mr`, `/ui/mr/{n}`, `/ui/checks`, `/ui/audit`. A ref name may
hold `/`: the UI's links encode it (`%2F`), and a pasted one with a plain `/` is read
greedily (`.../log` and `.../table/{t}` at the end win).

Every page runs as the session's principal through the `AccessControlledStore`
(`render.Ui.handle`); what it may not do is shown disabled, and refused if posted anyway.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from spark_lakeversion.errors import Forbidden, InvalidInput, LakeVersionError, NotFound
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.server.ui import browse, review
from spark_lakeversion.server.ui.render import Page, Ui, View, read_form
from spark_lakeversion.server.ui.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    new_secret,
    same_secret,
)

STATIC = Path(__file__).parent / "static"


def _ref_route(request: Request) -> tuple[str, str, str]:
    """(page, ref, table) of `/ui/ref/...`, read from the raw path so `%2F` stays in a name."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    rest = raw.split(b"?", 1)[0][len(b"/ui/ref/"):]
    try:
        parts = [unquote(p.decode("ascii"), errors="strict") for p in rest.split(b"/")]
    except UnicodeDecodeError:
        raise InvalidInput("the ref or table in this address is not valid UTF-8") from None
    if len(parts) >= 2 and parts[-1] == "log":
        return "log", "/".join(parts[:-1]), ""
    if len(parts) >= 3 and "table" in parts[1:-1]:
        at = len(parts) - 1 - parts[::-1].index("table", 1)
        return "table", "/".join(parts[:at]), "/".join(parts[at + 1:])
    return "catalog", "/".join(parts), ""


def _compare_refs(spec: str) -> tuple[str, str]:
    a, sep, b = spec.partition("...")
    if not sep or not a or not b:
        raise InvalidInput("compare takes two refs as A...B, e.g. /ui/compare/main...dev")
    return a, b


def _local(target: str | None) -> str:
    """Only a UI path is a place to go after sign-in (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and \
            "\\" not in target:
        return target
    return "/ui/refs"


def router(ctx: ServerContext) -> APIRouter:
    ui = Ui(ctx)
    r = APIRouter(include_in_schema=False)

    @r.get("/")
    async def root() -> Response:
        return RedirectResponse("/ui/refs", 307)

    @r.get("/ui")
    @r.get("/ui/")
    async def home() -> Response:
        return RedirectResponse("/ui/refs", 307)

    # ---- sign-in ------------------------------------------------------------------------
    def login_form(request: Request, status: int = 200, message: str = "") -> HTMLResponse:
        token = new_secret()
        response = ui.render(request, Page("login.html", {
            "login_csrf": token, "next": _local(request.query_params.get("next")),
            "message": message}, status), None)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/ui/login")
        return response

    @r.get("/ui/login")
    async def login_page(request: Request) -> Response:
        if not ui.auth_on:
            return RedirectResponse("/ui/refs", 303)
        return login_form(request)

    @r.post("/ui/login")
    async def login(request: Request) -> Response:
        try:
            form = await read_form(request)
        except LakeVersionError as exc:
            return ui.error(request, exc, None)
        if not same_secret(form.get(CSRF_FIELD), request.cookies.get(LOGIN_CSRF_COOKIE)):
            return ui.error(request, Forbidden(
                "the sign-in form is missing its CSRF token, or it is stale: reload the "
                "page and try again"), None)
        if ctx.auth is None:
            return RedirectResponse("/ui/refs", 303)
        token = form.get("token", "").strip()
        principal = ctx.auth.authenticate(token) if token else None
        if principal is None:
            return login_form(request, 401, "unknown token: use a token of the server's "
                                            "auth config (lakeversion token new)")
        sid, _ = await run_in_threadpool(ui.sessions.open, principal, token)
        response = RedirectResponse(_local(form.get("next")), 303)
        ui.set_session_cookie(request, response, sid)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/login")
        return response

    @r.post("/ui/logout")
    async def logout(request: Request) -> Response:
        def out(view: View) -> Response:
            ui.sessions.close(request.cookies.get(SESSION_COOKIE))
            response = RedirectResponse("/ui/login" if ui.auth_on else "/ui/refs", 303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        return await ui.handle(request, out, write=True)

    # ---- refs, catalog, tables, log, commits, compare -------------------------------------
    @r.get("/ui/refs")
    async def refs(request: Request) -> Response:
        return await ui.handle(request, browse.refs_page)

    @r.post("/ui/refs/create")
    async def create_ref(request: Request) -> Response:
        return await ui.handle(request, browse.create_ref, write=True)

    @r.post("/ui/refs/delete")
    async def delete_ref(request: Request) -> Response:
        return await ui.handle(request, browse.delete_ref, write=True)

    @r.get("/ui/go")
    async def go(request: Request) -> Response:
        return await ui.handle(request, browse.go)

    @r.get("/ui/ref/{rest:path}")
    async def ref_pages(request: Request, rest: str) -> Response:
        def page(view: View) -> Page:
            kind, ref, table = _ref_route(request)
            if kind == "log":
                return browse.log_page(view, ref)
            if kind == "table":
                return browse.table_page(view, ref, table)
            return browse.catalog_page(view, ref)
        return await ui.handle(request, page)

    @r.post("/ui/ref/{rest:path}")
    async def ref_posts(request: Request, rest: str) -> Response:
        def post(view: View) -> Response:
            kind, ref, table = _ref_route(request)
            if kind != "table" or not table.endswith("/rollback"):
                raise NotFound("no such form in the web UI")
            return browse.rollback(view, ref, table[:-len("/rollback")])
        return await ui.handle(request, post, write=True)

    @r.get("/ui/commit/{commit_id}")
    async def commit(request: Request, commit_id: str) -> Response:
        return await ui.handle(request, lambda v: browse.commit_page(v, commit_id))

    @r.post("/ui/commit/{commit_id}/revert")
    async def revert(request: Request, commit_id: str) -> Response:
        return await ui.handle(request, lambda v: browse.revert(v, commit_id), write=True)

    @r.get("/ui/compare/{spec:path}")
    async def compare(request: Request, spec: str) -> Response:
        return await ui.handle(request, lambda v: browse.compare_page(v, *_compare_refs(spec)))

    @r.post("/ui/compare/{spec:path}")
    async def compare_post(request: Request, spec: str) -> Response:
        action, _, rest = spec.rpartition("/")
        if rest == "checks":
            return await ui.handle(request, lambda v: browse.run_checks(
                v, *_compare_refs(action)), write=True)
        if rest == "merge":
            return await ui.handle(request, lambda v: browse.merge(
                v, *_compare_refs(action)), write=True)
        return await ui.handle(request, _not_found, write=True)

    # ---- merge requests, checks, audit ----------------------------------------------------
    @r.get("/ui/mr")
    async def mr_list(request: Request) -> Response:
        return await ui.handle(request, review.mr_list)

    @r.post("/ui/mr/open")
    async def mr_open(request: Request) -> Response:
        return await ui.handle(request, review.open_mr, write=True)

    @r.get("/ui/mr/{number}")
    async def mr(request: Request, number: str) -> Response:
        return await ui.handle(request, lambda v: review.mr_page(v, number))

    @r.post("/ui/mr/{number}/{action}")
    async def mr_action(request: Request, number: str, action: str) -> Response:
        handler = {"approve": review.approve, "merge": review.merge,
                   "close": review.close, "checks": review.run_checks}.get(action)
        if handler is None:
            return await ui.handle(request, _not_found, write=True)
        return await ui.handle(request, lambda v: handler(v, number), write=True)

    @r.get("/ui/checks")
    async def checks(request: Request) -> Response:
        return await ui.handle(request, review.checks_page)

    @r.get("/ui/audit")
    async def audit(request: Request) -> Response:
        return await ui.handle(request, review.audit_page)

    @r.get("/ui/{rest:path}")
    async def unknown(request: Request, rest: str) -> Response:
        return await ui.handle(request, _not_found)

    return r


def _not_found(view: View) -> Page:
    raise NotFound("no such page in the web UI (see /ui/refs)")


def mount(app: FastAPI, ctx: ServerContext) -> None:
    """Serve the UI and its static files from `app`."""
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(router(ctx))
