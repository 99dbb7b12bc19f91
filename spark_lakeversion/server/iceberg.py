"""The Iceberg REST catalog over the version store: every ref is a whole catalog.

Addressing: `GET /v1/config?warehouse=REF` hands the client a URL `prefix` naming that ref
(no warehouse: `main`); a first namespace level written `db@REF` addresses any ref
expression explicitly from any prefix. Branches are read-write; tags, commits and
time-travel expressions are read-only.

A table commit validates the client's requirements against the table at the branch head,
applies the updates with pyiceberg's own `update_table_metadata`, writes the new metadata
file under the table location and commits it to the store with compare-and-swap on that
head: a concurrent change of the same table makes the store refuse (409, the client
retries), a change of another table does not.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyiceberg.catalog import MetastoreCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.exceptions import ValidationError as PyIcebergValidationError
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    AssertCreate,
    AssignUUIDUpdate,
    TableRequirement,
    TableUpdate,
    update_table_metadata,
)

from spark_lakeversion.errors import (
    CommitOutcomeUnknown,
    ConflictError,
    InvalidInput,
    LakeVersionError,
    LocationNotAllowed,
    NotFound,
    ReadOnlyRef,
)
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg import files as iceberg_files
from spark_lakeversion.limits import check_key
from spark_lakeversion.locations import (
    OVERLAPS,
    AllowedRoots,
    Location,
    parse_location,
    safe_segment,
    table_location,
)
from spark_lakeversion.server.boundary import request_json
from spark_lakeversion.server.errors import (
    IcebergError,
    already_exists,
    bad_request,
    commit_failed,
    iceberg_from_lakeversion,
    no_such_namespace,
    no_such_table,
)
from spark_lakeversion.server.headers import CommitMeta, commit_meta
from spark_lakeversion.store.base import DEFAULT_BRANCH, VersionStore
from spark_lakeversion.store.gc_state import GcEpochChanged
from spark_lakeversion.store.model import (
    Content,
    ContentType,
    Delete,
    Key,
    Operation,
    Put,
    RefType,
    ResolvedRef,
)
from spark_lakeversion.store.names import parse_ref_expression

log = logging.getLogger("spark_lakeversion.server.iceberg")

NAMESPACE_SEPARATOR = "\x1f"
REF_MARK = "@"
_ENCODED_MARK = "~"
_PLAIN_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

ENDPOINTS = [
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "POST /v1/{prefix}/namespaces/{namespace}/properties",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/register",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
    "POST /v1/{prefix}/tables/rename",
    "POST /v1/{prefix}/transactions/commit",
]


# ---- prefixes ----------------------------------------------------------------------------
def encode_prefix(expression: str) -> str:
    """A URL-path-safe prefix for a ref expression (which may hold `/`, `~`, `#`, `:`)."""
    if expression and set(expression) <= _PLAIN_PREFIX_CHARS:
        return expression
    raw = base64.urlsafe_b64encode(expression.encode()).decode().rstrip("=")
    return _ENCODED_MARK + raw


def decode_prefix(prefix: str) -> str:
    if not prefix.startswith(_ENCODED_MARK):
        return prefix
    raw = prefix[len(_ENCODED_MARK):]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request(f"URL prefix {prefix!r} is not a ref prefix from /v1/config") from None


# ---- addressing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Address:
    """Where a request points: a resolved ref and the namespace elements inside it."""

    resolved: ResolvedRef
    namespace: tuple[str, ...]  # as stored (without `@ref`)
    echo: tuple[str, ...]  # as the client wrote it, to hand identifiers back

    def key(self, name: str | None = None) -> Key:
        try:
            return Key(self.namespace + ((name,) if name is not None else ()))
        except InvalidInput as exc:
            raise bad_request(exc.message) from None

    def new_key(self, name: str | None = None) -> Key:
        """The key of a table or namespace about to be created: every level must be a safe
        name (`locations.safe_segment`); reads stay lenient so old names remain readable."""
        try:
            for level in self.namespace:
                safe_segment(level, "namespace level")
            if name is not None:
                safe_segment(name, "table name")
        except InvalidInput as exc:
            raise bad_request(exc.message) from None
        return self.key(name)

    @property
    def commit_id(self) -> str:
        return self.resolved.commit_id

    def branch(self) -> str:
        """The branch to write to, or a 403 saying why this ref cannot be written."""
        if self.resolved.branch is None:
            raise ReadOnlyRef(
                f"{self.resolved.expression!r} is not a branch (tags, commits and time-travel "
                "expressions are read-only): write through a branch instead")
        return self.resolved.branch


def split_namespace(value: str | Sequence[str]) -> tuple[str, ...]:
    parts = tuple(value.split(NAMESPACE_SEPARATOR)) if isinstance(value, str) else tuple(value)
    if not parts or any(not isinstance(p, str) or not p for p in parts):
        raise bad_request(f"invalid namespace {value!r}: levels must be non-empty strings")
    return parts


class Requests(BaseModel):
    """Bodies we parse ourselves (pyiceberg has no model for them)."""

    model_config = ConfigDict(populate_by_name=True)


class CreateNamespaceBody(Requests):
    namespace: list[str]
    properties: dict[str, str] = Field(default_factory=dict)


class UpdateNamespaceBody(Requests):
    removals: list[str] = Field(default_factory=list)
    updates: dict[str, str] = Field(default_factory=dict)


class CreateTableRequest(Requests):
    """The spec's CreateTableRequest; optional fields may be absent (Java) or null."""

    name: str
    location: str | None = None
    table_schema: Schema = Field(alias="schema")
    partition_spec: PartitionSpec | None = Field(default=None, alias="partition-spec")
    write_order: SortOrder | None = Field(default=None, alias="write-order")
    stage_create: bool = Field(default=False, alias="stage-create")
    properties: dict[str, str] = Field(default_factory=dict)


