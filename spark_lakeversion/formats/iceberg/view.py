"""Iceberg views as a content type, versioned on refs exactly like tables.

The store keeps, per ref, a pointer to a view metadata file (Iceberg's view spec, format
version 1) plus the current version id and the view's location; the metadata file holds the
SQL, schemas and version history. Files are written create-exclusive under the view's
location, which the server builds (`locations.table_location`) or checks against the
allowed roots, as for tables. A view reaches no other file: gc keeps every metadata file a
retained view state points at and may collect the rest under the view's location.

Merging: one side changed a view -> the three-way rule takes it (fast-forward at view
level); both sides changed it -> the same definition on both sides merges, different ones
are a conflict (`ViewMerger`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.iceberg.codes import ICEBERG_VIEW
from spark_lakeversion.locations import AllowedRoots, Location, normalize_path, parse_location
from spark_lakeversion.model import Conflict, ConflictType, Content, Key
from spark_lakeversion.tableformat.base import StateFiles, TableFormat
from spark_lakeversion.tableformat.merger import ContentMergePlan, ContentMerger, MergeContext

if TYPE_CHECKING:
    from pyiceberg.view.metadata import ViewMetadata, ViewVersion


# ---- content values and metadata files ---------------------------------------------------
def view_content(metadata: ViewMetadata, metadata_location: str) -> Content:
    """The store value of a view whose current metadata file is `metadata_location`; the
    id is the view UUID (it survives replaces and renames, not a drop and re-create)."""
    return Content(ICEBERG_VIEW, id=str(metadata.view_uuid), fields={
        "metadata_location": metadata_location,
        "version_id": metadata.current_version_id,
        "location": metadata.location,
    })


def view_metadata_location(content: Content) -> str:
    if content.type is not ICEBERG_VIEW:
        raise InvalidInput(f"content {content.id} is a {content.type.value}, not an Iceberg "
                           "view")
    location = content.fields.get("metadata_location")
    if not isinstance(location, str) or not location:
        raise InvalidInput(f"Iceberg view {content.id} has no metadata_location")
    return location


def parse_view_metadata(data: bytes) -> ViewMetadata:
    from pyiceberg.view.metadata import ViewMetadata

    return ViewMetadata.model_validate_json(data)


def read_view_metadata(metadata_location: str,
                       io_properties: Mapping[str, str] | None = None) -> ViewMetadata:
    """A view metadata file the store points at, read with the server's FileIO properties
    (cached: metadata files never change)."""
    return _read_view_metadata(metadata_location, FileIOConfig.of(io_properties))


@functools.lru_cache(maxsize=256)
def _read_view_metadata(metadata_location: str, io: FileIOConfig) -> ViewMetadata:
    from spark_lakeversion.formats.iceberg.files import file_io

    with file_io(metadata_location, io).new_input(metadata_location).open() as stream:
        return parse_view_metadata(stream.read())


def read_client_view_metadata(location: str, roots: AllowedRoots,
                              io_properties: Mapping[str, str] | None = None) -> ViewMetadata:
    """View metadata from a client-named file (`register-view`, `/api/v1/commits`): only a
    regular file under a root, bounded in size and time; one generic error otherwise."""
    from spark_lakeversion.formats.iceberg import files

    data = files.read_client_file(location, roots, io_properties=io_properties)
    try:
        return parse_view_metadata(data)
    except Exception:  # noqa: BLE001 - never quote a file's contents back to a client
        raise files.UnreadableFile(files.UNREADABLE.replace("Iceberg metadata",
                                                            "Iceberg view metadata")) from None


def check_view_location(metadata: ViewMetadata, roots: AllowedRoots, what: str) -> Location:
    """The view location lies inside (not at) a root: its metadata files go there."""
    return roots.check(metadata.location, f"{what} location", strictly=True)


def current_version(metadata: ViewMetadata) -> ViewVersion:
    for version in metadata.versions:
        if version.version_id == metadata.current_version_id:
            return version
    raise InvalidInput(f"view metadata names current version {metadata.current_version_id}, "
                       "which it does not hold")


def metadata_file_version(metadata_location: str | None) -> int:
    from spark_lakeversion.formats.iceberg.content import metadata_version

    return metadata_version(metadata_location)


def write_view_metadata(metadata: ViewMetadata, previous_location: str | None = None,
                        io_properties: Mapping[str, str] | None = None) -> str:
    """Write `metadata` as a new file `<location>/metadata/NNNNN-<uuid>.metadata.json`,
    create-exclusive, and return its location. The caller checked the location against
    the roots; a location that cannot be written is InvalidInput and leaves nothing."""
    from spark_lakeversion.formats.iceberg import files

    base = parse_location(metadata.location, "view location")
    name = f"{max(metadata_file_version(previous_location) + 1, 0):05d}-{uuid.uuid4()}" \
           ".metadata.json"
    location = base.child("metadata", name).uri
    try:
        files.write_new_file(location, metadata.model_dump_json().encode("utf-8"),
                             io_properties)
    except (OSError, ValueError) as exc:
        why = "a file already exists there" if isinstance(exc, FileExistsError) else str(exc)
        raise InvalidInput(
            f"cannot write view metadata under {metadata.location!r}: {why}") from None
    return location


def same_definition(a: ViewMetadata, b: ViewMetadata) -> bool:
    """Whether two view states define the same view: current SQL representations, default
    catalog and namespace, schema fields and properties (ids and timestamps aside)."""
    va, vb = current_version(a), current_version(b)

    def schema(m: ViewMetadata, v: ViewVersion) -> Any:
        found = next((s for s in m.schemas if s.schema_id == v.schema_id), None)
        return found.fields if found is not None else None

    return (va.representations == vb.representations
            and va.default_catalog == vb.default_catalog
            and tuple(va.default_namespace) == tuple(vb.default_namespace)
            and schema(a, va) == schema(b, vb)
            and a.properties == b.properties)


# ---- the plugin ----------------------------------------------------------------------------
class IcebergViewFormat(TableFormat):
    content_type = ICEBERG_VIEW

    def validate(self, key: Key, content: Content, roots: AllowedRoots,
                 io_properties: Mapping[str, str]) -> Content:
        """`metadata_location` is a regular file under a root holding view metadata whose
        UUID is the content id and whose location lies inside a root; `location` and
        `version_id` are the metadata's (filled in when absent)."""
        from spark_lakeversion.formats.iceberg import files

        metadata_location = content.fields.get("metadata_location")
        if not isinstance(metadata_location, str) or not metadata_location:
            raise InvalidInput(f"put {key}: an Iceberg view content needs a metadata_location")
        try:
            metadata = read_client_view_metadata(metadata_location, roots, io_properties)
        except files.UnreadableFile:
            raise InvalidInput(f"put {key}: metadata_location is not a readable Iceberg view "
                               f"metadata file under the allowed locations "
                               f"({roots.describe()})") from None
        if str(metadata.view_uuid) != content.id:
            raise InvalidInput(f"put {key}: content id {content.id!r} is not the view UUID "
                               f"{metadata.view_uuid} of its metadata file")
        check_view_location(metadata, roots, f"view {key}")
        current_version(metadata)
        expected = view_content(metadata, metadata_location).fields
        for field_name in ("location", "version_id"):
            given = content.fields.get(field_name)
            if given is not None and given != expected[field_name]:
                raise InvalidInput(f"put {key}: {field_name} {given!r} is not the "
                                   f"{expected[field_name]!r} of its metadata file")
        return content.with_fields(location=expected["location"],
                                   version_id=expected["version_id"])

    def merger(self) -> ContentMerger:
        return ViewMerger()

    def state_files(self, reachable: set[str], roots: AllowedRoots | None,
                    io_properties: Mapping[str, str]) -> StateFiles:
        return ViewStateFiles(reachable, roots)


