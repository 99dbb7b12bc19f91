"""Which files an Iceberg row diff reads, from metadata alone, at a cost that follows the
change, not the table's history (`rows.row_changes` plans with `plan`).

- Each side's metadata file is parsed as JSON and only the side's snapshot is kept before
  pyiceberg's model is built (`load_state`): a table with hundreds of snapshots costs the
  JSON parse, not hundreds of pydantic snapshots.
- Manifest lists and manifests are read with a cached Avro resolution (`avro`); local
  manifests one after another (CPU-bound: a thread pool only adds hand-offs), remote ones
  in parallel.
- Each parse is kept for the process (`filecache`: Iceberg never rewrites these files): a
  second diff or check on states read before parses nothing again. Nothing kept is
  changed by its readers (pyiceberg's metadata and snapshots are frozen; manifest lists
  and entries are only read here).
- A manifest listed on both sides (same path: manifest files are immutable) has the same
  live entries on both sides and is never opened for what it holds itself; only manifests
  on exactly one side are. Shared manifests are opened only when a delete can cross them:
  shared data manifests when a delete file is live on one side only (it may apply to a data
  file both sides share), shared delete manifests when some data file is read (its deletes
  on each side must be complete).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from typing import Any

from pydantic_core import from_json
from pyiceberg.io import FileIO
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestFile,
)
from pyiceberg.serializers import Compressor
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.utils.concurrent import ExecutorFactory

from spark_lakeversion.filecache import FileCache, local_path
from spark_lakeversion.formats.iceberg.avro import read_live_entries, read_manifest_list
from spark_lakeversion.formats.iceberg.merge.diff import (
    ManifestReader,
    TableState,
    position_delete_may_reference,
    referenced_data_file,
)
from spark_lakeversion.model import Content
from spark_lakeversion.rows.source import FileRef

#: history a row diff never needs: dropped before pyiceberg's model is built
_HISTORY: dict[str, list[Any]] = {"snapshot-log": [], "metadata-log": [], "statistics": [],
            "partition-statistics": []}


#: parsed metadata (one snapshot each), manifest lists and manifests' live entries, each
#: bounded by the objects it keeps (about 1 KB a manifest, up to a few KB an entry)
_STATES: FileCache[tuple[TableMetadata, Snapshot | None]] = FileCache(256)
_LISTS: FileCache[tuple[ManifestFile, ...]] = FileCache(50_000)
_ENTRIES: FileCache[tuple[ManifestEntry, ...]] = FileCache(20_000)


def load_state(content: Content, io: FileIO) -> TableState:
    """A side's metadata with only its own snapshot (the content's snapshot id wins over the
    file's current one), its schemas, specs and properties as stored."""
    location = str(content.fields["metadata_location"])
    given = "snapshot_id" in content.fields  # given as None: no snapshot (an empty table)
    raw_id = content.fields.get("snapshot_id")
    metadata, snapshot = _STATES.get(location, lambda: _parse_state(location, given, raw_id, io),
                                     given, str(raw_id))
    return TableState(content, location, metadata, snapshot)


def _parse_state(location: str, given: bool, raw_id: Any, io: FileIO
                 ) -> tuple[TableMetadata, Snapshot | None]:
    with io.new_input(location).open() as stream:
        raw = Compressor.get_compressor(location).stream_decompressor(stream).read()
    data = from_json(raw)  # pyiceberg's own JSON parser (pydantic's): twice json's speed
    if not isinstance(data, dict):
        raise ValueError(f"{location} is not an Iceberg metadata file")
    if not given:
        raw_id = data.get("current-snapshot-id")
    wanted = int(raw_id) if raw_id is not None else -1
    chosen: dict[str, Any] | None = None
    if wanted >= 0:
        chosen = next((s for s in data.get("snapshots") or []
                       if isinstance(s, dict) and s.get("snapshot-id") == wanted), None)
        if chosen is None:
            raise LookupError(f"snapshot {wanted} is not in {location}")
    trimmed = {**data, **_HISTORY, "refs": {},
               "snapshots": [chosen] if chosen is not None else [],
               "current-snapshot-id": wanted if chosen is not None else None}
    metadata = TableMetadataUtil.parse_obj(trimmed)
    return metadata, metadata.snapshots[0] if chosen is not None else None


