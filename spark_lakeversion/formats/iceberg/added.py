"""The files an Iceberg change adds, which gc's epoch fence checks (`spark_lakeversion.gc.fence`):
for every snapshot of the new metadata that the base does not have, its manifest list, the
manifests it does not carry over from its parent, and the data and delete files those
manifests add. Yielded lazily as (what, path), so the fence stops reading at the first
problem; a file that cannot be read raises, and the fence reports it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.model import Content

_ADDED = 1  # ManifestEntryStatus.ADDED


def snapshot_files(base: Any, metadata: Any, io: Any) -> Iterator[tuple[str, str]]:
    """What `metadata`'s new snapshots add over `base` (pyiceberg `TableMetadata`s; `base`
    None: every snapshot is new); `io` reads manifests."""
    known = {s.snapshot_id for s in (base.snapshots if base is not None else [])}
    for snapshot in metadata.snapshots:
        if snapshot.snapshot_id in known:
            continue
        yield "manifest list", snapshot.manifest_list
        manifests = snapshot.manifests(io)
        parent = metadata.snapshot_by_id(snapshot.parent_snapshot_id) \
            if snapshot.parent_snapshot_id is not None else None
        carried = {m.manifest_path for m in parent.manifests(io)} if parent else set()
        for manifest in manifests:
            if manifest.manifest_path in carried:
                continue
            yield "manifest", manifest.manifest_path
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                if int(getattr(entry.status, "value", entry.status)) == _ADDED:
                    yield "data file", entry.data_file.file_path


def content_files(base: Content | None, content: Content,
                  io_properties: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """What putting the (validated) table state `content` over `base` adds: its metadata
    file and what its new snapshots add (`base` counts only if it is the same table)."""
    from spark_lakeversion.formats.iceberg import content as fmt
    from spark_lakeversion.formats.iceberg import files

    location = content.fields.get("metadata_location")
    if not isinstance(location, str):
        return
    same = base is not None and base.type is ICEBERG_TABLE and base.id == content.id
    base_location = base.fields.get("metadata_location") if same and base else None
    if base_location == location:
        return
    yield "metadata file", location
    metadata = fmt.read_metadata(location, io_properties)
    base_metadata = fmt.read_metadata(base_location, io_properties) \
        if isinstance(base_location, str) else None
    yield from snapshot_files(base_metadata, metadata,
                              files.file_io(metadata.location, io_properties))