class ViewMerger(ContentMerger):
    """A view changed on both sides: equal definitions merge (the target's file is kept),
    different ones conflict. Nothing is ever written."""

    content_type = ICEBERG_VIEW

    def plan(self, key: Key, base: Content, target: Content, source: Content,
             context: MergeContext) -> ContentMergePlan:
        ours = read_view_metadata(view_metadata_location(target), context.io_properties)
        theirs = read_view_metadata(view_metadata_location(source), context.io_properties)
        conflicts = []
        if not same_definition(ours, theirs):
            conflicts.append(Conflict(
                ConflictType.VALUE_DIFFERS, key,
                f"view {key} was changed on both sides to different versions (target "
                f"{context.target}: version {ours.current_version_id} {_shown(ours)}, source "
                f"{context.source}: version {theirs.current_version_id} {_shown(theirs)}); "
                f"pick one with behaviors {{'{key}': 'source-wins'}} or 'target-wins'",
                {"target_version": ours.current_version_id,
                 "source_version": theirs.current_version_id}))
        return _ViewPlan(key, target, conflicts)


def _shown(metadata: ViewMetadata) -> str:
    """The current SQL of a view, short, for a conflict message."""
    representations = current_version(metadata).representations
    sql = " ".join(str(representations[0].root.sql).split()) if representations else ""
    return repr(sql if len(sql) <= 60 else sql[:57] + "...")


