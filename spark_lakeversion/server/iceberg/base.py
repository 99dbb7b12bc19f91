"""What every catalog operation shares: the store, the allowed roots, addressing, lookups
of namespaces and tables at a resolved ref, file-safety checks, and the store commit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pyiceberg.table.metadata import TableMetadata

from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg import files as iceberg_files
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.formats.validate import check_claims
from spark_lakeversion.limits import check_key
from spark_lakeversion.locations import (
    AllowedRoots,
    Location,
    parse_location,
    table_location,
)
from spark_lakeversion.model import Content, ContentType, Key, Operation
from spark_lakeversion.server.errors import bad_request, namespace_not_found
from spark_lakeversion.server.headers import CommitMeta
from spark_lakeversion.server.iceberg.addressing import Address, resolve_address, split_namespace
from spark_lakeversion.server.iceberg.commits import commit_to_store
from spark_lakeversion.versioning.interface import VersionStore


class CatalogBase:
    """The shared state and helpers of the catalog's operations."""

    def __init__(self, store: VersionStore, warehouse: str,
                 roots: AllowedRoots | None = None,
                 io: Mapping[str, str] | None = None) -> None:
        self.store = store
        #: how the server opens table files (`spark_lakeversion.fileio`): every read and
        #: write of this catalog uses it, never a client's table properties
        self.io = FileIOConfig.of(io)
        self.warehouse = warehouse.rstrip("/")
        self.warehouse_location = parse_location(self.warehouse, "warehouse")
        #: the warehouse is always a root; `--allowed-location`s add more
        self.roots = AllowedRoots([self.warehouse_location, *(roots.roots if roots else ())])

    # ---- file safety -------------------------------------------------------------------
    def check_metadata(self, key: Key, metadata: TableMetadata,
                       base: TableMetadata | None = None, *,
                       read_current_only: bool = False) -> None:
        """Every location the metadata names is under a root, and its table location and
        `write.*.path` directories overlap no other table's location: before any write."""
        iceberg_files.validate_metadata(metadata, self.roots, base, what=f"table {key}",
                                        read_current_only=read_current_only,
                                        io_properties=self.io)
        claims = iceberg_files.claimed_locations(metadata)
        if base is not None and iceberg_files.claimed_locations(base) == claims:
            return  # nothing moved: already checked when it was set
        check_claims(self.store, f"table {key}", claims, str(metadata.table_uuid))

    def read_metadata(self, metadata_location: str) -> TableMetadata:
        """A table's metadata file (cached), read with the server's FileIO."""
        return fmt.read_metadata(metadata_location, self.io)

    def write_metadata(self, metadata: TableMetadata, previous_location: str | None = None
                       ) -> str:
        """A new metadata file (create-exclusive) with the server's FileIO; its location."""
        return fmt.write_metadata(metadata, previous_location, self.io)

    # ---- addressing --------------------------------------------------------------------
    def address(self, prefix: str | None, namespace: Sequence[str], *,
                table_op: bool = False) -> Address:
        return resolve_address(self.store, prefix, namespace, table_op=table_op)

    def _table(self, addr: Address, name: str) -> tuple[Key, Content | None]:
        key = addr.key(name)
        check_key(key, self.store.limits)  # before a metadata file is written under it
        content = self.store.get_content(addr.commit_id, key)
        if content is not None and content.type is DELTA_TABLE:
            raise bad_request(f"{key} is a Delta table: read it with spark_lakeversion's "
                              "Delta API")
        if content is not None and content.type is not ICEBERG_TABLE:
            content = None  # a namespace is not an Iceberg table
        return key, content

    def _namespace(self, addr: Address) -> Content | None:
        """The namespace created at this key (its properties), None if it was not created."""
        if not addr.namespace:
            return None
        content = self.store.get_content(addr.commit_id, addr.key())
        return content if content is not None and content.type is ContentType.NAMESPACE else None

    def _children(self, addr: Address) -> list[tuple[Key, Content]]:
        """Everything stored under the namespace, at any depth (matched by key range: `_` and
        `%` are plain characters)."""
        return self.store.list_keys(addr.commit_id, addr.key())

    def _namespace_or_implicit(self, addr: Address) -> Content | None:
        """The namespace as Iceberg's reference catalog has it: it exists if it was created
        or if anything is stored under it (then without properties: a fresh value, not yet
        stored, which setting properties stores)."""
        content = self._namespace(addr)
        if content is not None or not addr.namespace:
            return content
        return fmt.namespace_content({}) if self._children(addr) else None

    def _list_names(self, prefix: str | None, namespace: str,
                    content_type: ContentType) -> dict[str, Any]:
        """The identifiers of one namespace's direct children of `content_type` (tables
        or views); an absent namespace is `NoSuchNamespaceException`."""
        addr = self.address(prefix, split_namespace(namespace))
        entries = self.store.list_keys(addr.commit_id, addr.key())
        depth = len(addr.namespace) + 1
        names = [key.name for key, content in entries
                 if content.type is content_type and len(key.elements) == depth]
        if not names:
            self._require_namespace(addr)
        return {"identifiers": [{"namespace": list(addr.echo), "name": n} for n in names],
                "next-page-token": None}

    def _require_namespace(self, addr: Address) -> Content:
        content = self._namespace_or_implicit(addr)
        if content is None:
            raise namespace_not_found(".".join(addr.namespace), addr.resolved.expression)
        return content

    def _commit(self, addr: Address, operations: list[Operation], meta: CommitMeta,
                message: str, properties: dict[str, Any], written: Sequence[str] = (),
                changes: Sequence[tuple[TableMetadata | None, TableMetadata]] = (),
                added: Sequence[tuple[Key, Content | None, Content]] = ()) -> str:
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
