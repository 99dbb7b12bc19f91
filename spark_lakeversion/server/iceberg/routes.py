"""The Iceberg REST catalog's routes under `/iceberg`: parse the request, run the catalog
on the worker pool, map its answer to HTTP. Registered with and without `{prefix}`,
specific paths first (namespaces may contain `/` once decoded, hence `{namespace:path}`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.formats.iceberg.catalog.catalog import IcebergCatalog
from spark_lakeversion.formats.iceberg.catalog.requests import (
    CommitTableBody,
    CommitViewBody,
    CreateNamespaceBody,
    CreateTableRequest,
    CreateViewBody,
    RegisterTableRequest,
    RegisterViewBody,
    RenameBody,
    TransactionBody,
    UpdateNamespaceBody,
    parse,
)
from spark_lakeversion.formats.iceberg.catalog.tables import LoadedTable
from spark_lakeversion.server.boundary import request_json
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.server.headers import commit_meta
from spark_lakeversion.server.iceberg.paging import (
    PageRequest,
    identifier_order,
    namespace_order,
    paged,
)
from spark_lakeversion.server.iceberg.render import table_response, view_response
from spark_lakeversion.server.iceberg.vending import (
    StorageAccess,
    storage_access,
    wants_vended_credentials,
)

#: the path prefix of every route `/v1/config` advertises (as the spec spells them)
_ADVERTISED_BASE = "/v1/{prefix}/"


def router(ctx: ServerContext) -> APIRouter:
    """Routes under `/iceberg` over the context's catalog."""
    catalog = ctx.catalog
    api = APIRouter(prefix="/iceberg", include_in_schema=False)

    endpoints: list[str] = []

    @api.get("/v1/config")
    async def get_config(warehouse: str | None = None) -> dict[str, Any]:
        prefix = await _run(catalog.namespaces.config_prefix, warehouse)
        return {"defaults": {}, "overrides": {"prefix": prefix}, "endpoints": endpoints}

    for base in ("/v1/{prefix}", "/v1"):
        _add_routes(api, catalog, base)
    endpoints.extend(served_endpoints(api))
    return api


