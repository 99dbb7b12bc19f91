"""The Iceberg REST catalog's routes under `/iceberg`: parse the request, run the catalog
on the worker pool, map its answer to HTTP. Registered with and without `{prefix}`,
specific paths first (namespaces may contain `/` once decoded, hence `{namespace:path}`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from spark_lakeversion.server.boundary import request_json
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.server.headers import commit_meta
from spark_lakeversion.server.iceberg.catalog import IcebergCatalog
from spark_lakeversion.server.iceberg.paging import (
    PageRequest,
    identifier_order,
    namespace_order,
    paged,
)
from spark_lakeversion.server.iceberg.render import table_response, view_response

#: the path prefix of every route `/v1/config` advertises (as the spec spells them)
_ADVERTISED_BASE = "/v1/{prefix}/"


def router(ctx: ServerContext) -> APIRouter:
    """Routes under `/iceberg` over the context's catalog."""
    catalog = ctx.catalog
    api = APIRouter(prefix="/iceberg", include_in_schema=False)

    endpoints: list[str] = []

    @api.get("/v1/config")
    async def get_config(warehouse: str | None = None) -> dict[str, Any]:
        prefix = await _run(catalog.config_prefix, warehouse)
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
        await _run(catalog.rename_table, prefix, body, meta)
        return Response(status_code=204)

    @router.post(base + "/transactions/commit", status_code=204)
    async def transaction(request: Request, prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        await _run(catalog.commit_transaction, prefix, body, meta)
        return Response(status_code=204)

    @router.post(tbl_path + "/metrics", status_code=204)
    async def metrics(namespace: str, table: str, prefix: str | None = None) -> Response:
        return Response(status_code=204)  # accepted; we keep no scan/commit reports

    @router.get(tbl_path)
    async def load_table(namespace: str, table: str, prefix: str | None = None) -> Response:
        return table_response(await _run(catalog.load_table, prefix, namespace, table))

    @router.head(tbl_path)
    async def table_exists(namespace: str, table: str, prefix: str | None = None) -> Response:
        exists = await _run(catalog.table_exists, prefix, namespace, table)
        return Response(status_code=204 if exists else 404)

    @router.post(tbl_path)
    async def commit_table(request: Request, namespace: str, table: str,
                           prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        return table_response(await _run(catalog.commit_table, prefix, namespace, table, body,
                                      meta))

    @router.delete(tbl_path, status_code=204)
    async def drop_table(request: Request, namespace: str, table: str,
                         prefix: str | None = None) -> Response:
        purge = _truthy(request.query_params.get("purgeRequested"))
        outcome = await _run(catalog.drop_table, prefix, namespace, table, purge,
                             commit_meta(request))
        headers = {}
        if purge and not outcome.get("purged"):
            headers["X-Lakeversion-Purge"] = "deferred: files are reclaimed by lakeversion gc"
        return Response(status_code=204, headers=headers)

    _add_view_routes(router, catalog, base)

    @router.get(ns_path + "/tables")
    async def list_tables(request: Request, namespace: str, prefix: str | None = None) -> Any:
        page = _page(request)
        return paged(await _run(catalog.list_tables, prefix, namespace), "identifiers",
                     identifier_order, page)

    @router.post(ns_path + "/tables")
    async def create_table(request: Request, namespace: str,
                           prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        return table_response(await _run(catalog.create_table, prefix, namespace, body, meta))

    @router.post(ns_path + "/register")
    async def register_table(request: Request, namespace: str,
                             prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        return table_response(await _run(catalog.register_table, prefix, namespace, body, meta))

    @router.post(ns_path + "/properties")
    async def update_namespace(request: Request, namespace: str,
                               prefix: str | None = None) -> Any:
        body, meta = request_json(request), commit_meta(request)
        return await _run(catalog.update_namespace, prefix, namespace, body, meta)

    @router.get(base + "/namespaces")
    async def list_namespaces(request: Request, prefix: str | None = None) -> Any:
        page = _page(request)
        return paged(await _run(catalog.list_namespaces, prefix,
                                request.query_params.get("parent")),
                     "namespaces", namespace_order, page)

    @router.post(base + "/namespaces")
    async def create_namespace(request: Request, prefix: str | None = None) -> Any:
        body, meta = request_json(request), commit_meta(request)
        return await _run(catalog.create_namespace, prefix, body, meta)

    @router.get(ns_path)
    async def load_namespace(namespace: str, prefix: str | None = None) -> Any:
        return await _run(catalog.load_namespace, prefix, namespace)

    @router.head(ns_path)
    async def namespace_exists(namespace: str, prefix: str | None = None) -> Response:
        exists = await _run(catalog.namespace_exists, prefix, namespace)
        return Response(status_code=204 if exists else 404)

    @router.delete(ns_path, status_code=204)
    async def drop_namespace(request: Request, namespace: str,
                             prefix: str | None = None) -> Response:
        await _run(catalog.drop_namespace, prefix, namespace, commit_meta(request))
        return Response(status_code=204)


def _add_view_routes(router: APIRouter, catalog: IcebergCatalog, base: str) -> None:
    """The view endpoints; item routes come before the table and view listings, which a
    `{namespace:path}` could otherwise swallow (a view named `tables`)."""
    ns_path = base + "/namespaces/{namespace:path}"
    view_path = ns_path + "/views/{view}"

    @router.get(view_path)
    async def load_view(namespace: str, view: str, prefix: str | None = None) -> Response:
        return view_response(await _run(catalog.load_view, prefix, namespace, view))

    @router.head(view_path)
    async def view_exists(namespace: str, view: str, prefix: str | None = None) -> Response:
        exists = await _run(catalog.view_exists, prefix, namespace, view)
        return Response(status_code=204 if exists else 404)

    @router.post(view_path)
    async def replace_view(request: Request, namespace: str, view: str,
                           prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        return view_response(await _run(catalog.commit_view, prefix, namespace, view, body,
                                        meta))

    @router.delete(view_path, status_code=204)
    async def drop_view(request: Request, namespace: str, view: str,
                        prefix: str | None = None) -> Response:
        await _run(catalog.drop_view, prefix, namespace, view, commit_meta(request))
        return Response(status_code=204)

    @router.get(ns_path + "/views")
    async def list_views(request: Request, namespace: str, prefix: str | None = None) -> Any:
        page = _page(request)
        return paged(await _run(catalog.list_views, prefix, namespace), "identifiers",
                     identifier_order, page)

    @router.post(ns_path + "/views")
    async def create_view(request: Request, namespace: str,
                          prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        return view_response(await _run(catalog.create_view, prefix, namespace, body, meta))

    @router.post(ns_path + "/register-view")
    async def register_view(request: Request, namespace: str,
                            prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        return view_response(await _run(catalog.register_view, prefix, namespace, body, meta))

    @router.post(base + "/views/rename", status_code=204)
    async def rename_view(request: Request, prefix: str | None = None) -> Response:
        body, meta = request_json(request), commit_meta(request)
        await _run(catalog.rename_view, prefix, body, meta)
        return Response(status_code=204)


def _page(request: Request) -> PageRequest:
    """`pageToken`/`pageSize`, checked before the listing runs."""
    return PageRequest.parse(request.query_params.get("pageToken"),
                             request.query_params.get("pageSize"))


async def _run(fn: Any, *args: Any) -> Any:
    """Store and file I/O block: run them on the worker pool, not the event loop."""
    return await run_in_threadpool(fn, *args)
