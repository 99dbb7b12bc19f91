"""Iceberg views on branches with pyiceberg: a view created on `dev` reaches `main` only
through a merge, both branches replacing it differently is a conflict, and listings page.

Runs a throwaway server (SQLite store, local warehouse) under ./lakehouse/views.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField
from pyiceberg.view.metadata import ViewVersion

from spark_lakeversion import connect
from spark_lakeversion.errors import ConflictError
from spark_lakeversion.server.embedded import start_embedded_server

SCHEMA = Schema(NestedField(1, "id", LongType(), required=False))


def version(sql: str, schema_id: int = 0) -> ViewVersion:
    return ViewVersion.model_validate({
        "version-id": 1, "schema-id": schema_id, "timestamp-ms": int(time.time() * 1000),
        "default-namespace": ["db"],
        "representations": [{"type": "sql", "sql": sql, "dialect": "spark"}]})


def replace(server_uri: str, ref: str, view_uuid: str, sql: str) -> None:
    """CREATE OR REPLACE VIEW as Iceberg's clients send it (pyiceberg has no replace call)."""
    body = {"requirements": [{"type": "assert-view-uuid", "uuid": view_uuid}],
            "updates": [{"action": "add-schema", "schema": SCHEMA.model_dump(by_alias=True)},
                        {"action": "add-view-version", "view-version": version(
                            sql, schema_id=-1).model_dump(by_alias=True)},
                        {"action": "set-current-view-version", "view-version-id": -1}]}
    httpx.post(f"{server_uri}/v1/{ref}/namespaces/db/views/v", json=body).raise_for_status()


def sql_of(catalog: RestCatalog, name: str) -> str:
    metadata = catalog.load_view(name).metadata
    current = next(v for v in metadata.versions if v.version_id == metadata.current_version_id)
    return str(current.representations[0].root.sql)


def main() -> None:
    root = Path("lakehouse") / "views"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with start_embedded_server(f"sqlite:///{root / 'store.db'}",
                               warehouse=str((root / "warehouse").resolve())) as server:
        lake = connect(server.url)
        main_cat = RestCatalog("lv", uri=server.iceberg_uri)
        main_cat.create_namespace("db")
        lake.branch("dev").create()
        dev = RestCatalog("lv_dev", uri=server.iceberg_uri, warehouse="dev")

        print("== 1. CREATE VIEW db.v on dev")
        view = dev.create_view("db.v", SCHEMA, version("SELECT 1 AS id"))
        print("   dev:", dev.list_views("db"), " main:", main_cat.list_views("db"))

        print("== 2. MERGE dev INTO main")
        lake.ref("dev").merge_into("main")
        print("   main:", main_cat.list_views("db"), "->", sql_of(main_cat, "db.v"))

        print("== 3. Both branches replace db.v differently")
        replace(server.iceberg_uri, "dev", view.metadata.view_uuid, "SELECT 2 AS id")
        replace(server.iceberg_uri, "main", view.metadata.view_uuid, "SELECT 3 AS id")
        try:
            lake.ref("dev").merge_into("main")
        except ConflictError as exc:
            print("   merge refused:", exc.conflicts[0].type.value, exc.conflicts[0].message)
        lake.ref("dev").merge_into("main", behaviors={"db.v": "FORCE"})
        print("   with FORCE, main has dev's version:", sql_of(main_cat, "db.v"))

        print("== 4. Listings page (pageSize=2)")
        for i in range(5):
            main_cat.create_view(f"db.page{i}", SCHEMA, version(f"SELECT {i} AS id"))
        paged = RestCatalog("lv_paged", uri=server.iceberg_uri, **{"rest-page-size": "2"})
        print("   views of db:", [name for _, name in paged.list_views("db")])


if __name__ == "__main__":
    main()
