"""The Iceberg catalog over the version store, transport-free: every ref is a whole catalog.

`IcebergCatalog` composes one service per kind of object (namespaces, tables, views) over
one shared `CatalogContext`; the server's routes call the services and render what they
return, the catalog knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.iceberg.catalog.context import CatalogContext
from spark_lakeversion.formats.iceberg.catalog.namespaces import NamespaceService
from spark_lakeversion.formats.iceberg.catalog.settings import AppendSettings
from spark_lakeversion.formats.iceberg.catalog.tables import TableService
from spark_lakeversion.formats.iceberg.catalog.views import ViewService
from spark_lakeversion.locations import AllowedRoots, Location
from spark_lakeversion.versioning.interface import VersionStore


class IcebergCatalog:
    """The namespace, table and view services of one store, warehouse and FileIO."""

    def __init__(self, store: VersionStore, warehouse: str,
                 roots: AllowedRoots | None = None,
                 io: Mapping[str, str] | None = None,
                 appends: AppendSettings | None = None,
                 caller: Callable[[], str] | None = None) -> None:
        self.ctx = CatalogContext.of(store, warehouse, roots, io, appends, caller)
        self.namespaces = NamespaceService(self.ctx)
        self.tables = TableService(self.ctx, self.namespaces)
        self.views = ViewService(self.ctx, self.namespaces)

    @property
    def store(self) -> VersionStore:
        return self.ctx.store

    @property
    def warehouse(self) -> str:
        return self.ctx.warehouse

    @property
    def warehouse_location(self) -> Location:
        return self.ctx.warehouse_location

    @property
    def roots(self) -> AllowedRoots:
        """The warehouse and every `--allowed-location`."""
        return self.ctx.roots

    @property
    def io(self) -> FileIOConfig:
        """How the server opens table files (never a client's table properties)."""
        return self.ctx.io
