"""Iceberg tables in the version store: content values, metadata files and their files.

The store keeps, per ref, only a pointer to an Iceberg metadata file (plus a few ids the
merge engine compares cheaply); everything else lives in the metadata file, written with
pyiceberg's own serializers so the files are exactly what any Iceberg client expects.
Metadata files are immutable, so parsed metadata is cached by location.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping

from pyiceberg.serializers import FromInputFile
from pyiceberg.table.metadata import TableMetadata

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg import files as iceberg_files
from spark_lakeversion.formats.iceberg import v3
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.model import Content, ContentType

_METADATA_FILE = re.compile(r"^(\d+)-[0-9a-fA-F-]+\.metadata\.json$")


def iceberg_content(metadata: TableMetadata, metadata_location: str) -> Content:
    """The store value of a table whose current metadata file is `metadata_location`.

    `location` (the table's directory) is a generic content field the store indexes to keep
    two tables from sharing files (`VersionStore.location_owner`)."""
    return Content(
        ICEBERG_TABLE,
        id=str(metadata.table_uuid),
        fields={
            "metadata_location": metadata_location,
            "snapshot_id": metadata.current_snapshot_id,
            "schema_id": metadata.current_schema_id,
            "spec_id": metadata.default_spec_id,
            "sort_order_id": metadata.default_sort_order_id,
            "location": metadata.location,
        },
    )


def namespace_content(properties: Mapping[str, str] | None = None,
                      content_id: str | None = None) -> Content:
    """A namespace value; a fresh id unless an existing namespace is being updated."""
    return Content(ContentType.NAMESPACE, id=content_id or str(uuid.uuid4()),
                   fields={"properties": dict(properties or {})})


def namespace_properties(content: Content) -> dict[str, str]:
    props = content.fields.get("properties") or {}
    return {str(k): str(v) for k, v in props.items()}


def metadata_location_of(content: Content) -> str:
    if content.type is not ICEBERG_TABLE:
        raise InvalidInput(f"content {content.id} is a {content.type.value}, not an Iceberg table")
    location = content.fields.get("metadata_location")
    if not isinstance(location, str) or not location:
        raise InvalidInput(f"Iceberg content {content.id} has no metadata_location")
    return location


class _MetadataCache:
    """Parsed metadata (and its JSON once asked for) by file location; safe because
    metadata files never change."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._items: OrderedDict[str, TableMetadata] = OrderedDict()
        self._json: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, location: str) -> TableMetadata | None:
        with self._lock:
            value = self._items.get(location)
            if value is not None:
                self._items.move_to_end(location)
            return value

    def put(self, location: str, metadata: TableMetadata) -> None:
        with self._lock:
            self._items[location] = metadata
            self._items.move_to_end(location)
            while len(self._items) > self._size:
                evicted, _ = self._items.popitem(last=False)
                self._json.pop(evicted, None)

    def json(self, location: str, metadata: TableMetadata,
             render: Callable[[TableMetadata], str]) -> str:
        with self._lock:
            text = self._json.get(location)
        if text is None:
            text = render(metadata)
            with self._lock:
                if location in self._items:
                    self._json[location] = text
        return text


_CACHE = _MetadataCache()


def read_metadata(metadata_location: str, io_properties: Mapping[str, str] | None = None
                  ) -> TableMetadata:
    """Parse a metadata file (cached) with the server's FileIO properties; a missing file
    raises FileNotFoundError/OSError."""
    cached = _CACHE.get(metadata_location)
    if cached is not None:
        return cached
    io = iceberg_files.file_io(metadata_location, io_properties)
    metadata = FromInputFile.table_metadata(io.new_input(metadata_location))
    _CACHE.put(metadata_location, metadata)
    return metadata


#: what the server tells every client about a table, whatever its metadata file says: every
#: ref shares the table's files, so a client's own clean-up (Spark's DROP ... PURGE,
#: expire_snapshots, remove_orphan_files) must refuse; only `lakeversion gc` deletes files
SERVED_PROPERTIES = {"gc.enabled": "false"}


def served_metadata_json(metadata: TableMetadata, metadata_location: str | None) -> str:
    """pyiceberg's JSON of `metadata` as clients see it (with `SERVED_PROPERTIES`),
    serialised once per metadata file."""
    def render(m: TableMetadata) -> str:
        if all(m.properties.get(k) == v for k, v in SERVED_PROPERTIES.items()):
            return v3.metadata_json(m)
        return v3.metadata_json(
            m.model_copy(update={"properties": {**m.properties, **SERVED_PROPERTIES}}))

    if metadata_location is None:
        return render(metadata)
    return _CACHE.json(metadata_location, metadata, render)


def metadata_version(metadata_location: str | None) -> int:
    """The `NNNNN-` version of a metadata file name, -1 when absent or non-standard."""
    if not metadata_location:
        return -1
    match = _METADATA_FILE.match(metadata_location.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else -1


def new_metadata_location(metadata: TableMetadata, previous_location: str | None) -> str:
    """Where the next metadata file goes: under the table's metadata path, uuid-named (no
    clashes between branches writing the same table concurrently)."""
    return iceberg_files.new_metadata_path(metadata, metadata_version(previous_location) + 1)


def check_location(location: str, what: str = "table location") -> str:
    """`location` if it is absolute (`scheme://...` or `/...`): a relative one would resolve
    against the server's working directory."""
    if not location or ("://" not in location and not location.startswith("/")):
        raise InvalidInput(f"{what} {location!r} must be an absolute URI (file:///..., "
                           "s3://...) or an absolute path")
    return location


def write_metadata(metadata: TableMetadata, previous_location: str | None = None,
                   io_properties: Mapping[str, str] | None = None) -> str:
    """Write `metadata` as a new metadata file, create-exclusive, and return its location.

    The caller has checked the metadata's locations (`iceberg_files.validate_metadata`); a
    location that cannot be written (unreachable, no permission, a file in the way) is
    InvalidInput. Nothing is left behind, and no file this call did not create is touched:
    an existing file at the computed path makes the write fail, never get replaced or
    deleted."""
    check_location(metadata.location)
    location = None
    try:
        location = new_metadata_location(metadata, previous_location)
        iceberg_files.write_new_file(location, iceberg_files.metadata_bytes(metadata),
                                     io_properties)
    except (OSError, ValueError) as exc:
        why = "a file already exists there" if isinstance(exc, FileExistsError) else str(exc)
        raise InvalidInput(
            f"cannot write table metadata under {metadata.location!r}: {why}") from None
    _CACHE.put(location, metadata)
    return location

