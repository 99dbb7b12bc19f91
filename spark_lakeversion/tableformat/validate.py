"""Content values a client hands us directly (`/api/v1/commits`), checked by their format.

The Iceberg REST catalog builds its contents itself; `/api/v1/commits` takes them as JSON,
so each `Put` is validated by its content type's `TableFormat` before the store sees it
(a content type no installed format knows is refused): the same file rules as the
Iceberg REST catalog's. Every location a table claims (`TableFormat.claimed_locations`:
its location, Iceberg's `write.*.path` directories, Delta's root) is then checked against
the store's location index by `check_claims`, the one overlap rule of every surface: it
may not equal, contain or lie inside another table's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from spark_lakeversion.errors import LocationNotAllowed
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.locations import OVERLAPS, AllowedRoots
from spark_lakeversion.model import Content, Key
from spark_lakeversion.tableformat.base import FORMATS


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


def check_claims(store: LocationIndex, what: str, claims: Mapping[str, str],
                 content_id: str | None) -> None:
    """The one overlap rule, for every surface (Iceberg REST creates, commits and views,
    `/api/v1/commits`, Delta): no location a content claims may equal, contain or lie
    inside one the store's index gives another id, on any ref. The refusal names only
    the caller's own input: which table owns the location is not the caller's to know."""
    for name, location in claims.items():
        if store.location_owner(location, content_id) is not None:
            raise LocationNotAllowed(f"{what} {name} {location!r} {OVERLAPS}: tables never "
                                     "share files; choose another location")


def check_not_owned(store: LocationIndex, what: str, claims: Mapping[str, str]) -> None:
    """Register (table or view): the metadata file and every location it claims lie where
    no table or view id owns files, on any ref, the file's own table included. A file the
    catalog owns is not registered again: its table reaches another branch by merge."""
    for name, location in claims.items():
        if store.location_owner(location, None) is not None:
            raise LocationNotAllowed(
                f"{what}: {name} {location!r} lies where a table or view of this catalog "
                "keeps its files; register is for files the catalog does not own yet (a "
                "table it owns reaches another branch by merge)")


def owned(store: LocationIndex, content: Content,
          io_properties: Mapping[str, str] | None = None) -> bool:
    """Whether a location the (validated) table state claims is one where some table or
    view id of the catalog, its own included, keeps files (on any ref)."""
    fmt = FORMATS.get(content.type)
    claims = fmt.claimed_locations(content, FileIOConfig.of(io_properties)) if fmt else \
        _location_only(content)
    return any(store.location_owner(location, None) is not None
               for location in claims.values())


def check_overlap(store: LocationIndex, key: Key, content: Content,
                  io_properties: Mapping[str, str] | None = None) -> None:
    """Every location a validated table's format says it claims (`claimed_locations`)
    overlaps no other table id's, on any ref."""
    if not content.is_table:
        return
    fmt = FORMATS.get(content.type)
    claims = fmt.claimed_locations(content, FileIOConfig.of(io_properties)) if fmt else \
        _location_only(content)
    check_claims(store, f"table {key}", claims, content.id)


def _location_only(content: Content) -> dict[str, str]:
    location = content.fields.get("location")
    return {"location": location} if isinstance(location, str) else {}