def served_endpoints(api: APIRouter) -> list[str]:
    """What `/v1/config` advertises: exactly the routes registered, in the spec's spelling
    (`METHOD /v1/{prefix}/...`), so clients enable views, transactions and so on."""
    found: list[str] = []
    for route in api.routes:
        if not isinstance(route, APIRoute):
            continue
        path = route.path.removeprefix(api.prefix)
        if not path.startswith(_ADVERTISED_BASE):
            continue
        path = path.replace("{namespace:path}", "{namespace}")
        found.extend(f"{method} {path}" for method in sorted(route.methods))
    return list(dict.fromkeys(found))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def _add_routes(router: APIRouter, catalog: IcebergCatalog, base: str) -> None:
    ns_path = base + "/namespaces/{namespace:path}"
    tbl_path = ns_path + "/tables/{table}"

    @router.post(base + "/tables/rename", status_code=204)
    async def rename(request: Request, prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        req = parse(RenameBody, body)
        await _run(catalog.tables.rename_table, prefix, req, meta)
        return Response(status_code=204)

    @router.post(base + "/transactions/commit", status_code=204)
    async def transaction(request: Request, prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        req = parse(TransactionBody, body)
        await _run(catalog.tables.commit_transaction, prefix, req, meta)
        return Response(status_code=204)

    @router.post(tbl_path + "/metrics", status_code=204)
    async def metrics(namespace: str, table: str, prefix: str | None = None) -> Response:
        return Response(status_code=204)  # accepted; we keep no scan/commit reports

    def vended(request: Request, loaded: LoadedTable) -> StorageAccess:
        return storage_access(catalog.io, loaded.metadata.location,
                              wants_vended_credentials(request))

    @router.get(tbl_path + "/credentials")
    async def load_credentials(request: Request, namespace: str, table: str,
                               prefix: str | None = None) -> dict[str, Any]:
        """The spec's LoadCredentialsResponse (refreshing vended credentials)."""
        loaded = await _run(catalog.tables.load_table, prefix, namespace, table)
        return {"storage-credentials": vended(request, loaded).credentials}

    @router.get(tbl_path)
    async def load_table(request: Request, namespace: str, table: str,
                         prefix: str | None = None) -> Response:
        loaded = await _run(catalog.tables.load_table, prefix, namespace, table)
        return table_response(loaded, vended(request, loaded))

    @router.head(tbl_path)
    async def table_exists(namespace: str, table: str, prefix: str | None = None) -> Response:
        exists = await _run(catalog.tables.table_exists, prefix, namespace, table)
        return Response(status_code=204 if exists else 404)

    @router.post(tbl_path)
    async def commit_table(request: Request, namespace: str, table: str,
                           prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        return table_response(await _run(catalog.tables.commit_table, prefix, namespace, table,
                                         parse(CommitTableBody, body), meta))

    @router.delete(tbl_path, status_code=204)
    async def drop_table(request: Request, namespace: str, table: str,
                         prefix: str | None = None) -> Response:
        purge = _truthy(request.query_params.get("purgeRequested"))
        outcome = await _run(catalog.tables.drop_table, prefix, namespace, table, purge,
                             commit_meta(request))
        headers = {}
        if purge and not outcome.get("purged"):
            headers["X-Lakeversion-Purge"] = "deferred: files are reclaimed by lakeversion gc"
        return Response(status_code=204, headers=headers)

    _add_view_routes(router, catalog, base)

    @router.get(ns_path + "/tables")
    async def list_tables(request: Request, namespace: str, prefix: str | None = None) -> Any:
        page = _page(request)
        return paged(await _run(catalog.tables.list_tables, prefix, namespace), "identifiers",
                     identifier_order, page)

    @router.post(ns_path + "/tables")
    async def create_table(request: Request, namespace: str,
                           prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        req = parse(CreateTableRequest, body)
        loaded = await _run(catalog.tables.create_table, prefix, namespace, req, meta)
        return table_response(loaded, vended(request, loaded))

    @router.post(ns_path + "/register")
    async def register_table(request: Request, namespace: str,
                             prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        req = parse(RegisterTableRequest, body)
        loaded = await _run(catalog.tables.register_table, prefix, namespace, req, meta)
        return table_response(loaded, vended(request, loaded))

    @router.post(ns_path + "/properties")
    async def update_namespace(request: Request, namespace: str,
                               prefix: str | None = None) -> Any:
        body, meta = request_json(request), commit_meta(request)
        req = parse(UpdateNamespaceBody, body)
        return await _run(catalog.namespaces.update_namespace, prefix, namespace, req, meta)

    @router.get(base + "/namespaces")
    async def list_namespaces(request: Request, prefix: str | None = None) -> Any:
        page = _page(request)
        return paged(await _run(catalog.namespaces.list_namespaces, prefix,
                                request.query_params.get("parent")),
                     "namespaces", namespace_order, page)

    @router.post(base + "/namespaces")
    async def create_namespace(request: Request, prefix: str | None = None) -> Any:
        body, meta = request_json(request), commit_meta(request)
        req = parse(CreateNamespaceBody, body)
        return await _run(catalog.namespaces.create_namespace, prefix, req, meta)

    @router.get(ns_path)
    async def load_namespace(namespace: str, prefix: str | None = None) -> Any:
        return await _run(catalog.namespaces.load_namespace, prefix, namespace)

    @router.head(ns_path)
    async def namespace_exists(namespace: str, prefix: str | None = None) -> Response:
        exists = await _run(catalog.namespaces.namespace_exists, prefix, namespace)
        return Response(status_code=204 if exists else 404)

    @router.delete(ns_path, status_code=204)
    async def drop_namespace(request: Request, namespace: str,
                             prefix: str | None = None) -> Response:
        await _run(catalog.namespaces.drop_namespace, prefix, namespace, commit_meta(request))
        return Response(status_code=204)


def _add_view_routes(router: APIRouter, catalog: IcebergCatalog, base: str) -> None:
    """The view endpoints; item routes come before the table and view listings, which a
    `{namespace:path}` could otherwise swallow (a view named `tables`)."""
    ns_path = base + "/namespaces/{namespace:path}"
    view_path = ns_path + "/views/{view}"

    @router.get(view_path)
    async def load_view(namespace: str, view: str, prefix: str | None = None) -> Response:
        return view_response(await _run(catalog.views.load_view, prefix, namespace, view))

    @router.head(view_path)
    async def view_exists(namespace: str, view: str, prefix: str | None = None) -> Response:
        exists = await _run(catalog.views.view_exists, prefix, namespace, view)
        return Response(status_code=204 if exists else 404)

    @router.post(view_path)
    async def replace_view(request: Request, namespace: str, view: str,
                           prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        req = parse(CommitViewBody, body)
        return view_response(await _run(catalog.views.commit_view, prefix, namespace, view, req,
                                        meta))

    @router.delete(view_path, status_code=204)
    async def drop_view(request: Request, namespace: str, view: str,
                        prefix: str | None = None) -> Response:
        await _run(catalog.views.drop_view, prefix, namespace, view, commit_meta(request))
        return Response(status_code=204)

    @router.get(ns_path + "/views")
    async def list_views(request: Request, namespace: str, prefix: str | None = None) -> Any:
        page = _page(request)
        return paged(await _run(catalog.views.list_views, prefix, namespace), "identifiers",
                     identifier_order, page)

    @router.post(ns_path + "/views")
    async def create_view(request: Request, namespace: str,
                          prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        req = parse(CreateViewBody, body)
        return view_response(await _run(catalog.views.create_view, prefix, namespace, req, meta))

    @router.post(ns_path + "/register-view")
    async def register_view(request: Request, namespace: str,
                            prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        req = parse(RegisterViewBody, body)
        return view_response(await _run(catalog.views.register_view, prefix, namespace, req, meta))

    @router.post(base + "/views/rename", status_code=204)
    async def rename_view(request: Request, prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        req = parse(RenameBody, body)
        await _run(catalog.views.rename_view, prefix, req, meta)
        return Response(status_code=204)


def _page(request: Request) -> PageRequest:
    """`pageToken`/`pageSize`, checked before the listing runs."""
    return PageRequest.parse(request.query_params.get("pageToken"),
                             request.query_params.get("pageSize"))


async def _run(fn: Any, *args: Any) -> Any:
    """Store and file I/O block: run them on the worker pool, not the event loop."""
    return await run_in_threadpool(fn, *args)
