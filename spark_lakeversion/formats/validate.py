"""Content values a client hands us directly (`/api/v1/commits`), checked by their format.

The Iceberg REST catalog builds its contents itself; `/api/v1/commits` takes them as JSON,
so each `Put` is validated by its content type's `TableFormat` before the store sees it
(a content type no installed format knows is refused). Every table location is then
checked against the store's location index: it may not equal, contain or lie inside
another table's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from spark_lakeversion.errors import LocationNotAllowed
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.base import FORMATS
from spark_lakeversion.locations import OVERLAPS, AllowedRoots
from spark_lakeversion.store.model import Content, Key


class LocationIndex(Protocol):
    """What the overlap check asks of a store (`VersionStore.location_owner`); formats sit
    below the version-control layer and never import it."""

    def location_owner(self, location: str, content_id: str | None = None
                       ) -> tuple[str, str] | None: ...


def validate_content(key: Key, content: Content, roots: AllowedRoots,
                     io_properties: Mapping[str, str] | None = None) -> Content:
    """`content` as its format completes it (Iceberg: `location` filled in), or
    `InvalidInput`; files are read with the server's FileIO properties."""
    return FORMATS.require(content.type).validate(key, content, roots,
                                                  FileIOConfig.of(io_properties))


def check_overlap(store: LocationIndex, key: Key, content: Content) -> None:
    """A table's `location` may not overlap another table id's, on any ref."""
    if not content.is_table:
        return
    location = content.fields.get("location")
    if not isinstance(location, str):
        return
    owner = store.location_owner(location, content.id)
    if owner is not None:
        raise LocationNotAllowed(f"table {key} location {location!r} {OVERLAPS} (table id "
                                 f"{owner[0]} at {owner[1]}): tables never share files")
