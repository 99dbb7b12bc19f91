"""The Iceberg `TableFormat`: what the server, the merge engine and gc ask of an Iceberg
table state. pyiceberg is imported by the methods that need it, not by loading the format."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg.codes import ICEBERG_CONFLICTS, ICEBERG_TABLE
from spark_lakeversion.model import Content, Key
from spark_lakeversion.tableformat.base import StateFiles, TableFormat

if TYPE_CHECKING:
    from spark_lakeversion.locations import AllowedRoots
    from spark_lakeversion.rows.source import RowChanges
    from spark_lakeversion.tableformat.merger import ContentMerger


class IcebergFormat(TableFormat):
    content_type = ICEBERG_TABLE
    conflict_types = ICEBERG_CONFLICTS

    def validate(self, key: Key, content: Content, roots: AllowedRoots,
                 io_properties: Mapping[str, str]) -> Content:
        """`metadata_location` is a regular file under an allowed root and parses as table
        metadata whose UUID is the content id; the metadata's locations pass
        `files.validate_metadata`; `location`, the store's index of who owns which
        directory, is the metadata's location (filled in when absent)."""
        from spark_lakeversion.formats.iceberg import files

        metadata_location = content.fields.get("metadata_location")
        if not isinstance(metadata_location, str) or not metadata_location:
            raise InvalidInput(f"put {key}: an Iceberg content needs a metadata_location")
        try:
            metadata = files.read_client_metadata(metadata_location, roots, io_properties)
        except files.UnreadableFile:
            raise InvalidInput(f"put {key}: metadata_location is {files.UNREADABLE} "
                               f"({roots.describe()})") from None
        if str(metadata.table_uuid) != content.id:
            raise InvalidInput(f"put {key}: content id {content.id!r} is not the table UUID "
                               f"{metadata.table_uuid} of its metadata file")
        files.validate_metadata(metadata, roots, what=f"table {key}", read_current_only=True,
                                io_properties=io_properties)
        given = content.fields.get("location")
        if given is not None and given != metadata.location:
            raise InvalidInput(f"put {key}: location {given!r} is not the table location "
                               f"{metadata.location!r} of its metadata file")
        return content if given is not None else content.with_fields(location=metadata.location)

    def claimed_locations(self, content: Content, io_properties: Mapping[str, str]
                          ) -> dict[str, str]:
        """The table location and its `write.*.path` directories, as the REST catalog
        checks them (`files.claimed_locations`), from its (validated) metadata file."""
        from spark_lakeversion.formats.iceberg import content as fmt
        from spark_lakeversion.formats.iceberg import files

        location = content.fields.get("metadata_location")
        if not isinstance(location, str):
            return super().claimed_locations(content, io_properties)
        return files.claimed_locations(fmt.read_metadata(location, io_properties))

    def added_files(self, base: Content | None, content: Content,
                    io_properties: Mapping[str, str]) -> Iterator[tuple[str, str]]:
        from spark_lakeversion.formats.iceberg.added import content_files

        return content_files(base, content, io_properties)

    def merger(self) -> ContentMerger:
        from spark_lakeversion.formats.iceberg.merge.plan import IcebergContentMerger

        return IcebergContentMerger()

    def row_changes(self, before: Content | None, after: Content | None,
                    io_properties: Mapping[str, str]) -> RowChanges:
        from spark_lakeversion.formats.iceberg.rows import row_changes

        return row_changes(before, after, io_properties)

    def state_files(self, reachable: set[str], roots: AllowedRoots | None,
                    io_properties: Mapping[str, str]) -> StateFiles:
        from spark_lakeversion.formats.iceberg.reachability import IcebergStateFiles

        return IcebergStateFiles(reachable, roots, io_properties)
