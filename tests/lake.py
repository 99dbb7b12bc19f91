"""The suite's shared lake and schemas (test modules import these, never each other).

`ServerLake` is a real server (`start_embedded_server`) seen through stock pyiceberg REST
catalogs, one per ref. The other lakes differ on purpose and are named for what they are:
`tests/spark/helpers.SparkLake` (Spark SQL through the shim), `tests/gc/helpers.StoreLake`
(a store written by pyiceberg without a server, for gc), `tests/formats/iceberg/helpers.
TableBranches` (one Iceberg table's concurrent metadata chains, no store),
`tests/s3/helpers.S3Lake` (a server over moto's S3), `tests/gates/helpers.TeamLake`
(a server with principals).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField

from spark_lakeversion.server.embedded import EmbeddedServer

#: one nullable `id` column, three spellings: Arrow, pyiceberg, Iceberg REST JSON
ID_ARROW = pa.schema([pa.field("id", pa.int64())])
ID_ICEBERG = Schema(NestedField(1, "id", LongType(), required=False))
ID_REST_JSON: dict[str, Any] = {
    "type": "struct", "schema-id": 0,
    "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
#: `ServerLake`'s rows: an id and its label `v<id>`
ROWS_SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])


@dataclass
class ServerLake:
    """A running server, its warehouse, and stock pyiceberg REST catalogs per ref
    (`warehouse=<ref>`), writing `ROWS_SCHEMA` rows."""

    server: EmbeddedServer
    warehouse: Path
    #: the bearer token of a server with principals (pyiceberg writes as that principal)
    token: str | None = None

    @property
    def store(self) -> Any:
        return self.server.store

    def catalog(self, ref: str = "main") -> Any:
        from pyiceberg.catalog.rest import RestCatalog

        extra = {"token": self.token} if self.token else {}
        return RestCatalog(f"lv-{ref}", uri=self.server.iceberg_uri, warehouse=ref, **extra)

    def append(self, ref: str, table: str, ids: list[int]) -> None:
        self.catalog(ref).load_table(table).append(
            pa.table({"id": ids, "v": [f"v{i}" for i in ids]}, schema=ROWS_SCHEMA))

    def ids(self, ref: str, table: str = "db.t") -> list[int]:
        return sorted(self.catalog(ref).load_table(table).scan().to_arrow()["id"].to_pylist())

    def create(self, table: str, ids: list[int]) -> None:
        catalog = self.catalog("main")
        namespace = table.split(".")[0]
        if (namespace,) not in catalog.list_namespaces():
            catalog.create_namespace(namespace)
        catalog.create_table(table, schema=ROWS_SCHEMA)
        self.append("main", table, ids)

    def metadata_files(self) -> set[Path]:
        return set(self.warehouse.rglob("*.metadata.json"))

    def head(self, branch: str = "main") -> str:
        return str(self.store.get_ref(branch).head)
