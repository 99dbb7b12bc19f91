"""Config and namespace operations of the Iceberg catalog, and the namespace lookups the
table and view services share.

As in Iceberg's reference (JDBC) catalog: a namespace exists if it was created or if
anything is stored under it; listings show such implicit parents; a namespace with anything
under it is never dropped.
"""

from __future__ import annotations

from typing import Any

from spark_lakeversion.errors import Forbidden, LakeVersionError
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg.catalog.addressing import (
    Address,
    encode_prefix,
    split_namespace,
)
from spark_lakeversion.formats.iceberg.catalog.context import CatalogContext
from spark_lakeversion.formats.iceberg.catalog.errors import (
    IcebergError,
    already_exists,
    bad_request,
    namespace_already_exists,
    namespace_not_empty,
    namespace_not_found,
    ref_sentence,
)
from spark_lakeversion.formats.iceberg.catalog.meta import CommitMeta
from spark_lakeversion.formats.iceberg.catalog.requests import (
    CreateNamespaceBody,
    UpdateNamespaceBody,
)
from spark_lakeversion.model import Content, ContentType, Delete, Key, Put
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH
from spark_lakeversion.versioning.names import parse_ref_expression


class NamespaceService:
    """Namespaces are contents of their own type at the namespace's key."""

    def __init__(self, ctx: CatalogContext) -> None:
        self.ctx = ctx

    # ---- config ------------------------------------------------------------------------
    def config_prefix(self, warehouse: str | None) -> str:
        """The URL prefix `/v1/config?warehouse=REF` hands out for a ref expression."""
        expression = warehouse or DEFAULT_BRANCH
        try:
            parsed = parse_ref_expression(expression)
            resolved = self.ctx.store.resolve(expression)
        except Forbidden:
            raise  # a grant refused it: 403, not a bad warehouse
        except LakeVersionError as exc:
            raise bad_request(
                f"warehouse {expression!r} must name a ref of this catalog (branch, tag, commit, "
                f"ref~N, ref@{{N}} or ref#timestamp): {exc.message}") from None
        if parsed.drifts:  # `main~2`, `main@{1}` would drift as main moves: pin it
            expression = resolved.commit_id
        return encode_prefix(expression)

    # ---- namespaces --------------------------------------------------------------------
    def list_namespaces(self, prefix: str | None, parent: str | None) -> dict[str, Any]:
        parent_ns = split_namespace(parent) if parent else ()
        addr = self.ctx.address(prefix, parent_ns)
        if parent_ns:
            self.require(addr)
            entries = self.children(addr)
        else:
            entries = self.ctx.store.list_keys(addr.commit_id)
        depth = len(addr.namespace) + 1
        found: dict[tuple[str, ...], None] = {}
        for key, content in entries:
            if len(key.elements) > depth or content.type is ContentType.NAMESPACE:
                found[key.elements[:depth]] = None  # created, or the parent of something
        return {"namespaces": [list(addr.echo + ns[len(addr.namespace):]) for ns in found],
                "next-page-token": None}

    def create_namespace(self, prefix: str | None, req: CreateNamespaceBody,
                         meta: CommitMeta) -> dict[str, Any]:
        addr = self.ctx.address(prefix, split_namespace(req.namespace))
        addr.new_key()
        self._check_namespace_location(req.properties)
        ns = ".".join(addr.namespace)
        if self.find(addr) is not None:
            raise namespace_already_exists(ns, addr.resolved.expression)
        if self.ctx.store.get_content(addr.commit_id, addr.key()) is not None:
            raise already_exists(f"{ns} exists and is not a namespace."
                                 + ref_sentence(addr.resolved.expression))
        content = fmt.namespace_content(req.properties)
        self.ctx.commit(addr, [Put(addr.key(), content)], meta, f"create namespace {ns}",
                        {"iceberg.operation": "create-namespace", "iceberg.namespace": ns})
        return {"namespace": list(addr.echo), "properties": req.properties}

    def load_namespace(self, prefix: str | None, namespace: str) -> dict[str, Any]:
        addr = self.ctx.address(prefix, split_namespace(namespace))
        content = self.require(addr)
        return {"namespace": list(addr.echo), "properties": fmt.namespace_properties(content)}

    def namespace_exists(self, prefix: str | None, namespace: str) -> bool:
        addr = self.ctx.address(prefix, split_namespace(namespace))
        return self.find(addr) is not None

    def drop_namespace(self, prefix: str | None, namespace: str, meta: CommitMeta) -> None:
        addr = self.ctx.address(prefix, split_namespace(namespace))
        self.require(addr)
        ns = ".".join(addr.namespace)
        children = self.children(addr)
        if children:
            namespaces = {k.elements[:len(addr.namespace) + 1] for k, c in children
                          if len(k.elements) > len(addr.namespace) + 1
                          or c.type is ContentType.NAMESPACE}
            tables = sum(1 for k, c in children if len(k.elements) == len(addr.namespace) + 1
                         and c.type is not ContentType.NAMESPACE)
            raise namespace_not_empty(ns, addr.resolved.expression, tables, len(namespaces))
        self.ctx.commit(addr, [Delete(addr.key())], meta, f"drop namespace {ns}",
                        {"iceberg.operation": "drop-namespace", "iceberg.namespace": ns})

    def update_namespace(self, prefix: str | None, namespace: str, req: UpdateNamespaceBody,
                         meta: CommitMeta) -> dict[str, Any]:
        overlap = set(req.removals) & set(req.updates)
        if overlap:
            raise IcebergError(422, "UnprocessableEntityException",
                               f"properties both updated and removed: {sorted(overlap)}")
        addr = self.ctx.address(prefix, split_namespace(namespace))
        content = self.require(addr)
        if self.stored(addr) is None:
            addr.new_key()  # an implicit namespace: setting properties stores it
        props = fmt.namespace_properties(content)
        removed = [k for k in req.removals if k in props]
        missing = [k for k in req.removals if k not in props]
        for k in removed:
            del props[k]
        props.update(req.updates)
        self._check_namespace_location(req.updates)
        ns = ".".join(addr.namespace)
        if removed or req.updates:
            self.ctx.commit(addr, [Put(addr.key(), fmt.namespace_content(props, content.id))], meta,
                            f"update properties of namespace {ns}",
                            {"iceberg.operation": "update-namespace", "iceberg.namespace": ns})
        return {"updated": sorted(req.updates), "removed": removed, "missing": missing}

    def _check_namespace_location(self, properties: dict[str, str]) -> None:
        """A namespace `location` is where its tables go by default: under a root."""
        if "location" in properties:
            self.ctx.roots.check(properties["location"], "namespace location")

    # ---- lookups the table and view services share ---------------------------------------
    def stored(self, addr: Address) -> Content | None:
        """The namespace created at this key (its properties), None if it was not created."""
        if not addr.namespace:
            return None
        content = self.ctx.store.get_content(addr.commit_id, addr.key())
        return content if content is not None and content.type is ContentType.NAMESPACE else None

    def children(self, addr: Address) -> list[tuple[Key, Content]]:
        """Everything stored under the namespace, at any depth (matched by key range: `_` and
        `%` are plain characters)."""
        return self.ctx.store.list_keys(addr.commit_id, addr.key())

    def find(self, addr: Address) -> Content | None:
        """The namespace as Iceberg's reference catalog has it: it exists if it was created
        or if anything is stored under it (then without properties: a fresh value, not yet
        stored, which setting properties stores)."""
        content = self.stored(addr)
        if content is not None or not addr.namespace:
            return content
        return fmt.namespace_content({}) if self.children(addr) else None

    def require(self, addr: Address) -> Content:
        """The namespace, or `NoSuchNamespaceException`."""
        content = self.find(addr)
        if content is None:
            raise namespace_not_found(".".join(addr.namespace), addr.resolved.expression)
        return content

    def list_names(self, prefix: str | None, namespace: str,
                   content_type: ContentType | tuple[ContentType, ...]) -> dict[str, Any]:
        """The identifiers of one namespace's direct children of `content_type` (tables
        or views); an absent namespace is `NoSuchNamespaceException`."""
        addr = self.ctx.address(prefix, split_namespace(namespace))
        entries = self.ctx.store.list_keys(addr.commit_id, addr.key())
        depth = len(addr.namespace) + 1
        types = content_type if isinstance(content_type, tuple) else (content_type,)
        names = [key.name for key, content in entries
                 if content.type in types and len(key.elements) == depth]
        if not names:
            self.require(addr)
        return {"identifiers": [{"namespace": list(addr.echo), "name": n} for n in names],
                "next-page-token": None}
