"""Small content builders for the version-store suite."""

from __future__ import annotations

from collections.abc import Mapping

from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.locations import AllowedRoots, parse_location
from spark_lakeversion.model import Content, ContentType, Key
from spark_lakeversion.tableformat.base import TableFormat


class PlainTables(TableFormat):
    """Stands in for the Delta format in this suite: table states with no files behind
    them, a location that must parse, no content merger (the table-level rule applies)."""

    content_type = DELTA_TABLE

    def validate(self, key: Key, content: Content, roots: AllowedRoots,
                 io_properties: Mapping[str, str]) -> Content:
        if "location" in content.fields:
            parse_location(content.fields["location"], f"table {key} location")
        return content


def table(table_id: str, version: str) -> Content:
    """A table state for table-level semantics (`PlainTables`: no content merger)."""
    return Content(DELTA_TABLE, table_id,
                   {"location": f"file:///wh/{table_id}", "version": version})


def namespace(properties: dict[str, str] | None = None) -> Content:
    return Content(ContentType.NAMESPACE, "ns", {"properties": properties or {}})
