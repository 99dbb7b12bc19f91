"""Shared by the contention tests (issue 24): a server with its append settings, stock
pyiceberg clients, and what the store recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from spark_lakeversion.formats.iceberg.catalog.settings import AppendSettings
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server

SCHEMA = pa.schema([pa.field("id", pa.int64())])
#: a client that never retries on its own: every 409 reaches the test
NO_RETRY = {"commit.retry.num-retries": "0"}


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": list(ids)}, schema=SCHEMA)


@contextmanager
def served(root: Path, appends: AppendSettings | None = None) -> Iterator[EmbeddedServer]:
    with start_embedded_server(f"sqlite:///{root / 'store.db'}", warehouse=str(root / "wh"),
                               appends=appends) as server:
        yield server


def catalog(server: EmbeddedServer, ref: str = "main", **props: Any) -> Any:
    from pyiceberg.catalog.rest import RestCatalog

    extra = {"token": server.token} if server.token else {}
    return RestCatalog(f"c-{ref}", uri=server.iceberg_uri, warehouse=ref, **extra, **props)


def new_table(server: EmbeddedServer, name: str = "db.t",
              properties: dict[str, str] | None = None) -> Any:
    cat = catalog(server)
    namespace = name.split(".")[0]
    if (namespace,) not in cat.list_namespaces():
        cat.create_namespace(namespace)
    return cat.create_table(name, schema=SCHEMA, properties=properties or {})


def ids(table: Any) -> list[int]:
    return sorted(table.refresh().scan().to_arrow()["id"].to_pylist())


def log(server: EmbeddedServer, ref: str = "main", limit: int = 1000) -> list[dict[str, Any]]:
    r = httpx.get(server.api_url + "/log", params={"ref": ref, "limit": limit}, timeout=60)
    r.raise_for_status()
    return list(r.json()["commits"])


def duckdb_ids(metadata_location: str) -> list[int]:
    """The ids DuckDB's iceberg extension reads from a metadata file (the pip-carried
    extensions: no download)."""
    import importlib.util
    from urllib.parse import urlparse

    import duckdb

    spec = importlib.util.find_spec("duckdb_ext")
    assert spec is not None and spec.submodule_search_locations
    extensions = Path(list(spec.submodule_search_locations)[0]) / "extensions"
    con = duckdb.connect(config={"extension_directory": str(extensions),
                                 "autoinstall_known_extensions": False})
    try:
        for name in ("avro", "iceberg"):
            con.execute(f"LOAD {name}")
        path = urlparse(metadata_location).path
        return sorted(r[0] for r in con.execute(
            f"SELECT id FROM iceberg_scan('{path}')").fetchall())
    finally:
        con.close()
