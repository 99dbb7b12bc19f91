"""A small branched lakehouse for the gc tests: real Iceberg tables written by pyiceberg,
their states recorded in a real version store on branches and tags.

Each ref writes through its own pyiceberg identifier (``db.<table>__<branch>``), registered
at the table state the store holds on that branch, so every branch appends to the same
table location, exactly as the REST catalog does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import StaticTable

from spark_lakeversion.formats.iceberg.content import iceberg_content
from spark_lakeversion.model import Content, Delete, Key, Put
from spark_lakeversion.versioning import VersionStore

GC_ROWS_SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), ("v", pa.string())])


class StoreLake:
    def __init__(self, root: Path, store: VersionStore) -> None:
        self.root = root
        self.warehouse = root / "warehouse"
        self.warehouse.mkdir(parents=True, exist_ok=True)
        self.store = store
        self.iceberg = SqlCatalog("gc", uri=f"sqlite:///{root / 'iceberg.db'}",
                                  warehouse=self.warehouse.as_uri())
        self.iceberg.create_namespace_if_not_exists("db")

    @property
    def roots(self) -> list[str]:
        """What gc may list and delete under: this lake's warehouse."""
        return [self.warehouse.as_uri()]

    def location(self, table: str) -> str:
        return (self.warehouse / "db" / table).as_uri()

    def _ident(self, branch: str, table: str) -> str:
        return f"db.{table}__{branch.replace('/', '_')}"

    def _record(self, branch: str, table: str, tbl: Any, message: str) -> Content:
        content = iceberg_content(tbl.metadata, tbl.metadata_location)
        self.store.commit(branch, [Put(Key.of(f"db.{table}"), content)], message=message)
        return content

    def create(self, branch: str, table: str, ids: list[int],
               location: str | None = None) -> Content:
        """A new table at `location` (default `warehouse/db/<table>`, even if another
        table lived there)."""
        ident = self._ident(branch, table)
        try:
            self.iceberg.drop_table(ident)  # the catalog row only: no file is touched
        except NoSuchTableError:
            pass
        tbl = self.iceberg.create_table(ident, schema=GC_ROWS_SCHEMA,
                                        location=location or self.location(table))
        tbl.append(rows(ids))
        return self._record(branch, table, tbl, f"create {table}")

    def append(self, branch: str, table: str, ids: list[int]) -> Content:
        content = self.store.get_content(branch, f"db.{table}")
        assert content is not None, f"{table} is not on {branch}"
        ident = self._ident(branch, table)
        try:
            self.iceberg.drop_table(ident)
        except NoSuchTableError:
            pass
        tbl = self.iceberg.register_table(ident, content.fields["metadata_location"])
        tbl.append(rows(ids))
        return self._record(branch, table, tbl, f"append to {table}")

    def drop(self, branch: str, table: str) -> None:
        self.store.commit(branch, [Delete(Key.of(f"db.{table}"))], message=f"drop {table}")

    def read(self, ref: str) -> dict[str, list[tuple[int, str]]]:
        """Every table's rows at `ref`, sorted: what a reader of that ref sees."""
        out = {}
        for key, content in self.store.list_keys(ref):
            if not content.is_table:
                continue
            table = StaticTable.from_metadata(content.fields["metadata_location"])
            data = table.scan().to_arrow()
            out[str(key)] = sorted(zip(data["id"].to_pylist(), data["v"].to_pylist()))
        return out

    def files(self) -> set[str]:
        """Every file under the warehouse, as normalized file URIs."""
        return {Path(d, f).as_uri() for d, _, fs in os.walk(self.warehouse) for f in fs}

    def age(self, seconds: float = 3 * 86400, paths: set[str] | None = None) -> None:
        """Make files look old (as if written `seconds` ago)."""
        stamp = time.time() - seconds
        for uri in paths if paths is not None else self.files():
            os.utime(uri[len("file://"):], (stamp, stamp))


def rows(ids: list[int]) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "v": f"v{i}"} for i in ids], schema=GC_ROWS_SCHEMA)
