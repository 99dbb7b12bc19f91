"""Net change of one Iceberg table state against another, by live-file diff.

Why a live-file diff and not snapshot ancestry: once two branches have exchanged merges,
their snapshot chains no longer describe "what this side did since the ancestor", but the
set of live files always does. Manifests shared by both snapshots cancel out unread, so
the cost is proportional to the manifests that differ, not to the table's history.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.io import FileIO
from pyiceberg.manifest import DataFile, DataFileContent, ManifestEntry, ManifestFile
from pyiceberg.serializers import FromInputFile
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.utils.concurrent import ExecutorFactory

from spark_lakeversion.model import Content

#: reserved field id of `file_path` in position-delete files (Iceberg spec)
POSITION_DELETE_FILE_PATH_ID = 2147483546

#: a partition as merge rules compare it: (spec id, partition values)
PartitionKey = tuple[int, tuple[Any, ...]]


@dataclass(frozen=True)
class TableState:
    """One side of the merge: its store content, parsed metadata and current snapshot."""

    content: Content
    metadata_location: str
    metadata: TableMetadata
    snapshot: Snapshot | None

    @property
    def snapshot_id(self) -> int | None:
        return self.snapshot.snapshot_id if self.snapshot is not None else None


def load_state(content: Content, io: FileIO) -> TableState:
    """Read a side's metadata file; the content's snapshot id wins over the file's current one."""
    location = str(content.fields["metadata_location"])
    metadata = FromInputFile.table_metadata(io.new_input(location))
    snapshot_id = content.fields.get("snapshot_id", metadata.current_snapshot_id)
    if snapshot_id is None or int(snapshot_id) < 0:
        snapshot = None
    else:
        snapshot = metadata.snapshot_by_id(int(snapshot_id))
        if snapshot is None:
            raise LookupError(f"snapshot {snapshot_id} is not in {location}")
    return TableState(content, location, metadata, snapshot)


def partition_key(data_file: DataFile) -> PartitionKey:
    record = data_file.partition
    return data_file.spec_id, tuple(record[i] for i in range(len(record)))


class ManifestReader:
    """Reads each manifest at most once per merge, in parallel (entries carry inherited seqs)."""

    def __init__(self, io: FileIO) -> None:
        self.io = io
        self._manifest_lists: dict[str, list[ManifestFile]] = {}
        self._entries: dict[str, list[ManifestEntry]] = {}
        self.manifests_read = 0

    def manifests(self, snapshot: Snapshot | None) -> list[ManifestFile]:
        if snapshot is None:
            return []
        cached = self._manifest_lists.get(snapshot.manifest_list)
        if cached is None:
            cached = list(snapshot.manifests(self.io))
            self._manifest_lists[snapshot.manifest_list] = cached
        return cached

    def read(self, manifests: Iterable[ManifestFile]) -> None:
        todo = {m.manifest_path: m for m in manifests if m.manifest_path not in self._entries}
        if not todo:
            return
        executor: Executor = ExecutorFactory.get_or_create()

        def fetch(manifest: ManifestFile) -> tuple[str, list[ManifestEntry]]:
            return manifest.manifest_path, manifest.fetch_manifest_entry(self.io,
                                                                       discard_deleted=True)

        for path, entries in executor.map(fetch, todo.values()):
            self._entries[path] = entries
        self.manifests_read += len(todo)

    def live_entries(self, manifest: ManifestFile) -> list[ManifestEntry]:
        self.read([manifest])
        return self._entries[manifest.manifest_path]

    def is_read(self, manifest_path: str) -> bool:
        return manifest_path in self._entries


@dataclass
class FileChange:
    """What one side did to the set of live files: entries keyed by file path."""

    added: dict[str, ManifestEntry] = field(default_factory=dict)
    removed: dict[str, ManifestEntry] = field(default_factory=dict)

    def added_data(self) -> list[DataFile]:
        return [e.data_file for e in self.added.values()
                if e.data_file.content == DataFileContent.DATA]

    def removed_data(self) -> list[DataFile]:
        return [e.data_file for e in self.removed.values()
                if e.data_file.content == DataFileContent.DATA]

    def added_deletes(self) -> list[ManifestEntry]:
        return [e for e in self.added.values() if e.data_file.content != DataFileContent.DATA]

    def removed_deletes(self) -> list[DataFile]:
        return [e.data_file for e in self.removed.values()
                if e.data_file.content != DataFileContent.DATA]

    @property
    def empty(self) -> bool:
        return not self.added and not self.removed

    def statistics(self) -> dict[str, int]:
        added_data = self.added_data()
        removed_data = self.removed_data()
        added_deletes = self.added_deletes()
        return {
            "data_files_added": len(added_data),
            "data_files_removed": len(removed_data),
            "delete_files_added": len(added_deletes),
            "delete_files_removed": len(self.removed_deletes()),
            "rows_added": sum(f.record_count for f in added_data),
            "rows_removed": sum(f.record_count for f in removed_data),
            "delete_records_added": sum(e.data_file.record_count for e in added_deletes),
        }


def live_file_diff(reader: ManifestReader, base: Snapshot | None,
                   side: Snapshot | None) -> FileChange:
    """Files live in `side` but not `base` (added) and the reverse (removed)."""
    base_manifests = reader.manifests(base)
    side_manifests = reader.manifests(side)
    base_paths = {m.manifest_path for m in base_manifests}
    side_paths = {m.manifest_path for m in side_manifests}
    base_only = [m for m in base_manifests if m.manifest_path not in side_paths]
    side_only = [m for m in side_manifests if m.manifest_path not in base_paths]
    reader.read(base_only + side_only)
    before: dict[str, ManifestEntry] = {}
    for manifest in base_only:
        for entry in reader.live_entries(manifest):
            before[entry.data_file.file_path] = entry
    change = FileChange()
    for manifest in side_only:
        for entry in reader.live_entries(manifest):
            path = entry.data_file.file_path
            if before.pop(path, None) is None:
                change.added[path] = entry
    change.removed = before
    return change


def referenced_data_file(delete_file: DataFile) -> str | None:
    """The one data file a position-delete file points at, when its metrics say so."""
    lower = (delete_file.lower_bounds or {}).get(POSITION_DELETE_FILE_PATH_ID)
    upper = (delete_file.upper_bounds or {}).get(POSITION_DELETE_FILE_PATH_ID)
    if lower is not None and lower == upper:
        return lower.decode("utf-8")
    return None


def position_delete_may_reference(delete_file: DataFile, data_path: str) -> bool:
    """Whether the delete file's `file_path` bounds admit `data_path` (no bounds: yes)."""
    lower = (delete_file.lower_bounds or {}).get(POSITION_DELETE_FILE_PATH_ID)
    upper = (delete_file.upper_bounds or {}).get(POSITION_DELETE_FILE_PATH_ID)
    encoded = data_path.encode("utf-8")
    if lower is not None and encoded < lower:
        return False
    return not (upper is not None and encoded > upper)


def position_delete_targets(io: FileIO, delete_file: DataFile) -> set[str]:
    """The data file paths a position-delete file names (reads only its `file_path` column)."""
    single = referenced_data_file(delete_file)
    if single is not None:
        return {single}
    import pyarrow.parquet as pq

    with io.new_input(delete_file.file_path).open() as stream:
        table = pq.read_table(stream, columns=["file_path"])
    return {str(v) for v in table.column("file_path").unique().to_pylist()}
