"""Shared helpers for the Iceberg content-merge tests: real pyiceberg tables on branches.

A "branch" of a table is a second catalog registration of the same metadata file: both
chains then write new metadata files (same table uuid, same directories), exactly as two
store branches pointing at one Iceberg table do.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import StaticTable, Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import IntegerType, LongType, NestedField, StringType

from spark_lakeversion.formats.iceberg_merge import IcebergContentMerger, iceberg_content
from spark_lakeversion.merge.content import MergeContext
from spark_lakeversion.store.model import Content, Key

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "p", IntegerType(), required=False),
    NestedField(3, "v", StringType(), required=False),
)
SPEC = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "p"))
ARROW = pa.schema([("id", pa.int64()), ("p", pa.int32()), ("v", pa.string())])
KEY = Key(("db", "t"))


class Lake:
    """A SQLite-backed pyiceberg catalog in a temp dir, with table "branches"."""

    def __init__(self, root: Path, partitioned: bool = True, format_version: int = 2,
                 properties: dict[str, str] | None = None) -> None:
        self.root = root
        self.catalog = SqlCatalog("lake", uri=f"sqlite:///{root / 'catalog.db'}",
                                  warehouse=f"file://{root / 'warehouse'}")
        self.catalog.create_namespace("db")
        self.ids = itertools.count(1)
        self.names = itertools.count(1)
        self.main = self.catalog.create_table(
            "db.t", SCHEMA, partition_spec=SPEC if partitioned else PartitionSpec(),
            properties={"format-version": str(format_version), **(properties or {})})

    def branch(self, table: Table) -> Table:
        """A new writable chain starting at `table`'s current metadata file."""
        name = f"db.b{next(self.names)}"
        return self.catalog.register_table(name, table.metadata_location)

    def rows(self, p: int, n: int, tag: str = "") -> pa.Table:
        ids = [next(self.ids) for _ in range(n)]
        return pa.Table.from_pylist([{"id": i, "p": p, "v": f"{tag}{i}"} for i in ids],
                                    schema=ARROW)

    def files_on_disk(self) -> set[str]:
        return {str(p) for p in (self.root / "warehouse").rglob("*") if p.is_file()}

    def data_files_on_disk(self) -> set[str]:
        return {f for f in self.files_on_disk() if f.endswith(".parquet")}


def content(table: Table) -> Content:
    table.refresh() if hasattr(table, "refresh") else None
    return iceberg_content(table.metadata_location, table.metadata)


def ids_at(location: str) -> list[int]:
    return sorted(StaticTable.from_metadata(location).scan().to_arrow().column("id").to_pylist())


def table_rows(location: str) -> list[dict[str, Any]]:
    return sorted(StaticTable.from_metadata(location).scan().to_arrow().to_pylist(),
                  key=lambda r: r["id"])


def plan(base: Content, target: Content, source: Content, **options: Any) -> Any:
    context = MergeContext(source="dev", source_commit="c-source", target="main",
                           target_commit="c-target", options=options)
    return IcebergContentMerger().plan(KEY, base, target, source, context)


def metadata_files(root: Path) -> set[str]:
    return {os.fspath(p) for p in (root / "warehouse").rglob("*.metadata.json")}
