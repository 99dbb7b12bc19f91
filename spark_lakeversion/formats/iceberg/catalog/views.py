"""View operations of the Iceberg REST catalog: views live on refs exactly like tables.

A view is an `ICEBERG_VIEW` content (`formats.iceberg.view`) at its key; every change
(create, replace, rename, drop, register) is one store commit with compare-and-swap on the
head the request read, so views branch, merge and roll back with the tables around them.
A view and a table never share a key. Metadata files are written create-exclusive under
the view location (built by `locations.table_location`, or a client's location inside the
roots), and removed only when the commit that would publish them is refused.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from pyiceberg.schema import Schema
from pyiceberg.view.metadata import ViewHistoryEntry, ViewMetadata, ViewVersion

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg import view as fmt_view
from spark_lakeversion.formats.iceberg.catalog.addressing import Address, split_namespace
from spark_lakeversion.formats.iceberg.catalog.commits import CREATE_ATTEMPTS
from spark_lakeversion.formats.iceberg.catalog.context import CatalogContext
from spark_lakeversion.formats.iceberg.catalog.errors import (
    GcRefused,
    IcebergError,
    already_exists,
    bad_request,
    commit_failed,
    no_such_view,
    ref_sentence,
)
from spark_lakeversion.formats.iceberg.catalog.meta import CommitMeta
from spark_lakeversion.formats.iceberg.catalog.namespaces import NamespaceService
from spark_lakeversion.formats.iceberg.catalog.requests import (
    PYICEBERG_INPUT_ERRORS,
    AddViewSchema,
    AddViewVersion,
    AssignViewUUID,
    CommitViewBody,
    CreateViewBody,
    RegisterViewBody,
    RemoveViewProperties,
    RenameBody,
    SetCurrentViewVersion,
    SetViewLocation,
    SetViewProperties,
    UpgradeViewFormatVersion,
    ViewUpdate,
)
from spark_lakeversion.formats.iceberg.codes import ICEBERG_VIEW
from spark_lakeversion.limits import check_key
from spark_lakeversion.model import Content, ContentType, Delete, Key, Put
from spark_lakeversion.tableformat.validate import check_claims, check_not_owned

#: `schema-id` / `view-version-id` -1 in an update: the one added earlier in the same change
LAST_ADDED = -1


@dataclass(frozen=True)
class LoadedView:
    """The spec's LoadViewResult: a view's metadata and where it is stored."""

    metadata: ViewMetadata
    metadata_location: str


class ViewChange:
    """View metadata being built from a base (None: a new view) by the spec's updates, with
    the reference implementation's id rules: an identical schema or version is reused,
    otherwise the next id is taken; -1 names the one added last in this change."""

    def __init__(self, key: Key, base: ViewMetadata | None) -> None:
        self.key = key
        self.uuid = base.view_uuid if base else None
        self.location = base.location if base else None
        self.schemas: list[Schema] = list(base.schemas) if base else []
        self.versions: list[ViewVersion] = list(base.versions) if base else []
        self.log: list[ViewHistoryEntry] = list(base.version_log) if base else []
        self.properties: dict[str, str] = dict(base.properties) if base else {}
        self.current: int | None = base.current_version_id if base else None
        self.last_schema: int | None = None
        self.last_version: int | None = None

    def fail(self, why: str) -> IcebergError:
        return bad_request(f"cannot apply the updates to view {self.key}: {why}")

    def add_schema(self, schema: Schema) -> int:
        same = next((s for s in self.schemas if s.fields == schema.fields
                     and s.identifier_field_ids == schema.identifier_field_ids), None)
        if same is not None:
            self.last_schema = same.schema_id
            return same.schema_id
        new_id = max((s.schema_id for s in self.schemas), default=-1) + 1
        self.schemas.append(schema.model_copy(update={"schema_id": new_id}))
        self.last_schema = new_id
        return new_id

    def add_version(self, version: ViewVersion) -> int:
        schema_id = version.schema_id
        if schema_id == LAST_ADDED:
            if self.last_schema is None:
                raise self.fail("a view version names schema -1 but no schema was added")
            schema_id = self.last_schema
        if not any(s.schema_id == schema_id for s in self.schemas):
            raise self.fail(f"a view version names schema {schema_id}, which does not exist")
        version = version.model_copy(update={"schema_id": schema_id})
        same = next((v for v in self.versions if _same_version(v, version)), None)
        if same is not None:
            self.last_version = same.version_id
            return same.version_id
        new_id = max((v.version_id for v in self.versions), default=0) + 1
        self.versions.append(version.model_copy(update={"version_id": new_id}))
        self.last_version = new_id
        return new_id

    def set_current(self, version_id: int) -> None:
        if version_id == LAST_ADDED:
            if self.last_version is None:
                raise self.fail("set-current-view-version -1 but no version was added")
            version_id = self.last_version
        version = next((v for v in self.versions if v.version_id == version_id), None)
        if version is None:
            raise self.fail(f"view version {version_id} does not exist")
        if version_id != self.current:
            self.current = version_id
            self.log.append(ViewHistoryEntry.model_validate(
                {"timestamp-ms": int(time.time() * 1000), "version-id": version_id}))

    def apply(self, update: ViewUpdate) -> None:
        if isinstance(update, AssignViewUUID):
            if self.uuid is not None and update.uuid != self.uuid:
                raise self.fail("a view's UUID cannot change")
            self.uuid = update.uuid
        elif isinstance(update, UpgradeViewFormatVersion):
            if update.format_version != 1:
                raise self.fail(f"view format version {update.format_version} is not "
                                "supported (only 1)")
        elif isinstance(update, AddViewSchema):
            self.add_schema(update.view_schema)
        elif isinstance(update, SetViewLocation):
            self.location = update.location.rstrip("/")
        elif isinstance(update, SetViewProperties):
            self.properties.update(update.updates)
        elif isinstance(update, RemoveViewProperties):
            for name in update.removals:
                self.properties.pop(name, None)
        elif isinstance(update, AddViewVersion):
            self.add_version(update.view_version)
        elif isinstance(update, SetCurrentViewVersion):
            self.set_current(update.view_version_id)

    def build(self) -> ViewMetadata:
        if self.current is None or not self.location or not self.uuid:
            raise self.fail("a view needs a location, a UUID and a current version")
        try:
            return ViewMetadata.model_validate({
                "view-uuid": self.uuid, "format-version": 1, "location": self.location,
                "schemas": self.schemas, "current-version-id": self.current,
                "versions": self.versions, "version-log": self.log,
                "properties": self.properties})
        except PYICEBERG_INPUT_ERRORS as exc:
            raise self.fail(str(exc)) from None


def _same_version(a: ViewVersion, b: ViewVersion) -> bool:
    """The reference rule for reusing a version: equal but for its id and timestamp."""
    return (a.schema_id == b.schema_id and a.summary == b.summary
            and a.representations == b.representations
            and a.default_catalog == b.default_catalog
            and tuple(a.default_namespace) == tuple(b.default_namespace))


class ViewService:
    """Iceberg views: contents of type `ICEBERG_VIEW` at their keys."""

    def __init__(self, ctx: CatalogContext, namespaces: NamespaceService) -> None:
        self.ctx = ctx
        self.namespaces = namespaces

    def _view(self, addr: Address, name: str) -> tuple[Key, Content | None]:
        key = addr.key(name)
        check_key(key, self.ctx.store.limits)
        content = self.ctx.store.get_content(addr.commit_id, key)
        if content is not None and content.type is not ICEBERG_VIEW:
            content = None
        return key, content

    def _require_free(self, addr: Address, key: Key) -> None:
        """A view and a table never share a key (nor a view a namespace)."""
        other = self.ctx.store.get_content(addr.commit_id, key)
        if other is None:
            return
        what = {ICEBERG_VIEW: "View", ContentType.NAMESPACE: "Namespace"}.get(
            other.type, "Table with same name")
        raise already_exists(f"{what} already exists: {key}."
                             + ref_sentence(addr.resolved.expression))

    def _check_view_location(self, key: Key, metadata: ViewMetadata) -> None:
        """Inside a root, and no other table or view owns it: before any write."""
        fmt_view.check_view_location(metadata, self.ctx.roots, f"view {key}")
        check_claims(self.ctx.store, f"view {key}", {"location": metadata.location},
                     str(metadata.view_uuid))

    def _load(self, content: Content) -> LoadedView:
        location = fmt_view.view_metadata_location(content)
        return LoadedView(fmt_view.read_view_metadata(location, self.ctx.io), location)

    # ---- reads -----------------------------------------------------------------------------
    def list_views(self, prefix: str | None, namespace: str) -> dict[str, Any]:
        return self.namespaces.list_names(prefix, namespace, ICEBERG_VIEW)

    def load_view(self, prefix: str | None, namespace: str, view: str) -> LoadedView:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        key, content = self._view(addr, view)
        if content is None:
            raise no_such_view(key, addr.resolved.expression)
        return self._load(content)

    def view_exists(self, prefix: str | None, namespace: str, view: str) -> bool:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        return self._view(addr, view)[1] is not None

    # ---- writes ----------------------------------------------------------------------------
    def create_view(self, prefix: str | None, namespace: str, req: CreateViewBody,
                    meta: CommitMeta) -> LoadedView:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        key = addr.new_key(req.name)
        if req.location:
            self.ctx.roots.check(req.location, f"view {key} location", strictly=True)
        check_key(key, self.ctx.store.limits)
        self._require_free(addr, key)
        addr.branch()
        namespace_content = self.namespaces.require(addr)
        view_uuid = uuid.uuid4()
        change = ViewChange(key, None)
        change.uuid = str(view_uuid)
        change.location = (req.location.rstrip("/") if req.location else
                           self.ctx.default_location(addr, namespace_content, req.name, view_uuid))
        change.properties = dict(req.properties)
        schema_id = change.add_schema(req.view_schema)
        change.set_current(change.add_version(
            req.view_version.model_copy(update={"schema_id": schema_id})))
        metadata = change.build()
        self._check_view_location(key, metadata)
        for attempt in range(CREATE_ATTEMPTS):
            # as for tables: a gc run starting between the write and the commit refuses
            # the file; it is the server's own, so write it again rather than answer 409
            location = fmt_view.write_view_metadata(metadata, None, self.ctx.io)
            try:
                self.ctx.commit(addr, [Put(key, fmt_view.view_content(metadata, location))], meta,
                                f"create view {key}",
                                {"iceberg.operation": "create-view", "iceberg.view": str(key)},
                                written=[location])
            except GcRefused:
                if attempt + 1 == CREATE_ATTEMPTS:
                    raise
                continue
            return LoadedView(metadata, location)
        raise AssertionError("unreachable")  # pragma: no cover

    def commit_view(self, prefix: str | None, namespace: str, view: str,
                    req: CommitViewBody, meta: CommitMeta) -> LoadedView:
        """Replace (or alter) a view: its requirements checked against the branch head,
        the updates applied, a new metadata file committed."""
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        addr.branch()
        key, content = self._view(addr, view)
        if content is None:
            raise no_such_view(key, addr.resolved.expression)
        loaded = self._load(content)
        base = loaded.metadata
        for requirement in req.requirements:
            if requirement.uuid != base.view_uuid:
                raise commit_failed(f"Requirement failed: view UUID does not match: expected "
                                    f"{requirement.uuid} != {base.view_uuid} ({key})")
        if not req.updates:
            return loaded
        change = ViewChange(key, base)
        for update in req.updates:
            change.apply(update)
        metadata = change.build()
        if metadata.location != base.location:
            self._check_view_location(key, metadata)
        location = fmt_view.write_view_metadata(metadata, loaded.metadata_location, self.ctx.io)
        self.ctx.commit(addr, [Put(key, fmt_view.view_content(metadata, location))], meta,
                        f"replace view {key} (version {metadata.current_version_id})",
                        {"iceberg.operation": "replace-view", "iceberg.view": str(key),
                         "iceberg.view-version-id": metadata.current_version_id},
                        written=[location])
        return LoadedView(metadata, location)

    def drop_view(self, prefix: str | None, namespace: str, view: str,
                  meta: CommitMeta) -> None:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        addr.branch()
        key, content = self._view(addr, view)
        if content is None:
            raise no_such_view(key, addr.resolved.expression)
        # files stay: other refs and retained commits may hold this view; gc decides
        self.ctx.commit(addr, [Delete(key)], meta, f"drop view {key}",
                        {"iceberg.operation": "drop-view", "iceberg.view": str(key)})

    def rename_view(self, prefix: str | None, req: RenameBody, meta: CommitMeta) -> None:
        src, dst = self.ctx.rename_addresses(prefix, req)
        src_key, content = self._view(src, req.source.name)
        if content is None:
            raise no_such_view(src_key, src.resolved.expression)
        dst_key = dst.new_key(req.destination.name)
        check_key(dst_key, self.ctx.store.limits)
        self._require_free(dst, dst_key)
        self.namespaces.require(dst)
        self.ctx.commit(src, [Delete(src_key), Put(dst_key, content)], meta,
                        f"rename view {src_key} to {dst_key}",
                        {"iceberg.operation": "rename-view", "iceberg.view": str(dst_key),
                         "iceberg.renamed-from": str(src_key)})

    def register_view(self, prefix: str | None, namespace: str, req: RegisterViewBody,
                      meta: CommitMeta) -> LoadedView:
        addr = self.ctx.address(prefix, split_namespace(namespace), table_op=True)
        key = addr.new_key(req.name)
        check_key(key, self.ctx.store.limits)
        addr.branch()
        self.namespaces.require(addr)
        self._require_free(addr, key)
        try:
            metadata = fmt_view.read_client_view_metadata(req.metadata_location, self.ctx.roots,
                                                          self.ctx.io)
            fmt_view.current_version(metadata)
        except InvalidInput:
            # one generic answer, so register-view cannot probe the server's file system
            raise bad_request(f"cannot register view {key}: the metadata location is not a "
                              "readable Iceberg view metadata file under the allowed "
                              f"locations ({self.ctx.roots.describe()})") from None
        self._check_view_location(key, metadata)
        check_not_owned(self.ctx.store, f"cannot register view {key}",
                        {"metadata file": req.metadata_location, "location": metadata.location})
        content = fmt_view.view_content(metadata, req.metadata_location)
        self.ctx.commit(addr, [Put(key, content)], meta, f"register view {key}",
                        {"iceberg.operation": "register-view", "iceberg.view": str(key)},
                        added=[(key, None, content)])
        return LoadedView(metadata, req.metadata_location)

