"""Content values a client hands us directly (`/api/v1/commits`), checked by their format.

The Iceberg REST catalog builds its contents itself; `/api/v1/commits` takes them as JSON,
so each `Put` is validated here before the store sees it:

- Iceberg: `metadata_location` is a regular file under an allowed root and parses as table
  metadata whose UUID is the content id; the metadata's locations pass
  `iceberg_files.validate_metadata`; the content's `location` field, the store's index of
  who owns which directory, is the metadata's location (filled in when absent);
- namespace: a `location` property lies under a root;
- Delta: `location` parses as a location (the server neither reads nor writes Delta files,
  and gc never deletes under them, so no root is required).

Every table location is then checked against the store's location index: it may not
equal, contain or lie inside another table's.
"""

from __future__ import annotations

from spark_lakeversion.errors import InvalidInput, LocationNotAllowed
from spark_lakeversion.formats import iceberg_files
from spark_lakeversion.locations import OVERLAPS, AllowedRoots, parse_location
from spark_lakeversion.store.model import Content, ContentType, Key
from spark_lakeversion.versioning.interface import VersionStore


def validate_content(key: Key, content: Content, roots: AllowedRoots) -> Content:
    """`content` (Iceberg: with its `location` field filled in) or `InvalidInput`."""
    if content.type is ContentType.NAMESPACE:
        props = content.fields.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidInput(f"put {key}: namespace properties must be an object")
        if "location" in props:
            roots.check(props["location"], f"namespace {key} location")
        return content
    if content.type is ContentType.DELTA_TABLE:
        if "location" in content.fields:
            parse_location(content.fields["location"], f"Delta table {key} location")
        return content
    metadata_location = content.fields.get("metadata_location")
    if not isinstance(metadata_location, str) or not metadata_location:
        raise InvalidInput(f"put {key}: an Iceberg content needs a metadata_location")
    try:
        metadata = iceberg_files.read_client_metadata(metadata_location, roots)
    except iceberg_files.UnreadableFile:
        raise InvalidInput(f"put {key}: metadata_location is {iceberg_files.UNREADABLE} "
                           f"({roots.describe()})") from None
    if str(metadata.table_uuid) != content.id:
        raise InvalidInput(f"put {key}: content id {content.id!r} is not the table UUID "
                           f"{metadata.table_uuid} of its metadata file")
    iceberg_files.validate_metadata(metadata, roots, what=f"table {key}",
                                    read_current_only=True)
    given = content.fields.get("location")
    if given is not None and given != metadata.location:
        raise InvalidInput(f"put {key}: location {given!r} is not the table location "
                           f"{metadata.location!r} of its metadata file")
    return content if given is not None else content.with_fields(location=metadata.location)


def check_overlap(store: VersionStore, key: Key, content: Content) -> None:
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
