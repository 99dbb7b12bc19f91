"""Config and namespace operations of the Iceberg REST catalog."""

from __future__ import annotations

from typing import Any

from spark_lakeversion.errors import Forbidden, LakeVersionError
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.model import ContentType, Delete, Put
from spark_lakeversion.server.errors import (
    IcebergError,
    already_exists,
    bad_request,
    namespace_already_exists,
    namespace_not_empty,
    ref_sentence,
)
from spark_lakeversion.server.headers import CommitMeta
from spark_lakeversion.server.iceberg.addressing import encode_prefix, split_namespace
from spark_lakeversion.server.iceberg.base import CatalogBase
from spark_lakeversion.server.iceberg.requests import (
    CreateNamespaceBody,
    UpdateNamespaceBody,
    parse,
)
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH
from spark_lakeversion.versioning.names import parse_ref_expression


class NamespaceCatalog(CatalogBase):
    """Namespaces are contents of their own type at the namespace's key."""

    # ---- config ------------------------------------------------------------------------
    def config_prefix(self, warehouse: str | None) -> str:
        """The URL prefix `/v1/config?warehouse=REF` hands out for a ref expression."""
        expression = warehouse or DEFAULT_BRANCH
        try:
            parsed = parse_ref_expression(expression)
            resolved = self.store.resolve(expression)
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
    # As in Iceberg's reference (JDBC) catalog: a namespace exists if it was created or if
    # anything is stored under it; listings show such implicit parents; a namespace with
    # anything under it is never dropped.
    def list_namespaces(self, prefix: str | None, parent: str | None) -> dict[str, Any]:
        parent_ns = split_namespace(parent) if parent else ()
        addr = self.address(prefix, parent_ns)
        if parent_ns:
            self._require_namespace(addr)
            entries = self._children(addr)
        else:
            entries = self.store.list_keys(addr.commit_id)
        depth = len(addr.namespace) + 1
        found: dict[tuple[str, ...], None] = {}
        for key, content in entries:
            if len(key.elements) > depth or content.type is ContentType.NAMESPACE:
                found[key.elements[:depth]] = None  # created, or the parent of something
        return {"namespaces": [list(addr.echo + ns[len(addr.namespace):]) for ns in found],
                "next-page-token": None}

    def create_namespace(self, prefix: str | None, body: Any, meta: CommitMeta) -> dict[str, Any]:
        req: CreateNamespaceBody = parse(CreateNamespaceBody, body)
        addr = self.address(prefix, split_namespace(req.namespace))
        addr.new_key()
        self._check_namespace_location(req.properties)
        ns = ".".join(addr.namespace)
        if self._namespace_or_implicit(addr) is not None:
            raise namespace_already_exists(ns, addr.resolved.expression)
        if self.store.get_content(addr.commit_id, addr.key()) is not None:
            raise already_exists(f"{ns} exists and is not a namespace."
                                 + ref_sentence(addr.resolved.expression))
        content = fmt.namespace_content(req.properties)
        self._commit(addr, [Put(addr.key(), content)], meta, f"create namespace {ns}",
                     {"iceberg.operation": "create-namespace", "iceberg.namespace": ns})
        return {"namespace": list(addr.echo), "properties": req.properties}

    def load_namespace(self, prefix: str | None, namespace: str) -> dict[str, Any]:
        addr = self.address(prefix, split_namespace(namespace))
        content = self._require_namespace(addr)
        return {"namespace": list(addr.echo), "properties": fmt.namespace_properties(content)}

    def namespace_exists(self, prefix: str | None, namespace: str) -> bool:
        addr = self.address(prefix, split_namespace(namespace))
        return self._namespace_or_implicit(addr) is not None

    def drop_namespace(self, prefix: str | None, namespace: str, meta: CommitMeta) -> None:
        addr = self.address(prefix, split_namespace(namespace))
        self._require_namespace(addr)
        ns = ".".join(addr.namespace)
        children = self._children(addr)
        if children:
            namespaces = {k.elements[:len(addr.namespace) + 1] for k, c in children
                          if len(k.elements) > len(addr.namespace) + 1
                          or c.type is ContentType.NAMESPACE}
            tables = sum(1 for k, c in children if len(k.elements) == len(addr.namespace) + 1
                         and c.type is not ContentType.NAMESPACE)
            raise namespace_not_empty(ns, addr.resolved.expression, tables, len(namespaces))
        self._commit(addr, [Delete(addr.key())], meta, f"drop namespace {ns}",
                     {"iceberg.operation": "drop-namespace", "iceberg.namespace": ns})

    def update_namespace(self, prefix: str | None, namespace: str, body: Any,
                         meta: CommitMeta) -> dict[str, Any]:
        req: UpdateNamespaceBody = parse(UpdateNamespaceBody, body)
        overlap = set(req.removals) & set(req.updates)
        if overlap:
            raise IcebergError(422, "UnprocessableEntityException",
                               f"properties both updated and removed: {sorted(overlap)}")
        addr = self.address(prefix, split_namespace(namespace))
        content = self._require_namespace(addr)
        if self._namespace(addr) is None:
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
            self._commit(addr, [Put(addr.key(), fmt.namespace_content(props, content.id))], meta,
                         f"update properties of namespace {ns}",
                         {"iceberg.operation": "update-namespace", "iceberg.namespace": ns})
        return {"updated": sorted(req.updates), "removed": removed, "missing": missing}

    def _check_namespace_location(self, properties: dict[str, str]) -> None:
        """A namespace `location` is where its tables go by default: under a root."""
        if "location" in properties:
            self.roots.check(properties["location"], "namespace location")