class _ViewPlan(ContentMergePlan):
    def __init__(self, key: Key, target: Content, conflicts: list[Conflict]) -> None:
        self.key = key
        self.conflicts = conflicts
        self.statistics = {"view": True}
        self._target = target

    def apply(self, *, preview: bool = False) -> Content:
        return self._target


class ViewStateFiles(StateFiles):
    """A view state reaches exactly its metadata file; its directory is its `location`
    (checked inside a root when it was written). A state whose files lie outside the roots
    is an error of its view id, so gc leaves that view alone."""

    def __init__(self, reachable: set[str], roots: AllowedRoots | None) -> None:
        super().__init__(reachable)
        self.roots = roots
        self._seen: set[str] = set()

    def _outside(self, value: object, what: str) -> str | None:
        try:
            location = parse_location(value, what)
        except InvalidInput as exc:
            return exc.message
        if self.roots is not None and not self.roots.contains(location):
            return f"{what} is outside the allowed locations ({self.roots.describe()})"
        return None

    def add(self, content: Content) -> None:
        self.table_ids.add(content.id)
        errors = self.table_errors.setdefault(content.id, {})
        metadata_location = content.fields.get("metadata_location")
        location = content.fields.get("location")
        problem = self._outside(metadata_location, "view metadata file")
        if problem is None:
            key = normalize_path(str(metadata_location))
            self.mark(key)
            self._seen.add(key)
        else:
            errors[f"content {content.id}"] = problem
        problem = self._outside(location, "view location")
        if problem is None:
            self.table_locations.setdefault(content.id, set()).add(str(location))
        else:
            errors[f"content {content.id} location"] = problem

    def followed(self, content: Content) -> bool:
        location = content.fields.get("metadata_location")
        return isinstance(location, str) and normalize_path(location) in self._seen

    def dropped(self, content: Content, known: bool) -> tuple[list[str] | None, dict[str, str]]:
        """A view no retained commit holds: its location, as its (validated) state names it."""
        if known or self.followed(content):
            return None, {}
        location = content.fields.get("location")
        problem = self._outside(location, "view location")
        if problem is not None:
            return None, {f"content {content.id} location": problem}
        return [str(location)], {}


__all__ = ["IcebergViewFormat", "ViewMerger", "ViewStateFiles", "check_view_location",
           "current_version", "read_client_view_metadata", "read_view_metadata",
           "same_definition", "view_content", "view_metadata_location", "write_view_metadata"]
