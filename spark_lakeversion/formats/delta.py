"""Delta tables, minimally: the server neither reads nor writes Delta files, so a Delta
`location` must only parse as a location (no root is required), and gc, which cannot follow
a `_delta_log` yet, keeps every file under it (the default `ProtectedLocations`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from spark_lakeversion.formats.base import TableFormat
from spark_lakeversion.locations import parse_location
from spark_lakeversion.store.model import Content, ContentType, Key

if TYPE_CHECKING:
    from spark_lakeversion.locations import AllowedRoots


class DeltaFormat(TableFormat):
    content_type = ContentType.DELTA_TABLE

    def validate(self, key: Key, content: Content, roots: AllowedRoots,
                 io_properties: Mapping[str, str]) -> Content:
        if "location" in content.fields:
            parse_location(content.fields["location"], f"Delta table {key} location")
        return content
