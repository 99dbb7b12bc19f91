"""What an Iceberg table state reaches, for gc: its metadata file, the metadata-log entries
it lists (kept, not followed: they are small and tools may point back at them), and for
every snapshot the manifest list, every manifest, every data and delete file (entries of
all statuses, DELETED included), plus statistics and partition-statistics files.

A table's directories are its `location` and `write.*.path` properties, as its metadata
names them. Manifests and manifest lists are read path-only (`avro.py`) and cached by path
for the whole run: manifests shared across snapshots, tables and branches are read once.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg.files import PATH_PROPERTIES
from spark_lakeversion.locations import AllowedRoots, normalize_path, parse_location
from spark_lakeversion.model import Content
from spark_lakeversion.tableformat.base import StateFiles


class IcebergStateFiles(StateFiles):
    """Files reached from Iceberg table states; each metadata file, manifest list and
    manifest is read at most once per instance (all caches are keyed by normalized path).

    Per table id it records the table locations its metadata names (`location` and the
    `write.*.path` properties) and every file of its history that could not be read. With
    `roots`, a metadata file, manifest list or manifest outside them is never opened (it
    could be any file on the machine): the table is marked instead.
    """

    def __init__(self, reachable: set[str], roots: AllowedRoots | None = None,
                 io_properties: Mapping[str, str] | None = None) -> None:
        super().__init__(reachable)
        self.io_properties = dict(io_properties or {})
        self.roots = roots
        self.metadata_read = 0
        self.manifest_lists_read = 0
        self.manifests_read = 0
        self.manifests: set[str] = set()  # every manifest path reached
        self.manifest_references = 0  # manifest entries of all lists read: reads saved
        self.unreadable: dict[str, str] = {}
        self._current: str | None = None  # the table id being followed
        self._states: dict[str, list[str]] = {}  # metadata followed -> locations it names
        self._lists: set[str] = set()
        #: metadata file or manifest list -> the unreadable files at or below it, so a table
        #: id reaching them through the read-once caches is marked as well
        self._bad_below: dict[str, set[str]] = {}

    def _io(self, path: str) -> Any:
        from spark_lakeversion.formats.iceberg.files import file_io

        return file_io(path, self.io_properties)

    def _flag(self, key: str, error: str) -> None:
        """`key` could not be read: unknown references, so its table is not collected."""
        self.unreadable[key] = error
        if self._current is not None:
            self.table_errors.setdefault(self._current, {})[key] = error

    def _refused(self, path: str, what: str) -> str | None:
        """Why `path` must not be opened (outside the roots, not a strict location)."""
        if self.roots is None:
            return None
        try:
            location = parse_location(path, what)
        except InvalidInput as exc:
            return f"not read: {exc.message}"
        if not self.roots.contains(location):
            return (f"not read: {what} is outside the allowed locations "
                    f"({self.roots.describe()})")
        return None

    def add(self, content: Content) -> None:
        """Mark everything a table state reaches."""
        self.table_ids.add(content.id)
        self.table_errors.setdefault(content.id, {})
        self._current = content.id
        try:
            location = content.fields.get("metadata_location")
            if isinstance(location, str) and location:
                self.add_metadata(location)
            else:
                self._flag(f"content {content.id}", "the table state has no metadata_location")
        finally:
            self._current = None

    def add_metadata(self, metadata_location: str) -> None:
        """Follow one metadata.json (once) down to its data files."""
        key = normalize_path(metadata_location)
        if key in self._states:  # followed already (maybe for another table id)
            self._attribute(key)
            return
        self._states[key] = []
        bad = self._bad_below[key] = set()
        self.mark(key)
        refused = self._refused(metadata_location, "metadata file")
        if refused:
            self._flag(key, refused)
            bad.add(key)
            return
        try:
            metadata = self._read_json(metadata_location)
        except Exception as exc:  # noqa: BLE001 - any read failure means "unknown"
            self._flag(key, f"{type(exc).__name__}: {exc}")
            bad.add(key)
            return
        self.metadata_read += 1
        self.reads[key] += 1
        self._states[key] = _named_locations(metadata)
        self._attribute(key)
        for entry in metadata.get("metadata-log") or []:
            if isinstance(entry, dict) and isinstance(entry.get("metadata-file"), str):
                self.mark(normalize_path(entry["metadata-file"]))
        for stats_key in ("statistics", "partition-statistics"):
            for stats in metadata.get(stats_key) or []:
                if isinstance(stats, dict) and isinstance(stats.get("statistics-path"), str):
                    self.mark(normalize_path(stats["statistics-path"]))
        for snapshot in metadata.get("snapshots") or []:
            manifest_list = snapshot.get("manifest-list") if isinstance(snapshot, dict) \
                else None
            if isinstance(manifest_list, str) and manifest_list:
                bad |= self._add_manifest_list(manifest_list)
            else:  # format v1 without manifest lists, or a malformed snapshot
                self._flag(key, "a snapshot without a manifest list (v1 inline manifests) "
                                "is not supported")
                bad.add(key)

    def _attribute(self, key: str) -> None:
        """Credit the locations (and read errors) of a followed metadata file to the
        current table id, also when another table id followed it first."""
        if self._current is None:
            return
        self.table_locations.setdefault(self._current, set()).update(self._states[key])
        for path in self._bad_below.get(key, ()):
            self._flag(path, self.unreadable[path])

    def followed(self, content: Content) -> bool:
        location = content.fields.get("metadata_location")
        return isinstance(location, str) and normalize_path(location) in self._states

    def dropped(self, content: Content, known: bool) -> tuple[list[str] | None, dict[str, str]]:
        """The locations one metadata file of a state no retained commit holds names, read
        without following its snapshots; never where a metadata file lies. A state naming
        a metadata file that is not a strict location under the roots is an error of its
        table id (an old store may hold such contents)."""
        location = content.fields.get("metadata_location")
        if not isinstance(location, str) or not location:
            return None, {f"content {content.id}": "a table state without a metadata_location"}
        if self.followed(content):
            return None, {}  # a retained state: checked (and reported) when it was followed
        if self.roots is not None:
            try:
                self.roots.check(location, "metadata location")
            except InvalidInput as exc:
                return None, {location: exc.message}
        if known:
            return None, {}
        key = normalize_path(location)
        try:
            if key in self._states and key not in self.unreadable:
                return self._states[key], {}
            return _named_locations(self._read_json(location)), {}
        except FileNotFoundError:
            return None, {}  # collected already: nothing left to find its directory by
        except Exception as exc:  # noqa: BLE001 - report, list nothing for it
            return None, {location: f"{type(exc).__name__}: {exc}"}

    def counters(self) -> dict[str, int]:
        return {"metadata_files_read": self.metadata_read,
                "manifest_lists_read": self.manifest_lists_read,
                "manifests_read": self.manifests_read,
                "manifests_total": len(self.manifests),
                "manifest_references": self.manifest_references}

    def _read_json(self, location: str) -> dict[str, Any]:
        with self._io(location).new_input(location).open() as stream:
            raw = stream.read()
        if raw[:2] == b"\x1f\x8b":  # .gz.metadata.json
            raw = gzip.decompress(raw)
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("metadata is not a JSON object")
        return data

    def _read_paths(self, path: str, key: str, kind: str) -> list[str] | None:
        """The paths a manifest list or manifest lists (`avro.read_paths`), counted as
        one read of `key`; None, with `key` recorded as unreadable, if it cannot be read."""
        from spark_lakeversion.formats.iceberg.avro import read_paths

        refused = self._refused(path, kind.replace("_", " "))
        if refused:
            self._flag(key, refused)
            return None
        try:
            paths = read_paths(self._io(path), path, kind)
        except Exception as exc:  # noqa: BLE001 - any read failure means "unknown"
            self._flag(key, f"{type(exc).__name__}: {exc}")
            return None
        self.reads[key] += 1
        return paths

    def _add_manifest_list(self, path: str) -> set[str]:
        """Follow one manifest list (once); returns the unreadable files at or below it."""
        key = normalize_path(path)
        self.mark(key)
        if key in self._lists:
            bad = self._bad_below.get(key, set())
            for p in bad:
                self._flag(p, self.unreadable[p])
            return bad
        self._lists.add(key)
        bad = self._bad_below[key] = set()
        manifests = self._read_paths(path, key, "manifest_list")
        if manifests is None:
            bad.add(key)
            return bad
        self.manifest_lists_read += 1
        self.manifest_references += len(manifests)
        for manifest_path in manifests:
            mkey = normalize_path(manifest_path)
            self.mark(mkey)
            if mkey in self.manifests:
                if mkey in self.unreadable:
                    self._flag(mkey, self.unreadable[mkey])
                    bad.add(mkey)
                continue
            self.manifests.add(mkey)
            files = self._read_paths(manifest_path, mkey, "manifest")
            if files is None:
                bad.add(mkey)
                continue
            self.manifests_read += 1
            for file_path in files:
                self.mark(normalize_path(file_path))
        return bad


def _named_locations(metadata: Mapping[str, Any]) -> list[str]:
    """The table location and `write.*.path` properties a metadata document names: the
    only places gc takes a table's directories from."""
    out: list[str] = []
    location = metadata.get("location")
    if isinstance(location, str) and location:
        out.append(location)
    properties = metadata.get("properties")
    if isinstance(properties, Mapping):
        for prop in PATH_PROPERTIES:
            value = properties.get(prop)
            if isinstance(value, str) and value:
                out.append(value)
    return out
