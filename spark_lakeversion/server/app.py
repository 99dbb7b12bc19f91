"""The ASGI app: the Iceberg REST catalog under `/iceberg`, our API under `/api/v1`.

One process-wide store; handlers run store and file I/O on the worker pool. With a token
or an auth config, every request (both APIs, the OpenAPI document too) must carry
`Authorization: Bearer TOKEN`; the check runs before routing, so an unauthenticated request
can write nothing. The routers always see the store through `AccessControlledStore`, which
checks the principal's grants on every operation and keeps the audit trail; without
authentication the principal is the client's `X-Lakeversion-Author` (or `anonymous`),
unrestricted, so the trail records on every server.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from spark_lakeversion.auth.config import AuthConfig
from spark_lakeversion.errors import InvalidInput, LakeVersionError
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.iceberg.catalog.catalog import IcebergCatalog
from spark_lakeversion.formats.iceberg.catalog.settings import AppendSettings
from spark_lakeversion.limits import Limits
from spark_lakeversion.locations import AllowedRoots, root_uri, warehouse_uri
from spark_lakeversion.server import (
    api_v1,
    audit_routes,
    delta_routes,
    gates_routes,
    gc_routes,
    review_routes,
    rows_routes,
)
from spark_lakeversion.server.auth import Authentication, ClientAuthor, current_principal
from spark_lakeversion.server.boundary import ErrorBoundary, InputBoundary
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.server.errors import (
    IcebergError,
    SafeJSONResponse,
    handle_http_error,
    handle_iceberg_error,
    handle_lakeversion_error,
    handle_validation_error,
)
from spark_lakeversion.server.iceberg import routes as iceberg_routes
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.versioning.access import AccessControlledStore
from spark_lakeversion.versioning.gates.policy import CheckPolicy
from spark_lakeversion.wiring import open_store

log = logging.getLogger("spark_lakeversion.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 19120


def uvicorn_limits(limits: Limits) -> dict[str, Any]:
    """uvicorn settings enforcing the header limit: the h11 parser (always, so the limit
    does not depend on what is installed) caps the request line and headers together."""
    return {"http": "h11", "h11_max_incomplete_event_size": limits.max_header_bytes}


def _mount_ui(app: FastAPI, ctx: ServerContext) -> None:
    """The web UI at /ui (/ redirects there), when the `ui` extra is installed; else /ui
    says how to get it."""
    try:
        import python_multipart  # noqa: F401 - form posts need it

        from spark_lakeversion.server import ui
    except ImportError as exc:
        missing = str(exc)

        @app.get("/ui", include_in_schema=False)
        @app.get("/", include_in_schema=False)
        async def no_ui() -> Any:
            raise InvalidInput(f"the web UI needs pip install 'spark-lakeversion[ui]' "
                               f"({missing})")
        return
    ui.mount(app, ctx)


def create_app(store: VersionStore | str | None = None, warehouse: str | None = None,
               token: str | None = None, limits: Limits | None = None,
               allowed_locations: Sequence[str] | None = None,
               auth: AuthConfig | None = None,
               io: Mapping[str, str] | None = None,
               check_modules: Sequence[str] | None = None,
               webhook_allow: Sequence[str] | None = None,
               appends: AppendSettings | None = None) -> FastAPI:
    """Build the app over `store` (an open store, a store URL, or the default store).

    Authentication: `auth` (principals and grants, `lakeversion serve --auth-config`), or
    `token` (one all-powerful principal); an empty token is `InvalidInput`, never "no
    auth"; neither means no authentication.

    `limits` (default: `Limits()`) and `io`, the FileIO properties every file access uses
    (`spark_lakeversion.fileio.FileIOConfig`; default: the standard `AWS_...`/`PYICEBERG_...`
    environment), are the store's: a store URL is opened with them (`open_store`), and an
    open store keeps those it was opened with (giving other ones is `InvalidInput`), so
    building another app over the same store never changes its configuration. The server
    reads and writes table files only under its allowed roots: the warehouse plus
    `allowed_locations` (`lakeversion serve --allowed-location URI`). A bad root is
    `InvalidInput` here, before anything listens.
    `check_modules` and `webhook_allow` are what merge-gate checks may reach (`CheckPolicy`:
    `lakeversion serve --check-module NAME --webhook-allow HOST[:PORT]`; neither given: the
    environment's, `CheckPolicy.from_environment`), part of the store's configuration too.
    `appends`: how the Iceberg catalog rebases and groups concurrent appends
    (`lakeversion serve --no-rebase-appends --group-commit-max --group-commit-wait`)."""
    policy = None if check_modules is None and webhook_allow is None else \
        CheckPolicy.of(check_modules, webhook_allow)
    if token is not None:
        if auth is not None:
            raise InvalidInput("give a token or an auth config, not both")
        auth = AuthConfig.single(token)
    warehouse = warehouse_uri(warehouse)
    roots = AllowedRoots([warehouse, *(root_uri(r) for r in allowed_locations or ())])
    if not isinstance(store, VersionStore):
        store = open_store(store, limits=limits, io=io, check_policy=policy)
    elif limits is not None and limits != store.limits or \
            io is not None and FileIOConfig.of(io) != FileIOConfig.of(store.io_properties) or \
            policy is not None and policy != store.check_policy:
        raise InvalidInput("a store's limits, FileIO properties and check policy are fixed "
                           "when it is opened: open_store(url, limits=..., io=..., "
                           "check_policy=...)")
    limits, io = store.limits, FileIOConfig.of(store.io_properties)
    backing = store
    store = AccessControlledStore(backing, current_principal)  # grants (if any) and audit
    catalog = IcebergCatalog(store, warehouse, roots, io, appends,
                             caller=lambda: current_principal().name)
    app = FastAPI(
        title="spark-lakeversion",
        summary="Git for lakehouse tables: refs, commits, diff, merge (the Iceberg REST "
                "catalog is served under /iceberg, per the Apache Iceberg REST spec)",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        default_response_class=SafeJSONResponse,
    )
    ctx = ServerContext(store, catalog, limits, auth, backing)
    app.state.ctx = ctx
    for router in (api_v1.router, gc_routes.router, gates_routes.router, delta_routes.router,
                   audit_routes.router, review_routes.router, rows_routes.router,
                   iceberg_routes.router):
        app.include_router(router(ctx))
    _mount_ui(app, ctx)
    app.add_exception_handler(IcebergError, handle_iceberg_error)
    app.add_exception_handler(LakeVersionError, handle_lakeversion_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(HTTPException, handle_http_error)
    # the last added runs first: errors, then auth (before any body is read), then input
    app.add_middleware(InputBoundary, limits=limits)
    if auth is not None:
        app.add_middleware(Authentication, config=auth)
    else:
        app.add_middleware(ClientAuthor)  # the audit trail names the client's author
    app.add_middleware(ErrorBoundary)
    return app