class RegisterTableRequest(Requests):
    name: str
    metadata_location: str = Field(alias="metadata-location")
    overwrite: bool = False


class TableIdent(Requests):
    namespace: list[str]
    name: str


class RenameBody(Requests):
    source: TableIdent
    destination: TableIdent


class TableChange(Requests):
    identifier: TableIdent
    requirements: list[TableRequirement] = Field(default_factory=list)
    updates: list[TableUpdate] = Field(default_factory=list)


class CommitBody(Requests):
    """The spec's CommitTableRequest: the identifier is optional (the path names the table)."""

    identifier: TableIdent | None = None
    requirements: list[TableRequirement] = Field(default_factory=list)
    updates: list[TableUpdate] = Field(default_factory=list)


class TransactionBody(Requests):
    table_changes: list[TableChange] = Field(alias="table-changes")


#: what pyiceberg's models and `update_table_metadata` raise on bad input, besides pydantic's
#: ValidationError (a ValueError): from constructors past pydantic, or from lookups such as
#: `next(...)` over specs/schemas of a table being created without them; ArithmeticError for
#: out-of-range values such as a date default of 2**31 days (OverflowError)
_PYICEBERG_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError,
                           StopIteration, ArithmeticError, PyIcebergValidationError)


def _parse(model: type[Any], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        why = errors[0]["msg"] if errors else "malformed"
        raise bad_request(f"invalid request body at {where or 'root'}: {why}") from None
    except _PYICEBERG_INPUT_ERRORS as exc:
        raise bad_request(f"invalid request body: {type(exc).__name__}: {exc}") from None


async def _json(request: Request) -> Any:
    """The body as the input boundary parsed and checked it (`server.boundary`)."""
    return request_json(request)


def _json_response(payload: str, status: int = 200) -> Response:
    # a lone surrogate stored by an older version goes out as its JSON escape
    return Response(payload.encode("utf-8", "backslashreplace"), status_code=status,
                    media_type="application/json")


def _table_result(metadata: TableMetadata, metadata_location: str | None) -> Response:
    """LoadTableResult, serialised by pyiceberg itself (exactly the metadata-file JSON)."""
    location = json.dumps(metadata_location) if metadata_location else "null"
    return _json_response(
        f'{{"metadata-location":{location},"metadata":'
        f'{fmt.served_metadata_json(metadata, metadata_location)},"config":{{}}}}')


def _describe_updates(updates: Sequence[TableUpdate]) -> tuple[str, dict[str, Any]]:
    """Operation name and snapshot id of a commit, for its default message and properties."""
    snapshot = None
    for update in updates:
        if isinstance(update, AddSnapshotUpdate):
            snapshot = update.snapshot
    if snapshot is not None:
        operation = snapshot.summary.operation.value if snapshot.summary else "snapshot"
        return operation, {"iceberg.snapshot-id": snapshot.snapshot_id}
    actions = list(dict.fromkeys(u.action for u in updates))
    return (", ".join(actions) or "no-op"), {}


@dataclass
class _Planned:
    """One table's change: its new metadata written, ready for the store commit."""

    key: Key
    content: Content
    metadata: TableMetadata
    location: str
    new_file: bool
    operation: str
    props: dict[str, Any]
    base: TableMetadata | None = None  # what the change applied to (None: a new table)


#: how often create_table rewrites its metadata file when gc's fence refused it
_CREATE_ATTEMPTS = 3


class _GcRefused(IcebergError):
    """A commit refused by gc's fence (409 CommitFailed): its files may be collected."""

    def __init__(self, message: str) -> None:
        super().__init__(409, "CommitFailedException", message)


class IcebergCatalog:
    """The catalog's logic, independent of HTTP routing (and testable as such)."""

    def __init__(self, store: VersionStore, warehouse: str,
                 roots: AllowedRoots | None = None) -> None:
        self.store = store
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
                                        read_current_only=read_current_only)
        table_id = str(metadata.table_uuid)
        if base is not None and base.location == metadata.location and \
                iceberg_files.path_properties(base) == iceberg_files.path_properties(metadata):
            return  # nothing moved: already checked when it was set
        for what, value in [("location", metadata.location),
                            *iceberg_files.path_properties(metadata).items()]:
            owner = self.store.location_owner(value, table_id)
            if owner is not None:
                raise LocationNotAllowed(
                    f"table {key} {what} {value!r} {OVERLAPS} (table id {owner[0]} at "
                    f"{owner[1]}): tables never share files; choose another location")

    # ---- addressing --------------------------------------------------------------------
    def address(self, prefix: str | None, namespace: Sequence[str], *,
                table_op: bool = False) -> Address:
        """Resolve `prefix` and an optional `db@ref` first level into a ref and namespace."""
        expression = decode_prefix(prefix) if prefix else DEFAULT_BRANCH
        elements = tuple(namespace)
        if elements and REF_MARK in elements[0]:
            name, _, ref = elements[0].partition(REF_MARK)
            if not name or not ref:
                raise bad_request(f"namespace {elements[0]!r}: write `name@ref`, e.g. db@dev")
            expression = ref
            elements = (name, *elements[1:])
        try:
            resolved = self.store.resolve(expression)
        except NotFound as exc:
            raise iceberg_from_lakeversion(exc, table_op=table_op) from None
        return Address(resolved, elements, tuple(namespace))

    def _table(self, addr: Address, name: str) -> tuple[Key, Content | None]:
        key = addr.key(name)
        check_key(key, self.store.limits)  # before a metadata file is written under it
        content = self.store.get_content(addr.commit_id, key)
        if content is not None and content.type is not ContentType.ICEBERG_TABLE:
            content = None  # a Delta table or a namespace is not an Iceberg table
        return key, content

    def _namespace(self, addr: Address) -> Content | None:
        if not addr.namespace:
            return None
        content = self.store.get_content(addr.commit_id, addr.key())
        return content if content is not None and content.type is ContentType.NAMESPACE else None

    def _require_namespace(self, addr: Address) -> Content:
        content = self._namespace(addr)
        if content is None:
            raise no_such_namespace(
                f"namespace {'.'.join(addr.namespace)} does not exist at "
                f"{addr.resolved.expression}")
        return content

    def _commit(self, addr: Address, operations: list[Operation], meta: CommitMeta,
                message: str, properties: dict[str, Any], written: Sequence[str] = (),
                changes: Sequence[tuple[TableMetadata | None, TableMetadata]] = ()) -> str:
        """One store commit with compare-and-swap on the head the request read from.

        A commit that wrote files is fenced against gc (`spark_lakeversion.gc.fence`): the
        files it wrote and those the new snapshots of `changes` (base, new metadata) add
        must postdate gc's cutoff, and the store commits only if no gc run began since.
        A definite refusal removes the metadata files this request wrote; an unexpected
        failure leaves them (the commit may have landed) and surfaces as outcome-unknown.
        """
        branch = addr.branch()
        gc_epoch = self._gc_fence(written, changes) if written else None
        try:
            commit = self.store.commit(
                branch, operations, message=meta.message_or(message), author=meta.author,
                properties=meta.properties_with(properties), expected_head=addr.commit_id,
                expected_gc_epoch=gc_epoch)
        except GcEpochChanged as exc:
            for location in written:
                fmt.delete_file_quietly(location)
            raise _GcRefused(f"commit to {branch} failed: {exc.message}") from None
        except ConflictError as exc:
            for location in written:
                iceberg_files.delete_created(location)
            raise commit_failed(
                f"commit to {branch} failed, a concurrent change touched the same keys: "
                f"{exc.message}") from None
        except LakeVersionError:
            for location in written:
                iceberg_files.delete_created(location)
            raise
        except Exception as exc:  # the store commit failed in an unforeseen way: it may
            # have landed, so its files are published, not ours to delete
            log.exception("store commit to %s failed", branch)
            raise CommitOutcomeUnknown(
                f"the store commit to {branch} failed ({type(exc).__name__}); it may or may "
                "not have landed: reload the table before retrying") from None
        finally:
            for location in written:  # deleted above, or published: no longer ours
                iceberg_files.forget_created(location)
        return commit.id

    def _gc_fence(self, written: Sequence[str],
                  changes: Sequence[tuple[TableMetadata | None, TableMetadata]]) -> int:
        """The gc epoch the commit must land in, once its new files are checked."""
        from spark_lakeversion.gc import fence as gc_fence

        state = self.store.gc_state()
        problems = gc_fence.check_written(state, written)
        if state.cutoff is not None:
            for base, metadata in changes:
                problems += gc_fence.check_new_files(state, base, metadata,
                                                     fmt.file_io(metadata.location))
        if problems:
            for location in written:
                fmt.delete_file_quietly(location)
            raise _GcRefused(gc_fence.refusal(problems, state))
        return state.epoch

    # ---- config ------------------------------------------------------------------------
    def config(self, warehouse: str | None) -> dict[str, Any]:
        expression = warehouse or DEFAULT_BRANCH
        try:
            parsed = parse_ref_expression(expression)
            resolved = self.store.resolve(expression)
        except LakeVersionError as exc:
            raise bad_request(
                f"warehouse {expression!r} must name a ref of this catalog (branch, tag, commit, "
                f"ref~N or ref#timestamp): {exc.message}") from None
        if parsed.ancestors:  # `main~2` would drift as main moves: pin it
            expression = resolved.commit_id
        return {"defaults": {}, "overrides": {"prefix": encode_prefix(expression)},
                "endpoints": ENDPOINTS}

    # ---- namespaces --------------------------------------------------------------------
    def list_namespaces(self, prefix: str | None, parent: str | None) -> dict[str, Any]:
        parent_ns = split_namespace(parent) if parent else ()
        addr = self.address(prefix, parent_ns)
        if parent_ns:
            self._require_namespace(addr)
            entries = self.store.list_keys(addr.commit_id, addr.key())
        else:
            entries = self.store.list_keys(addr.commit_id)
        depth = len(addr.namespace) + 1
        found = [addr.echo + key.elements[len(addr.namespace):]
                 for key, content in entries
                 if content.type is ContentType.NAMESPACE and len(key.elements) == depth]
        return {"namespaces": [list(ns) for ns in found], "next-page-token": None}

    def create_namespace(self, prefix: str | None, body: Any, meta: CommitMeta) -> dict[str, Any]:
        req: CreateNamespaceBody = _parse(CreateNamespaceBody, body)
        addr = self.address(prefix, split_namespace(req.namespace))
        addr.new_key()
        self._check_namespace_location(req.properties)
        if self._namespace(addr) is not None or self.store.get_content(
                addr.commit_id, addr.key()) is not None:
            raise IcebergError(409, "AlreadyExistsException",
                               f"namespace {'.'.join(addr.namespace)} already exists")
        content = fmt.namespace_content(req.properties)
        ns = ".".join(addr.namespace)
        self._commit(addr, [Put(addr.key(), content)], meta, f"create namespace {ns}",
                     {"iceberg.operation": "create-namespace", "iceberg.namespace": ns})
        return {"namespace": list(addr.echo), "properties": req.properties}

    def load_namespace(self, prefix: str | None, namespace: str) -> dict[str, Any]:
        addr = self.address(prefix, split_namespace(namespace))
        content = self._require_namespace(addr)
        return {"namespace": list(addr.echo), "properties": fmt.namespace_properties(content)}

    def namespace_exists(self, prefix: str | None, namespace: str) -> bool:
        addr = self.address(prefix, split_namespace(namespace))
        return self._namespace(addr) is not None

    def drop_namespace(self, prefix: str | None, namespace: str, meta: CommitMeta) -> None:
        addr = self.address(prefix, split_namespace(namespace))
        self._require_namespace(addr)
        children = self.store.list_keys(addr.commit_id, addr.key())
        if children:
            raise IcebergError(409, "NamespaceNotEmptyException",
                               f"namespace {'.'.join(addr.namespace)} is not empty: "
                               f"{len(children)} tables or namespaces, e.g. {children[0][0]}")
        ns = ".".join(addr.namespace)
        self._commit(addr, [Delete(addr.key())], meta, f"drop namespace {ns}",
                     {"iceberg.operation": "drop-namespace", "iceberg.namespace": ns})

    def update_namespace(self, prefix: str | None, namespace: str, body: Any,
                         meta: CommitMeta) -> dict[str, Any]:
        req: UpdateNamespaceBody = _parse(UpdateNamespaceBody, body)
        overlap = set(req.removals) & set(req.updates)
        if overlap:
            raise IcebergError(422, "UnprocessableEntityException",
                               f"properties both updated and removed: {sorted(overlap)}")
        addr = self.address(prefix, split_namespace(namespace))
        content = self._require_namespace(addr)
        props = fmt.namespace_properties(content)
        removed = [k for k in req.removals if k in props]
        missing = [k for k in req.removals if k not in props]
        for k in removed:
            del props[k]
        props.update(req.updates)
        self._check_namespace_location(req.updates)
        ns = ".".join(addr.namespace)
        if removed or req.updates:
            self._commit(addr, [Put(addr.key(), fmt.namespace_content(props, content.id))], meta,
                         f"update properties of namespace {ns}",
                         {"iceberg.operation": "update-namespace", "iceberg.namespace": ns})
        return {"updated": sorted(req.updates), "removed": removed, "missing": missing}

    def _check_namespace_location(self, properties: dict[str, str]) -> None:
        """A namespace `location` is where its tables go by default: under a root."""
        if "location" in properties:
            self.roots.check(properties["location"], "namespace location")

    # ---- tables ------------------------------------------------------------------------
    def list_tables(self, prefix: str | None, namespace: str) -> dict[str, Any]:
        addr = self.address(prefix, split_namespace(namespace))
        entries = self.store.list_keys(addr.commit_id, addr.key())
        depth = len(addr.namespace) + 1
        names = [key.name for key, content in entries
                 if content.type is ContentType.ICEBERG_TABLE and len(key.elements) == depth]
        if not names:
            self._require_namespace(addr)
        return {"identifiers": [{"namespace": list(addr.echo), "name": n} for n in names],
                "next-page-token": None}

    def load_table(self, prefix: str | None, namespace: str, table: str) -> Response:
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        key, content = self._table(addr, table)
        if content is None:
            raise no_such_table(f"table {key} does not exist at {addr.resolved.expression}")
        location = fmt.metadata_location_of(content)
        return _table_result(fmt.read_metadata(location), location)

    def table_exists(self, prefix: str | None, namespace: str, table: str) -> bool:
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        return self._table(addr, table)[1] is not None

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

    def create_table(self, prefix: str | None, namespace: str, body: Any,
                     meta: CommitMeta) -> Response:
        req: CreateTableRequest = _parse(CreateTableRequest, body)
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        addr.new_key(req.name)
        if req.location:
            self.roots.check(req.location, f"table {addr.key(req.name)} location", strictly=True)
        key, existing = self._table(addr, req.name)
        if existing is not None or self.store.get_content(addr.commit_id, key) is not None:
            raise already_exists(f"table {key} already exists at {addr.resolved.expression}")
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
        except _PYICEBERG_INPUT_ERRORS as exc:
            raise bad_request(f"cannot create table {key}: {exc}") from None
        self.check_metadata(key, metadata)
        if req.stage_create:
            return _table_result(metadata, None)
        for attempt in range(_CREATE_ATTEMPTS):
            # a gc run beginning between writing and committing refuses the (then older)
            # metadata file; the file is the server's own, so write it again and retry
            # rather than answer 409, which clients read as "the table already exists"
            metadata_location = fmt.write_metadata(metadata)
            content = fmt.iceberg_content(metadata, metadata_location)
            try:
                self._commit(addr, [Put(key, content)], meta, f"create table {key}",
                             {"iceberg.operation": "create", "iceberg.table": str(key)},
                             written=[metadata_location])
            except _GcRefused:
                if attempt + 1 == _CREATE_ATTEMPTS:
                    raise
                continue
            break
        return _table_result(metadata, metadata_location)

    def _plan(self, addr: Address, name: str, requirements: Sequence[TableRequirement],
              updates: Sequence[TableUpdate]) -> _Planned:
        """Validate and apply one table's change; writes its new metadata file."""
        key, content = self._table(addr, name)
        creating = any(isinstance(r, AssertCreate) for r in requirements)
        if content is None and not creating:
            raise no_such_table(f"table {key} does not exist at {addr.resolved.expression}")
        if content is None and self.store.get_content(addr.commit_id, key) is not None:
            raise already_exists(f"{key} exists and is not an Iceberg table")
        if content is not None and creating:
            raise commit_failed(f"table {key} already exists at {addr.resolved.expression}")
        if content is None:
            addr.new_key(name)
            self._require_namespace(addr)
        base_location = fmt.metadata_location_of(content) if content else None
        base = fmt.read_metadata(base_location) if base_location else None
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
        operation, props = _describe_updates(updates)
        if base is not None and base_location is not None and not updates:
            return _Planned(key, fmt.iceberg_content(base, base_location), base, base_location,
                            False, operation, props)
        try:
            metadata = update_table_metadata(
                base_metadata=(base if base is not None
                               else MetastoreCatalog._empty_table_metadata()),
                updates=tuple(updates), enforce_validation=base is None,
                metadata_location=base_location)
        except _PYICEBERG_INPUT_ERRORS as exc:
            why = str(exc) or ("they leave the table without a current schema, partition "
                               "spec or sort order" if isinstance(exc, StopIteration)
                               else type(exc).__name__)
            raise bad_request(f"cannot apply the updates to {key}: {why}") from None
        if base is None and not metadata.location:
            raise bad_request(f"creating {key} needs a set-location update")
        self.check_metadata(key, metadata, base)
        location = fmt.write_metadata(metadata, base_location)
        return _Planned(key, fmt.iceberg_content(metadata, location), metadata, location,
                        True, "create" if base is None else operation, props, base)

    def commit_table(self, prefix: str | None, namespace: str, table: str, body: Any,
                     meta: CommitMeta) -> Response:
        req: CommitBody = _parse(CommitBody, body)
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
        return _table_result(plan.metadata, plan.location)

    def commit_transaction(self, prefix: str | None, body: Any, meta: CommitMeta) -> None:
        """All table changes in one store commit: all land or none does."""
        req: TransactionBody = _parse(TransactionBody, body)
        if not req.table_changes:
            raise bad_request("a transaction needs at least one table change")
        addresses = [self.address(prefix, split_namespace(c.identifier.namespace), table_op=True)
                     for c in req.table_changes]
        first = addresses[0]
        branch = first.branch()
        for a in addresses[1:]:
            if a.branch() != branch:
                raise bad_request("a transaction must change tables of one branch only")
        # plan every change against the same commit, so the whole set is consistent
        addresses = [Address(first.resolved, a.namespace, a.echo) for a in addresses]
        plans: list[_Planned] = []
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
            _check_no_mutual_overlap(changed)
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
            raise no_such_table(f"table {key} does not exist at {addr.resolved.expression}")
        self._commit(addr, [Delete(key)], meta, f"drop table {key}" + (" (purge)" if purge else ""),
                     {"iceberg.operation": "drop", "iceberg.table": str(key),
                      "iceberg.purge-requested": str(purge).lower()})
        # Never delete files here: other branches, tags and retained commits share this
        # table's files, and only `lakeversion gc` sees all of them.
        return {"purged": False}

    def rename_table(self, prefix: str | None, body: Any, meta: CommitMeta) -> None:
        req: RenameBody = _parse(RenameBody, body)
        src = self.address(prefix, split_namespace(req.source.namespace), table_op=True)
        dst = self.address(prefix, split_namespace(req.destination.namespace), table_op=True)
        branch = src.branch()
        if dst.branch() != branch:
            raise bad_request("rename must stay on one branch (source and destination refs "
                              f"differ: {src.resolved.expression}, {dst.resolved.expression})")
        dst = Address(src.resolved, dst.namespace, dst.echo)
        src_key, content = self._table(src, req.source.name)
        if content is None:
            raise no_such_table(f"table {src_key} does not exist at {src.resolved.expression}")
        dst_key = dst.new_key(req.destination.name)
        if self.store.get_content(src.commit_id, dst_key) is not None:
            raise already_exists(f"{dst_key} already exists at {src.resolved.expression}")
        if dst.namespace:
            self._require_namespace(dst)
        self._commit(src, [Delete(src_key), Put(dst_key, content)], meta,
                     f"rename table {src_key} to {dst_key}",
                     {"iceberg.operation": "rename", "iceberg.table": str(dst_key),
                      "iceberg.renamed-from": str(src_key)})

    def register_table(self, prefix: str | None, namespace: str, body: Any,
                       meta: CommitMeta) -> Response:
        req: RegisterTableRequest = _parse(RegisterTableRequest, body)
        addr = self.address(prefix, split_namespace(namespace), table_op=True)
        addr.new_key(req.name)
        addr.branch()
        self._require_namespace(addr)
        key, existing = self._table(addr, req.name)
        other = self.store.get_content(addr.commit_id, key)
        if other is not None and not (req.overwrite and existing is not None):
            raise already_exists(f"{key} already exists at {addr.resolved.expression}")
        try:
            # only a regular file under a root, size- and time-limited; one generic error
            # for everything else, so register cannot probe the server's file system
            metadata = iceberg_files.read_client_metadata(req.metadata_location, self.roots)
        except iceberg_files.UnreadableFile:
            raise bad_request(f"cannot register {key}: {iceberg_files.UNREADABLE} "
                              f"({self.roots.describe()})") from None
        self.check_metadata(key, metadata, read_current_only=True)
        content = fmt.iceberg_content(metadata, req.metadata_location)
        self._commit(addr, [Put(key, content)], meta, f"register table {key}",
                     {"iceberg.operation": "register", "iceberg.table": str(key)})
        return _table_result(metadata, req.metadata_location)


