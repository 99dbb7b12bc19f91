"""The Iceberg REST catalog's logic over the version store: every ref is a whole catalog.

Methods take what a route parsed (prefix, namespace, body, commit metadata) and return
domain values: dicts of the spec's response shapes, booleans, or a `LoadedTable`. They
raise our error tree or `IcebergError`; `routes.py` maps both to HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.table.update import (
    AssertCreate,
    AssignUUIDUpdate,
    TableRequirement,
    TableUpdate,
)

from spark_lakeversion.errors import InvalidInput, LocationNotAllowed
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg import files as iceberg_files
from spark_lakeversion.formats.iceberg import v3
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.formats.validate import check_not_owned
from spark_lakeversion.model import Delete, Put
from spark_lakeversion.server.errors import (
    already_exists,
    bad_request,
    commit_failed,
    ref_sentence,
    table_already_exists,
    table_not_found,
)
from spark_lakeversion.server.headers import CommitMeta
from spark_lakeversion.server.iceberg.addressing import (
    Address,
    split_namespace,
)
from spark_lakeversion.server.iceberg.commits import (
    GcRefused,
    Planned,
    apply_updates,
    check_no_mutual_overlap,
    describe_updates,
)
from spark_lakeversion.server.iceberg.requests import (
    PYICEBERG_INPUT_ERRORS,
    CommitTableBody,
    CreateTableRequest,
    RegisterTableRequest,
    RenameBody,
    TransactionBody,
    parse,
)
from spark_lakeversion.server.iceberg.views import ViewCatalog

#: how often create_table rewrites its metadata file when gc's fence refused it
_CREATE_ATTEMPTS = 3


@dataclass(frozen=True)
class LoadedTable:
    """The spec's LoadTableResult: a table's metadata and where it is stored (None while a
    staged create has written nothing)."""

    metadata: TableMetadata
    metadata_location: str | None


class IcebergCatalog(ViewCatalog):
    """Table operations (over the view and namespace ones); every ref is a whole catalog
    (branches read-write, the rest read-only)."""

    # ---- tables ------------------------------------------------------------------------
    def list_tables(self, prefix: str | None, namespace: str) -> dict[str, Any]:
        return self._list_names(prefix, namespace, ICEBERG_TABLE)

    def load_table(self, prefix: str | None, namespace: str, table: str) -> LoadedTable:
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        key, content = self._table(addr, table)
        if content is None:
            raise table_not_found(key, addr.resolved.expression)
        location = fmt.metadata_location_of(content)
        return LoadedTable(self.read_metadata(location), location)

    def table_exists(self, prefix: str | None, namespace: str, table: str) -> bool:
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        return self._table(addr, table)[1] is not None

    def create_table(self, prefix: str | None, namespace: str, body: Any,
                     meta: CommitMeta) -> LoadedTable:
        req: CreateTableRequest = parse(CreateTableRequest, body)
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        addr.new_key(req.name)
        if req.location:
            self.roots.check(req.location, f"table {addr.key(req.name)} location", strictly=True)
        key, existing = self._table(addr, req.name)
        if existing is not None or self.store.get_content(addr.commit_id, key) is not None:
            raise table_already_exists(key, addr.resolved.expression)
        if not req.stage_create:
            addr.branch()  # refuse read-only refs before writing any file
        namespace_content = self._require_namespace(addr)
        table_uuid = uuid.uuid4()
        location = (req.location.rstrip("/") if req.location
                    else self.default_location(addr, namespace_content, req.name, table_uuid))
        try:
            metadata = new_table_metadata(
                schema=req.table_schema,
                partition_spec=req.partition_spec or UNPARTITIONED_PARTITION_SPEC,
                sort_order=req.write_order or UNSORTED_SORT_ORDER,
                location=location, properties=dict(req.properties), table_uuid=table_uuid)
            metadata = v3.with_row_lineage(metadata, None, f"table {key}")
        except InvalidInput as exc:
            raise bad_request(f"cannot create table {key}: {exc.message}") from None
        except PYICEBERG_INPUT_ERRORS as exc:
            raise bad_request(f"cannot create table {key}: {exc}") from None
        self.check_metadata(key, metadata)
        if req.stage_create:
            return LoadedTable(metadata, None)
        for attempt in range(_CREATE_ATTEMPTS):
            # a gc run beginning between writing and committing refuses the (then older)
            # metadata file; the file is the server's own, so write it again and retry
            # rather than answer 409, which clients read as "the table already exists"
            metadata_location = self.write_metadata(metadata)
            content = fmt.iceberg_content(metadata, metadata_location)
            try:
                self._commit(addr, [Put(key, content)], meta, f"create table {key}",
                             {"iceberg.operation": "create", "iceberg.table": str(key)},
                             written=[metadata_location])
            except GcRefused:
                if attempt + 1 == _CREATE_ATTEMPTS:
                    raise
                continue
            break
        return LoadedTable(metadata, metadata_location)

    def _plan(self, addr: Address, name: str, requirements: Sequence[TableRequirement],
              updates: Sequence[TableUpdate]) -> Planned:
        """Validate and apply one table's change; writes its new metadata file."""
        key, content = self._table(addr, name)
        creating = any(isinstance(r, AssertCreate) for r in requirements)
        if content is None and not creating:
            raise table_not_found(key, addr.resolved.expression)
        if content is None and self.store.get_content(addr.commit_id, key) is not None:
            raise already_exists(f"{key} exists and is not an Iceberg table")
        if content is not None and creating:
            raise commit_failed(f"Table already exists: {key}."
                                + ref_sentence(addr.resolved.expression))
        if content is None:
            addr.new_key(name)
            self._require_namespace(addr)
        base_location = fmt.metadata_location_of(content) if content else None
        base = self.read_metadata(base_location) if base_location else None
        try:
            for requirement in requirements:
                requirement.validate(base)
        except CommitFailedException as exc:
            raise commit_failed(f"{key}: {exc}") from None
        if base is not None and any(isinstance(u, AssignUUIDUpdate) and u.uuid != base.table_uuid
                                    for u in updates):
            # the UUID is the table's identity across refs: merges tell a changed table
            # from a dropped-and-recreated one by it
            raise bad_request(f"{key}: an existing table's UUID cannot change")
        operation, props = describe_updates(updates)
        if base is not None and base_location is not None and not updates:
            return Planned(key, fmt.iceberg_content(base, base_location), base, base_location,
                            False, operation, props)
        metadata = apply_updates(key, base, base_location, updates)
        self.check_metadata(key, metadata, base)
        location = self.write_metadata(metadata, base_location)
        return Planned(key, fmt.iceberg_content(metadata, location), metadata, location,
                        True, "create" if base is None else operation, props, base)

    def commit_table(self, prefix: str | None, namespace: str, table: str, body: Any,
                     meta: CommitMeta) -> LoadedTable:
        req: CommitTableBody = parse(CommitTableBody, body)
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        addr.branch()
        plan = self._plan(addr, table, req.requirements, req.updates)
        if plan.new_file:
            snapshot = plan.props.get("iceberg.snapshot-id")
            message = f"{plan.operation} {plan.key}" + (f" (snapshot {snapshot})" if snapshot
                                                         else "")
            self._commit(addr, [Put(plan.key, plan.content)], meta, message,
                         {"iceberg.operation": plan.operation, "iceberg.table": str(plan.key),
                          **plan.props}, written=[plan.location],
                         changes=[(plan.base, plan.metadata)])
        return LoadedTable(plan.metadata, plan.location)

    def commit_transaction(self, prefix: str | None, body: Any, meta: CommitMeta) -> None:
        """All table changes in one store commit: all land or none does."""
        req: TransactionBody = parse(TransactionBody, body)
        if not req.table_changes:
            raise bad_request("a transaction needs at least one table change")
        addresses = [self.address(prefix, split_namespace(c.identifier.namespace.root),
                                  table_op=True) for c in req.table_changes]
        first = addresses[0]
        branch = first.branch()
        for a in addresses[1:]:
            if a.branch() != branch:
                raise bad_request("a transaction must change tables of one branch only")
        # plan every change against the same commit, so the whole set is consistent
        addresses = [a.at(first.resolved) for a in addresses]
        plans: list[Planned] = []
        try:
            for change, a in zip(req.table_changes, addresses):
                plans.append(self._plan(a, change.identifier.name, change.requirements,
                                        change.updates))
        except Exception:
            for p in plans:
                if p.new_file:
                    iceberg_files.delete_created(p.location)
            raise
        keys = [p.key for p in plans]
        if len(set(keys)) != len(keys):
            for p in plans:
                if p.new_file:
                    iceberg_files.delete_created(p.location)
            raise bad_request("a transaction may change each table only once")
        changed = [p for p in plans if p.new_file]
        try:
            check_no_mutual_overlap(changed)
        except LocationNotAllowed:
            for p in changed:
                iceberg_files.delete_created(p.location)
            raise
        if not changed:
            return
        tables = ", ".join(str(p.key) for p in changed)
        self._commit(first, [Put(p.key, p.content) for p in changed], meta,
                     f"transaction on {tables}",
                     {"iceberg.operation": "transaction", "iceberg.tables": tables},
                     written=[p.location for p in changed],
                     changes=[(p.base, p.metadata) for p in changed])

    def drop_table(self, prefix: str | None, namespace: str, table: str, purge: bool,
                   meta: CommitMeta) -> dict[str, Any]:
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        addr.branch()
        key, content = self._table(addr, table)
        if content is None:
            raise table_not_found(key, addr.resolved.expression)
        self._commit(addr, [Delete(key)], meta, f"drop table {key}" + (" (purge)" if purge else ""),
                     {"iceberg.operation": "drop", "iceberg.table": str(key),
                      "iceberg.purge-requested": str(purge).lower()})
        # Never delete files here: other branches, tags and retained commits share this
        # table's files, and only `lakeversion gc` sees all of them.
        return {"purged": False}

    def rename_table(self, prefix: str | None, body: Any, meta: CommitMeta) -> None:
        req: RenameBody = parse(RenameBody, body)
        src = self.address(prefix, split_namespace(req.source.namespace.root), table_op=True)
        dst = self.address(prefix, split_namespace(req.destination.namespace.root), table_op=True)
        branch = src.branch()
        if dst.branch() != branch:
            raise bad_request("rename must stay on one branch (source and destination refs "
                              f"differ: {src.resolved.expression}, {dst.resolved.expression})")
        dst = dst.at(src.resolved)
        src_key, content = self._table(src, req.source.name)
        if content is None:
            raise table_not_found(src_key, src.resolved.expression)
        dst_key = dst.new_key(req.destination.name)
        if self.store.get_content(src.commit_id, dst_key) is not None:
            raise table_already_exists(dst_key, src.resolved.expression)
        if dst.namespace:
            self._require_namespace(dst)
        self._commit(src, [Delete(src_key), Put(dst_key, content)], meta,
                     f"rename table {src_key} to {dst_key}",
                     {"iceberg.operation": "rename", "iceberg.table": str(dst_key),
                      "iceberg.renamed-from": str(src_key)})

    def register_table(self, prefix: str | None, namespace: str, body: Any,
                       meta: CommitMeta) -> LoadedTable:
        req: RegisterTableRequest = parse(RegisterTableRequest, body)
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        addr.new_key(req.name)
        addr.branch()
        self._require_namespace(addr)
        key, existing = self._table(addr, req.name)
        other = self.store.get_content(addr.commit_id, key)
        if other is not None and not (req.overwrite and existing is not None):
            raise table_already_exists(key, addr.resolved.expression)
        try:
            # only a regular file under a root, size- and time-limited; one generic error
            # for everything else, so register cannot probe the server's file system
            metadata = iceberg_files.read_client_metadata(req.metadata_location, self.roots,
                                                          self.io)
        except iceberg_files.UnreadableFile:
            raise bad_request(f"cannot register {key}: {iceberg_files.UNREADABLE} "
                              f"({self.roots.describe()})") from None
        self.check_metadata(key, metadata, read_current_only=True)
        check_not_owned(self.store, f"cannot register {key}",
                        {"metadata file": req.metadata_location,
                         **iceberg_files.claimed_locations(metadata)})
        content = fmt.iceberg_content(metadata, req.metadata_location)
        self._commit(addr, [Put(key, content)], meta, f"register table {key}",
                     {"iceberg.operation": "register", "iceberg.table": str(key)},
                     added=[(key, existing, content)])
        return LoadedTable(metadata, req.metadata_location)
