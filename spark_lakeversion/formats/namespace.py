"""Namespaces as a content type: their only client-set location is checked against the
roots; gc has nothing to follow in them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import Content, ContentType, Key
from spark_lakeversion.tableformat.base import TableFormat

if TYPE_CHECKING:
    from spark_lakeversion.locations import AllowedRoots


class NamespaceFormat(TableFormat):
    content_type = ContentType.NAMESPACE

    def validate(self, key: Key, content: Content, roots: AllowedRoots,
                 io_properties: Mapping[str, str]) -> Content:
        """A `location` property, if any, lies under a root."""
        props = content.fields.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidInput(f"put {key}: namespace properties must be an object")
        if "location" in props:
            roots.check(props["location"], f"namespace {key} location")
        return content