class ListReader(ManifestReader):
    """`ManifestReader` whose manifest lists and manifests are read by `avro`'s readers
    (resolution cached per file schema); it records the manifests it opens (`opened`)."""

    def __init__(self, io: FileIO) -> None:
        super().__init__(io)
        self.opened: list[str] = []

    def manifests(self, snapshot: Snapshot | None) -> list[ManifestFile]:
        if snapshot is None:
            return []
        cached = self._manifest_lists.get(snapshot.manifest_list)
        if cached is None:
            path = snapshot.manifest_list
            cached = list(_LISTS.get(path, lambda: tuple(read_manifest_list(self.io, path)),
                                     weight=len))
            self._manifest_lists[path] = cached
        return cached

    def read(self, manifests: Iterable[ManifestFile]) -> None:
        todo = list({m.manifest_path: m for m in manifests
                     if not self.is_read(m.manifest_path)}.values())
        if not todo:
            return
        self.opened.extend(m.manifest_path for m in todo)
        if len(todo) == 1 or all(local_path(m.manifest_path) for m in todo):
            # local reads are CPU-bound under the GIL: a pool would only add its hand-offs
            got = [self._live(m) for m in todo]
        else:  # remote reads wait on the network: in parallel
            executor: Executor = ExecutorFactory.get_or_create()
            got = list(executor.map(self._live, todo))
        for manifest, entries in zip(todo, got, strict=True):
            self._entries[manifest.manifest_path] = list(entries)
        self.manifests_read += len(todo)

    def _live(self, manifest: ManifestFile) -> tuple[ManifestEntry, ...]:
        """A manifest's live entries, which inherit what its list says of it (so that is
        part of the key)."""
        return _ENTRIES.get(manifest.manifest_path,
                            lambda: tuple(read_live_entries(self.io, manifest)),
                            manifest.sequence_number, manifest.min_sequence_number,
                            manifest.added_snapshot_id, weight=len)


class Targets:
    """The data files each delete file is scoped to, when it says so: a position-delete file
    by its `file_path` bounds, a deletion-vector (Puffin) file by its blobs'
    ``referenced-data-file`` (pyiceberg reads manifests with the v2 schema, which drops the
    entry's own field, so the Puffin footer is read, through the counting FileIO, once)."""

    def __init__(self, io: FileIO) -> None:
        self.io = io
        self._cache: dict[str, frozenset[str] | None] = {}

    def of(self, delete: DataFile) -> frozenset[str] | None:
        path = delete.file_path
        if path not in self._cache:
            self._cache[path] = self._read(delete)
        return self._cache[path]

    def _read(self, delete: DataFile) -> frozenset[str] | None:
        if delete.content == DataFileContent.EQUALITY_DELETES:
            return None
        if delete.file_format == FileFormat.PUFFIN:
            from pyiceberg.table.puffin import PuffinFile

            with self.io.new_input(delete.file_path).open() as stream:
                footer = PuffinFile(stream.read()).footer
            return frozenset(str(b.properties.get("referenced-data-file"))
                             for b in footer.blobs if b.properties.get("referenced-data-file"))
        single = referenced_data_file(delete)
        return frozenset({single}) if single is not None else None


def _seq(entry: ManifestEntry) -> int:
    return int(entry.sequence_number or 0)


def applies(delete: ManifestEntry, data: ManifestEntry, specs: Mapping[int, Any],
            targets: Targets) -> bool:
    """Whether `delete` applies to `data` on one side (Iceberg's scan-planning rules)."""
    d, f = delete.data_file, data.data_file
    if d.content == DataFileContent.EQUALITY_DELETES:
        if _seq(data) >= _seq(delete):
            return False
        spec = specs.get(d.spec_id)
        return spec is None or not spec.fields or (
            d.spec_id == f.spec_id and d.partition == f.partition)
    if _seq(data) > _seq(delete):
        return False
    scoped = targets.of(d)
    if scoped is not None:
        return f.file_path in scoped
    return d.spec_id == f.spec_id and d.partition == f.partition and \
        position_delete_may_reference(d, f.file_path)


