"""What the catalog's services share: the store, the warehouse and allowed roots, the
server's FileIO, addressing, the store commit, and where a new table or view goes.

One `CatalogContext` is built per catalog and handed to each service (`namespaces`,
`tables`, `views`); it is immutable, as the store's configuration is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.table.metadata import TableMetadata

from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg.catalog.addressing import (
    Address,
    resolve_address,
    split_namespace,
)
from spark_lakeversion.formats.iceberg.catalog.commits import commit_to_store
from spark_lakeversion.formats.iceberg.catalog.errors import bad_request
from spark_lakeversion.formats.iceberg.catalog.meta import CommitMeta
from spark_lakeversion.formats.iceberg.catalog.requests import RenameBody
from spark_lakeversion.formats.iceberg.catalog.settings import AppendSettings
from spark_lakeversion.locations import (
    AllowedRoots,
    Location,
    parse_location,
    table_location,
)
from spark_lakeversion.model import Content, Key, Operation
from spark_lakeversion.versioning.interface import VersionStore


@dataclass(frozen=True)
class CatalogContext:
    """The catalog's shared state. The warehouse is always a root; `--allowed-location`s
    add more. `io` is how the server opens table files: every read and write of the
    catalog uses it, never a client's table properties."""

    store: VersionStore
    warehouse: str
    warehouse_location: Location
    roots: AllowedRoots
    io: FileIOConfig
    #: how concurrent appends are rebased and grouped (`appends.AppendSettings`)
    appends: AppendSettings = AppendSettings()
    #: who is calling (the server: the request's principal), so one group commit never
    #: mixes callers: it commits as one
    caller: Callable[[], str] = field(default=lambda: "")

    @classmethod
    def of(cls, store: VersionStore, warehouse: str, roots: AllowedRoots | None = None,
           io: Mapping[str, str] | None = None, appends: AppendSettings | None = None,
           caller: Callable[[], str] | None = None) -> CatalogContext:
        warehouse = warehouse.rstrip("/")
        location = parse_location(warehouse, "warehouse")
        return cls(store, warehouse, location,
                   AllowedRoots([location, *(roots.roots if roots else ())]),
                   FileIOConfig.of(io), appends or AppendSettings(),
                   caller or (lambda: ""))

    def address(self, prefix: str | None, namespace: Sequence[str], *,
                table_op: bool = False) -> Address:
        return resolve_address(self.store, prefix, namespace, table_op=table_op)

    def rename_addresses(self, prefix: str | None, req: RenameBody) -> tuple[Address, Address]:
        """A rename's source and destination, both at the source's commit: a rename (of a
        table or a view) stays on one branch."""
        src = self.address(prefix, split_namespace(req.source.namespace.root), table_op=True)
        dst = self.address(prefix, split_namespace(req.destination.namespace.root),
                           table_op=True)
        if dst.branch() != src.branch():
            raise bad_request("rename must stay on one branch (source and destination refs "
                              f"differ: {src.resolved.expression}, {dst.resolved.expression})")
        return src, dst.at(src.resolved)

    def commit(self, addr: Address, operations: list[Operation], meta: CommitMeta,
               message: str, properties: dict[str, Any], written: Sequence[str] = (),
               changes: Sequence[tuple[TableMetadata | None, TableMetadata]] = (),
               added: Sequence[tuple[Key, Content | None, Content]] = ()) -> str:
        """One store commit on the head `addr` read (`commits.commit_to_store`)."""
        return commit_to_store(self.store, addr, operations, meta, message, properties,
                               written, changes, self.io, added)

    def default_location(self, addr: Address, namespace: Content, name: str,
                         table_uuid: uuid.UUID) -> str:
        """`<warehouse>/<ns...>/<table>_<uuid>` (or `<namespace location>/<table>_<uuid>`),
        built by `locations.table_location`: a table re-created under the same name (or on
        another branch) never shares files with the old one."""
        ns_location = fmt.namespace_properties(namespace).get("location")
        levels: tuple[str, ...] = ()
        if ns_location:
            base: Location = self.roots.check(ns_location, "namespace location")
        else:
            base, levels = self.warehouse_location, addr.namespace
        return table_location(base, levels, name, table_uuid.hex).uri
