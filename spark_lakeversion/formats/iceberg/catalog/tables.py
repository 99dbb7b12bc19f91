"""Table operations of the Iceberg catalog: every ref is a whole catalog (branches
read-write, the rest read-only).

Methods take what a route parsed (prefix, namespace, a typed request, commit metadata) and
return domain values: dicts of the spec's response shapes, booleans, or a `LoadedTable`.
They raise our error tree or `IcebergError`; the server maps both to HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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

from spark_lakeversion.errors import CommitOutcomeUnknown, InvalidInput, LocationNotAllowed
from spark_lakeversion.formats.delta import log as delta_log
from spark_lakeversion.formats.delta import tables as delta_tables
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.iceberg import commit as delta_commit
from spark_lakeversion.formats.delta.iceberg import create as delta_create
from spark_lakeversion.formats.delta.iceberg import translate as delta_facade
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg import files as iceberg_files
from spark_lakeversion.formats.iceberg import v3
from spark_lakeversion.formats.iceberg.catalog.addressing import Address, split_namespace
from spark_lakeversion.formats.iceberg.catalog.appends import AppendCommitter, AppendRequest
from spark_lakeversion.formats.iceberg.catalog.commits import (
    CREATE_ATTEMPTS,
    Planned,
    apply_updates,
    check_no_mutual_overlap,
    describe_change,
    describe_updates,
)
from spark_lakeversion.formats.iceberg.catalog.context import CatalogContext
from spark_lakeversion.formats.iceberg.catalog.errors import (
    GcRefused,
    IcebergError,
    already_exists,
    bad_request,
    commit_failed,
    ref_sentence,
    table_already_exists,
    table_not_found,
)
from spark_lakeversion.formats.iceberg.catalog.loaded import LoadedTable as LoadedTable
from spark_lakeversion.formats.iceberg.catalog.meta import CommitMeta
from spark_lakeversion.formats.iceberg.catalog.namespaces import NamespaceService
from spark_lakeversion.formats.iceberg.catalog.requests import (
    PYICEBERG_INPUT_ERRORS,
    CommitTableBody,
    CreateTableRequest,
    RegisterTableRequest,
    RenameBody,
    TransactionBody,
)
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.limits import check_key
from spark_lakeversion.model import Content, Delete, Key, Put
from spark_lakeversion.tableformat.validate import check_claims, check_not_owned
from spark_lakeversion.versioning.suggest import table_hint

#: what the catalog serves as tables: Iceberg's, and Delta's as Iceberg metadata
TABLE_TYPES = (ICEBERG_TABLE, DELTA_TABLE)


class TableService:
    """Iceberg tables: contents of type `ICEBERG_TABLE` at their keys, each pointing at its
    current metadata file."""

    def __init__(self, ctx: CatalogContext, namespaces: NamespaceService) -> None:
        self.ctx = ctx
        self.namespaces = namespaces
        self.appends = AppendCommitter(self)

    # ---- file safety -------------------------------------------------------------------
    def check_metadata(self, key: Key, metadata: TableMetadata,
                       base: TableMetadata | None = None, *,
                       read_current_only: bool = False,
                       written_lists: frozenset[str] = frozenset()) -> None:
        """Every location the metadata names is under a root, and its table location and
        `write.*.path` directories overlap no other table's location: before any write.
        `written_lists`: manifest lists this request wrote from checked manifests."""
        iceberg_files.validate_metadata(metadata, self.ctx.roots, base, what=f"table {key}",
                                        read_current_only=read_current_only,
                                        io_properties=self.ctx.io,
                                        written_lists=written_lists)
        claims = iceberg_files.claimed_locations(metadata)
        if base is not None and iceberg_files.claimed_locations(base) == claims:
            return  # nothing moved: already checked when it was set
        check_claims(self.ctx.store, f"table {key}", claims, str(metadata.table_uuid))

    def read_metadata(self, metadata_location: str) -> TableMetadata:
        """A table's metadata file (cached), read with the server's FileIO."""
        return fmt.read_metadata(metadata_location, self.ctx.io)

    def write_metadata(self, metadata: TableMetadata, previous_location: str | None = None
                       ) -> str:
        """A new metadata file (create-exclusive) with the server's FileIO; its location."""
        return fmt.write_metadata(metadata, previous_location, self.ctx.io)

    # ---- lookups -----------------------------------------------------------------------
    def _table(self, addr: Address, name: str, *, delta: bool = True
               ) -> tuple[Key, Content | None]:
        """The Iceberg or (`delta`) Delta table at `name`; None for anything else."""
        key = addr.key(name)
        check_key(key, self.ctx.store.limits)  # before a metadata file is written under it
        content = self.ctx.store.get_content(addr.commit_id, key)
        if content is not None and content.type is DELTA_TABLE and delta:
            return key, content
        if content is not None and content.type is not ICEBERG_TABLE:
            content = None  # a namespace is not an Iceberg table
        return key, content

    def lookup(self, addr: Address, name: str) -> tuple[Key, Content | None]:
        """The table's key and its content at `addr` (None: no Iceberg table there)."""
        return self._table(addr, name)

    def missing_table(self, addr: Address, key: Key) -> IcebergError:
        return self._missing_table(addr, key)

    def _missing_table(self, addr: Address, key: Key) -> IcebergError:
        """404 for `key` at `addr`, hinting at the closest Iceberg table of its namespace."""
        tables = [k for k, c in self.ctx.store.list_keys(addr.commit_id, Key(key.namespace))
                  if c.type in TABLE_TYPES and k.namespace == key.namespace] \
            if key.namespace else []
        return table_not_found(key, addr.resolved.expression, table_hint(key, tables))

    # ---- tables ------------------------------------------------------------------------
    def list_tables(self, prefix: str | None, namespace: str) -> dict[str, Any]:
        return self.namespaces.list_names(prefix, namespace, TABLE_TYPES)

    def load_table(self, prefix: str | None, namespace: str, table: str) -> LoadedTable:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        key, content = self._table(addr, table)
        if content is None:
            raise self._missing_table(addr, key)
        if content.type is DELTA_TABLE:
            served = delta_facade.load(DeltaState.of(content, key), self.ctx.io)
            return LoadedTable(served.metadata, served.location)
        location = fmt.metadata_location_of(content)
        return LoadedTable(self.read_metadata(location), location)

    def table_exists(self, prefix: str | None, namespace: str, table: str) -> bool:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        return self._table(addr, table)[1] is not None

    def create_table(self, prefix: str | None, namespace: str, req: CreateTableRequest,
                     meta: CommitMeta) -> LoadedTable:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        addr.new_key(req.name)
        if req.location:
            self.ctx.roots.check(req.location, f"table {addr.key(req.name)} location",
                                 strictly=True)
        key, existing = self._table(addr, req.name)
        if existing is not None or self.ctx.store.get_content(addr.commit_id, key) is not None:
            raise table_already_exists(key, addr.resolved.expression)
        if not req.stage_create:
            addr.branch()  # refuse read-only refs before writing any file
        namespace_content = self.namespaces.require(addr)
        if delta_create.wants_delta(dict(req.properties)):
            return self._create_delta(addr, key, req, meta)
        table_uuid = uuid.uuid4()
        location = (req.location.rstrip("/") if req.location
                    else self.ctx.default_location(addr, namespace_content, req.name, table_uuid))
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
        for attempt in range(CREATE_ATTEMPTS):
            # a gc run beginning between writing and committing refuses the (then older)
            # metadata file; the file is the server's own, so write it again and retry
            # rather than answer 409, which clients read as "the table already exists"
            metadata_location = self.write_metadata(metadata)
            content = fmt.iceberg_content(metadata, metadata_location)
            try:
                self.ctx.commit(addr, [Put(key, content)], meta, f"create table {key}",
                                {"iceberg.operation": "create", "iceberg.table": str(key)},
                                written=[metadata_location])
            except GcRefused:
                if attempt + 1 == CREATE_ATTEMPTS:
                    raise
                continue
            break
        return LoadedTable(metadata, metadata_location)

    def _plan(self, addr: Address, name: str, requirements: Sequence[TableRequirement],
              updates: Sequence[TableUpdate]) -> Planned:
        """Validate and apply one table's change; writes its new metadata file."""
        key, content = self._table(addr, name)
        if content is not None and content.type is DELTA_TABLE:
            raise bad_request(f"{key} is a Delta table: commit to it on its own, not in a "
                              "multi-table transaction")
        creating = any(isinstance(r, AssertCreate) for r in requirements)
        if content is None and not creating:
            raise self._missing_table(addr, key)
        if content is None and self.ctx.store.get_content(addr.commit_id, key) is not None:
            raise already_exists(f"{key} exists and is not an Iceberg table")
        if content is not None and creating:
            raise commit_failed(f"Table already exists: {key}."
                                + ref_sentence(addr.resolved.expression))
        if content is None:
            addr.new_key(name)
            self.namespaces.require(addr)
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
        operation, props, snapshots = describe_updates(updates)
        if base is not None and base_location is not None and not updates:
            return Planned(key, fmt.iceberg_content(base, base_location), base, base_location,
                            False, operation, props)
        metadata = apply_updates(key, base, base_location, updates)
        self.check_metadata(key, metadata, base)
        location = self.write_metadata(metadata, base_location)
        description = describe_change(operation, key, snapshots)
        if base is None:  # a staged create (CTAS): the table, then what its snapshot holds
            operation = "create"
            description = f"create table {key}" + (f"; {description}" if snapshots else "")
        return Planned(key, fmt.iceberg_content(metadata, location), metadata, location,
                        True, operation, props, base, description)

    def commit_table(self, prefix: str | None, namespace: str, table: str,
                     req: CommitTableBody, meta: CommitMeta) -> LoadedTable:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        addr.branch()
        key, content = self._table(addr, table)
        if content is not None and content.type is DELTA_TABLE:
            return self._commit_delta(addr, key, content, req, meta)
        if self.appends.accepts(req.requirements, req.updates):  # rebased and grouped
            return LoadedTable(*self.appends.commit(addr, AppendRequest(
                prefix, namespace, table, tuple(req.requirements), tuple(req.updates), meta)))
        plan = self._plan(addr, table, req.requirements, req.updates)
        if plan.new_file:
            self.ctx.commit(addr, [Put(plan.key, plan.content)], meta, plan.description,
                            {"iceberg.operation": plan.operation, "iceberg.table": str(plan.key),
                             **plan.props}, written=[plan.location],
                            changes=[(plan.base, plan.metadata)])
        return LoadedTable(plan.metadata, plan.location)

    def _create_delta(self, addr: Address, key: Key, req: CreateTableRequest,
                      meta: CommitMeta) -> LoadedTable:
        """`CREATE TABLE ... USING delta`: a Delta table made by our Delta writer under the
        warehouse (`formats/delta/tables.create_table`), then served as Iceberg."""
        if req.stage_create:
            raise bad_request(f"cannot create Delta table {key} from a query (CREATE TABLE "
                              "... USING delta AS SELECT): create it, then INSERT")
        if req.location:
            raise bad_request(f"cannot create Delta table {key} at a location of the "
                              "client's choice: the server places it under its warehouse")
        schema, partition_by = delta_create.delta_schema(req.table_schema, req.partition_spec)
        # Delta's own settings only (`delta.*`); Spark's `owner` and the like stay out of
        # the log
        extra = {k: v for k, v in req.properties.items() if k.startswith("delta.")}
        commit = delta_tables.create_table(
            self.ctx.store, self.ctx.warehouse_location, str(key), schema, partition_by,
            extra, branch=addr.branch(), expected_head=addr.commit_id,
            message=meta.message_or(f"create Delta table {key}"), author=meta.author,
            io=self.ctx.io)
        content = self.ctx.store.get_content(commit.id, key)
        if content is None:  # pragma: no cover - the commit just put it
            raise self._missing_table(addr, key)
        served = delta_facade.load(DeltaState.of(content, key), self.ctx.io)
        return LoadedTable(served.metadata, served.location)

    def _commit_delta(self, addr: Address, key: Key, content: Content, req: CommitTableBody,
                      meta: CommitMeta) -> LoadedTable:
        """An Iceberg commit on a Delta table: one new Delta version on the branch's log
        (`formats/delta/iceberg/commit.py`), then one store commit fenced against gc."""
        branch = addr.branch()
        state = DeltaState.of(content, key)
        served = delta_facade.load(state, self.ctx.io)
        try:
            write = delta_commit.apply(state, served.metadata, req.requirements, req.updates,
                                       branch, self.ctx.io,
                                       rebase_appends=self.ctx.appends.rebase)
        except delta_commit.StaleCommit as exc:
            raise commit_failed(f"{key}: {exc.message}"
                                + ref_sentence(addr.resolved.expression)) from None
        if write is None:
            return LoadedTable(served.metadata, served.location)
        new = write.state.content()
        rebased = {} if write.rebased_from is None else {
            "lakeversion.rebased": "true", "lakeversion.rebased-from": write.rebased_from}
        try:
            self.ctx.commit(addr, [Put(key, new)], meta,
                            f"{write.operation} on Delta table {key} (version "
                            f"{write.state.version}: {write.added} added, {write.removed} "
                            "removed)",
                            {"iceberg.operation": write.operation, "iceberg.table": str(key),
                             "lakeversion.delta.operation": f"iceberg {write.operation}",
                             "lakeversion.delta.version": str(write.state.version),
                             **rebased},
                            added=[(key, content, new)])
        except CommitOutcomeUnknown:
            raise  # it may have landed: its log files are not ours to remove
        except BaseException:
            delta_log.delete_created(reversed(write.created), self.ctx.io)
            raise
        loaded = delta_facade.load(write.state, self.ctx.io)
        return LoadedTable(loaded.metadata, loaded.location)

    def commit_transaction(self, prefix: str | None, req: TransactionBody,
                           meta: CommitMeta) -> None:
        """All table changes in one store commit: all land or none does."""
        if not req.table_changes:
            raise bad_request("a transaction needs at least one table change")
        addresses = [self.ctx.address(prefix, split_namespace(c.identifier.namespace.root),
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
        self.ctx.commit(first, [Put(p.key, p.content) for p in changed], meta,
                        "transaction: " + "; ".join(p.description for p in changed),
                        {"iceberg.operation": "transaction", "iceberg.tables": tables},
                        written=[p.location for p in changed],
                        changes=[(p.base, p.metadata) for p in changed])

    def drop_table(self, prefix: str | None, namespace: str, table: str, purge: bool,
                   meta: CommitMeta) -> dict[str, Any]:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        addr.branch()
        key, content = self._table(addr, table)
        if content is None:
            raise self._missing_table(addr, key)
        self.ctx.commit(addr, [Delete(key)], meta,
                        f"drop table {key}" + (" (purge)" if purge else ""),
                        {"iceberg.operation": "drop", "iceberg.table": str(key),
                         "iceberg.purge-requested": str(purge).lower()})
        # Never delete files here: other branches, tags and retained commits share this
        # table's files, and only `lakeversion gc` sees all of them.
        return {"purged": False}

    def rename_table(self, prefix: str | None, req: RenameBody, meta: CommitMeta) -> None:
        src, dst = self.ctx.rename_addresses(prefix, req)
        src_key, content = self._table(src, req.source.name)
        if content is None:
            raise self._missing_table(src, src_key)
        dst_key = dst.new_key(req.destination.name)
        if self.ctx.store.get_content(src.commit_id, dst_key) is not None:
            raise table_already_exists(dst_key, src.resolved.expression)
        if dst.namespace:
            self.namespaces.require(dst)
        self.ctx.commit(src, [Delete(src_key), Put(dst_key, content)], meta,
                        f"rename table {src_key} to {dst_key}",
                        {"iceberg.operation": "rename", "iceberg.table": str(dst_key),
                         "iceberg.renamed-from": str(src_key)})

    def register_table(self, prefix: str | None, namespace: str, req: RegisterTableRequest,
                       meta: CommitMeta) -> LoadedTable:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        addr.new_key(req.name)
        addr.branch()
        self.namespaces.require(addr)
        key, existing = self._table(addr, req.name, delta=False)
        other = self.ctx.store.get_content(addr.commit_id, key)
        if other is not None and not (req.overwrite and existing is not None):
            raise table_already_exists(key, addr.resolved.expression)
        try:
            # only a regular file under a root, size- and time-limited; one generic error
            # for everything else, so register cannot probe the server's file system
            metadata = iceberg_files.read_client_metadata(req.metadata_location, self.ctx.roots,
                                                          self.ctx.io)
        except iceberg_files.UnreadableFile:
            raise bad_request(f"cannot register {key}: {iceberg_files.UNREADABLE} "
                              f"({self.ctx.roots.describe()})") from None
        self.check_metadata(key, metadata, read_current_only=True)
        check_not_owned(self.ctx.store, f"cannot register {key}",
                        {"metadata file": req.metadata_location,
                         **iceberg_files.claimed_locations(metadata)})
        content = fmt.iceberg_content(metadata, req.metadata_location)
        self.ctx.commit(addr, [Put(key, content)], meta, f"register table {key}",
                        {"iceberg.operation": "register", "iceberg.table": str(key)},
                        added=[(key, existing, content)])
        return LoadedTable(metadata, req.metadata_location)