def _ref(state: TableState, entry: ManifestEntry, deletes: list[DataFile]) -> FileRef:
    data = entry.data_file
    spec = state.metadata.specs().get(data.spec_id)
    label = spec.partition_to_path(data.partition, state.metadata.schema()) \
        if spec is not None and spec.fields else ""
    return FileRef(data.file_path, label, int(data.record_count),
                   tuple(sorted(d.file_path for d in deletes)), (data, deletes))


def _is_data(entry: ManifestEntry) -> bool:
    return entry.data_file.content == DataFileContent.DATA


def _entries(reader: ManifestReader, manifests: list[ManifestFile]) -> dict[str, ManifestEntry]:
    reader.read(manifests)
    return {e.data_file.file_path: e for m in manifests for e in reader.live_entries(m)}


def plan(reader: ManifestReader, before: TableState | None, after: TableState | None,
         targets: Targets) -> tuple[list[FileRef], list[FileRef], int]:
    """(before files, after files, shared data files skipped): the data files live on
    exactly one side, and the shared ones whose deletes differ, each with its side's
    deletes (see the module's docstring for which manifests are opened)."""
    states = (before, after)
    lists = [reader.manifests(s.snapshot) if s is not None else [] for s in states]
    both = {m.manifest_path for m in lists[0]} & {m.manifest_path for m in lists[1]}
    own = [_entries(reader, [m for m in ms if m.manifest_path not in both]) for ms in lists]
    shared_manifests = [m for m in lists[1] if m.manifest_path in both]
    # entries in one-side manifests of both sides (a file moved between manifests) are shared
    live = [{p: e for p, e in own[i].items() if p not in own[1 - i]} for i in (0, 1)]
    common = {p: e for p, e in own[1].items() if p in own[0]}
    if any(not _is_data(e) for side in live for e in side.values()):
        common.update(_entries(reader, [m for m in shared_manifests
                                        if m.content == ManifestContent.DATA]))
    affected = {p for side in live for p, e in side.items() if _is_data(e)}
    for side, state in zip(live, states):
        specs = state.metadata.specs() if state is not None else {}
        for entry in side.values():
            if not _is_data(entry):
                affected.update(p for p, e in common.items() if p not in affected
                                and _is_data(e) and applies(entry, e, specs, targets))
    if affected:
        common.update(_entries(reader, [m for m in shared_manifests
                                        if m.content == ManifestContent.DELETES]))
    refs: list[list[FileRef]] = []
    for side, state in zip(live, states):
        if state is None:
            refs.append([])
            continue
        specs = state.metadata.specs()
        everything = {**common, **side}
        deletes = [e for e in everything.values() if not _is_data(e)]
        refs.append([_ref(state, everything[p],
                          [d.data_file for d in deletes
                           if applies(d, everything[p], specs, targets)])
                     for p in sorted(affected) if p in everything])
    # a shared file whose deletes came out equal on both sides has equal rows: skip it
    b_refs, a_refs = refs
    deletes_of = [{r.path: r.deletes for r in side} for side in refs]
    equal = {p for p in deletes_of[0].keys() & deletes_of[1].keys()
             if deletes_of[0][p] == deletes_of[1][p]}
    b_refs = [r for r in b_refs if r.path not in equal]
    a_refs = [r for r in a_refs if r.path not in equal]
    return b_refs, a_refs, max(_total_data_files(after) - len(a_refs), 0)


def _total_data_files(state: TableState | None) -> int:
    """The live data files of `state`, from its snapshot summary (0 when it has none)."""
    if state is None or state.snapshot is None or state.snapshot.summary is None:
        return 0
    total = state.snapshot.summary.additional_properties.get("total-data-files")
    return int(total) if total is not None and str(total).isdigit() else 0


__all__ = ["ListReader", "Targets", "applies", "load_state", "plan"]