def _check_no_mutual_overlap(plans: Sequence[_Planned]) -> None:
    """Tables changed by one transaction are checked against the store's index one by one;
    they must not overlap each other either."""
    seen: list[tuple[Location, str, Key]] = []
    for p in plans:
        location = parse_location(p.metadata.location, f"table {p.key} location")
        table_id = str(p.metadata.table_uuid)
        for other, other_id, other_key in seen:
            if other_id != table_id and location.overlaps(other):
                raise LocationNotAllowed(
                    f"table {p.key} location {p.metadata.location!r} {OVERLAPS} ({other_key} "
                    "in the same transaction): tables never share files")
        seen.append((location, table_id, p.key))


# ---- HTTP routes ---------------------------------------------------------------------------
def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def iceberg_router(catalog: IcebergCatalog) -> APIRouter:
    """Routes under `/iceberg`; registered with and without `{prefix}`, specific paths first
    (namespaces may contain `/` once decoded, hence `{namespace:path}`)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/v1/config")
    def get_config(warehouse: str | None = None) -> dict[str, Any]:
        return catalog.config(warehouse)

    for base in ("/v1/{prefix}", "/v1"):
        _add_routes(router, catalog, base)
    return router


def _add_routes(router: APIRouter, catalog: IcebergCatalog, base: str) -> None:
    ns_path = base + "/namespaces/{namespace:path}"
    tbl_path = ns_path + "/tables/{table}"

    def p(prefix: str | None) -> str | None:
        return prefix

    @router.post(base + "/tables/rename", status_code=204)
    async def rename(request: Request, prefix: str | None = None) -> Response:
        body, meta = await _json(request), commit_meta(request)
        await _run(catalog.rename_table, p(prefix), body, meta)
        return Response(status_code=204)

    @router.post(base + "/transactions/commit", status_code=204)
    async def transaction(request: Request, prefix: str | None = None) -> Response:
        body, meta = await _json(request), commit_meta(request)
        await _run(catalog.commit_transaction, p(prefix), body, meta)
        return Response(status_code=204)

    @router.post(tbl_path + "/metrics", status_code=204)
    async def metrics(namespace: str, table: str, prefix: str | None = None) -> Response:
        return Response(status_code=204)  # accepted; we keep no scan/commit reports

    @router.get(tbl_path)
    async def load_table(namespace: str, table: str, prefix: str | None = None) -> Response:
        result: Response = await _run(catalog.load_table, p(prefix), namespace, table)
        return result

    @router.head(tbl_path)
    async def table_exists(namespace: str, table: str, prefix: str | None = None) -> Response:
        exists = await _run(catalog.table_exists, p(prefix), namespace, table)
        return Response(status_code=204 if exists else 404)

    @router.post(tbl_path)
    async def commit_table(request: Request, namespace: str, table: str,
                           prefix: str | None = None) -> Response:
        body, meta = await _json(request), commit_meta(request)
        result: Response = await _run(catalog.commit_table, p(prefix), namespace, table, body,
                                      meta)
        return result

    @router.delete(tbl_path, status_code=204)
    async def drop_table(request: Request, namespace: str, table: str,
                         prefix: str | None = None) -> Response:
        purge = _truthy(request.query_params.get("purgeRequested"))
        outcome = await _run(catalog.drop_table, p(prefix), namespace, table, purge,
                             commit_meta(request))
        headers = {}
        if purge and not outcome.get("purged"):
            headers["X-Lakeversion-Purge"] = "deferred: files are reclaimed by lakeversion gc"
        return Response(status_code=204, headers=headers)

    @router.get(ns_path + "/tables")
    async def list_tables(namespace: str, prefix: str | None = None) -> Any:
        return await _run(catalog.list_tables, p(prefix), namespace)

    @router.post(ns_path + "/tables")
    async def create_table(request: Request, namespace: str,
                           prefix: str | None = None) -> Response:
        body, meta = await _json(request), commit_meta(request)
        result: Response = await _run(catalog.create_table, p(prefix), namespace, body, meta)
        return result

    @router.post(ns_path + "/register")
    async def register_table(request: Request, namespace: str,
                             prefix: str | None = None) -> Response:
        body, meta = await _json(request), commit_meta(request)
        result: Response = await _run(catalog.register_table, p(prefix), namespace, body, meta)
        return result

    @router.post(ns_path + "/properties")
    async def update_namespace(request: Request, namespace: str,
                               prefix: str | None = None) -> Any:
        body, meta = await _json(request), commit_meta(request)
        return await _run(catalog.update_namespace, p(prefix), namespace, body, meta)

    @router.get(base + "/namespaces")
    async def list_namespaces(request: Request, prefix: str | None = None) -> Any:
        return await _run(catalog.list_namespaces, p(prefix),
                          request.query_params.get("parent"))

    @router.post(base + "/namespaces")
    async def create_namespace(request: Request, prefix: str | None = None) -> Any:
        body, meta = await _json(request), commit_meta(request)
        return await _run(catalog.create_namespace, p(prefix), body, meta)

    @router.get(ns_path)
    async def load_namespace(namespace: str, prefix: str | None = None) -> Any:
        return await _run(catalog.load_namespace, p(prefix), namespace)

    @router.head(ns_path)
    async def namespace_exists(namespace: str, prefix: str | None = None) -> Response:
        exists = await _run(catalog.namespace_exists, p(prefix), namespace)
        return Response(status_code=204 if exists else 404)

    @router.delete(ns_path, status_code=204)
    async def drop_namespace(request: Request, namespace: str,
                             prefix: str | None = None) -> Response:
        await _run(catalog.drop_namespace, p(prefix), namespace, commit_meta(request))
        return Response(status_code=204)


async def _run(fn: Any, *args: Any) -> Any:
    """Store and file I/O block: run them on the worker pool, not the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


__all__ = ["ENDPOINTS", "IcebergCatalog", "decode_prefix", "encode_prefix", "iceberg_router",
           "RefType"]
