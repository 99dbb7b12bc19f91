"""`lakeversion gc`: delete the files under table locations that no ref can reach any more.

Every ref shares each table's location, so no single Iceberg metadata chain knows which
files are garbage; only the whole store does. A file is *reachable* when the Iceberg
metadata of some table state in the *retained history* reaches it:

- retained history = every ref head (branches and tags), plus every commit reachable from a
  head whose time is within `keep_commits_since` (the walk stops, on each path, at the first
  older commit), plus the heads the reflog gave existing refs within that window (so
  ``ref#<time>`` stays readable for the whole window);
- from each retained table state: its metadata.json, the metadata-log entries it lists
  (kept, not followed: they are small and tools may point back at them), and for every
  snapshot in it the manifest list, every manifest, every data and delete file (entries of
  all statuses, DELETED included), plus statistics and partition-statistics files.

Garbage = files listed under a table location (the table's `location`, and its
`write.*.path` properties, as its metadata names them) that nothing reaches and whose
modification time is before the grace cutoff `now - older_than` (at least
`MIN_OLDER_THAN` unless forced). Locations of tables no retained commit holds any more
(dropped tables, deleted branches) are read from one of their metadata files found through
the store's content rows; never from where a metadata file lies.

Fail safe: only locations under the allowed roots that exactly one table id owns are listed.
A table whose location is outside the roots, overlaps another table id's, or whose retained
history cannot be read (or lies outside the roots: gc never opens such a file) is skipped
and reported in `GcReport.skipped_tables`; gc goes on for the rest.

Concurrent writers: a real run first records a new gc epoch and its cutoffs in the store
(`VersionStore.begin_gc`, `spark_lakeversion.store.gc_state`). Iceberg REST commits check
their new files against the cutoff and land only in the epoch they checked
(`spark_lakeversion.gc_fence`), and time travel to history older than the window is refused
(`HistoryCollected`). Files are listed first, then the store is read again and everything it
now reaches is added; right before deleting, the ref heads are read once more and anything
they newly reach is spared (repeated until they stand still).

Manifests and manifest lists are cached by path for the whole run (shared manifests across
snapshots, tables and branches are read once); `GcReport` counts the reads so callers can
check it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from spark_lakeversion.errors import ConflictError, InvalidInput
from spark_lakeversion.locations import AllowedRoots, Location, parse_location
from spark_lakeversion.store.model import Commit, Content, ContentType
from spark_lakeversion.store.objects import to_us
from spark_lakeversion.versioning.interface import VersionStore
from spark_lakeversion.versioning.retention import reflog_heads, walk_retained

#: grace period: unreached files younger than this are kept (in-flight writes); a Spark job
#: can run for hours before it commits, so the default is a full day
DEFAULT_OLDER_THAN = timedelta(days=1)
#: the smallest grace period without `force`: below it, a writer's files can be collected
#: between its write and its commit (the commit is then refused, but its work is lost)
MIN_OLDER_THAN = timedelta(hours=1)
#: history retention: commits newer than this stay readable (`main~3`, `main#<time>`)
DEFAULT_KEEP_COMMITS_SINCE = timedelta(days=7)
#: how often the deletion phase re-reads moving refs before it gives up
MAX_RECHECKS = 10

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|hr|d|day|days|w|wk)?\s*$",
                       re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600,
          "d": 86400, "day": 86400, "days": 86400, "w": 604800, "wk": 604800}
#: table properties that move data or metadata files out of the table location
_PATH_PROPERTIES = ("write.data.path", "write.metadata.path", "write.object-storage.path",
                    "write.folder-storage.path")


_MAX_DURATION_S = 100 * 365 * 86400


def parse_duration(value: str | timedelta | float) -> timedelta:
    """``30s``, ``15m``, ``3h``, ``1d``, ``2w`` (or plain seconds) as a timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    else:
        raise InvalidInput(f"invalid duration {value!r}: use e.g. 30s, 15m, 3h, 1d or 2w")
    if not seconds >= 0:  # also refuses NaN
        raise InvalidInput(f"a duration cannot be negative: {value!r}")
    if seconds > _MAX_DURATION_S:
        raise InvalidInput(f"duration {value!r} is too long: at most 100 years")
    return timedelta(seconds=seconds)


# ---- paths and file systems --------------------------------------------------------------


def normalize_path(path: str) -> str:
    """One spelling per file: ``/x``, ``file:/x`` and ``file:///x`` are the same file, as
    are ``s3a://`` and ``s3://`` (Spark and pyiceberg write different ones)."""
    scheme, sep, rest = path.partition("://")
    if not sep:
        rest = path[len("file:"):] if path.startswith("file:") else path
        return "file://" + os.path.normpath(os.path.abspath(rest))
    scheme = scheme.lower()
    if scheme == "file":
        return "file://" + os.path.normpath(rest or "/")
    if scheme in ("s3a", "s3n"):
        scheme = "s3"
    return f"{scheme}://{rest.rstrip('/') if rest.endswith('/') else rest}"


def _owner(path: str) -> str:
    """The file a Hadoop checksum sidecar (``dir/.NAME.crc``) belongs to; else `path`.

    Spark's local writes leave one next to every file; it lives and dies with its file."""
    folder, _, name = path.rpartition("/")
    if name.startswith(".") and name.endswith(".crc") and len(name) > 5:
        return f"{folder}/{name[1:-4]}"
    return path


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class ListedFile:
    path: str  # normalized
    size: int
    mtime: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size,
                "mtime": self.mtime.isoformat() if self.mtime else None}


class FileSystems:
    """pyarrow file systems by scheme (and bucket), created once per run."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def resolve(self, uri: str) -> tuple[Any, str]:
        """(pyarrow FileSystem, path inside it) for a normalized URI."""
        from pyarrow import fs as pafs

        scheme, _, rest = uri.partition("://")
        if scheme == "file":
            key = "file"
            if key not in self._cache:
                self._cache[key] = pafs.LocalFileSystem()
            return self._cache[key], rest
        key = f"{scheme}://{rest.split('/', 1)[0]}"
        if key not in self._cache:
            self._cache[key] = pafs.FileSystem.from_uri(uri)[0]
        return self._cache[key], rest

    def list(self, root: str) -> Iterator[ListedFile]:
        """Every file under `root` (recursively); a missing root lists nothing."""
        from pyarrow import fs as pafs

        filesystem, path = self.resolve(root)
        scheme = root.partition("://")[0]
        selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
        for info in filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            mtime = info.mtime
            if mtime is not None and mtime.tzinfo is None:
                mtime = mtime.replace(tzinfo=timezone.utc)
            yield ListedFile(normalize_path(f"{scheme}://{info.path}"), int(info.size or 0),
                             mtime)

    def delete(self, uri: str) -> None:
        filesystem, path = self.resolve(uri)
        filesystem.delete_file(path)


# ---- reachability --------------------------------------------------------------------------


class Reachability:
    """Files reached from Iceberg table states; each metadata file, manifest list and
    manifest is read at most once per instance (all caches are keyed by normalized path).

    Per table id it records the table locations its metadata names (`location` and the
    `write.*.path` properties) and every file of its history that could not be read. With
    `roots`, a metadata file, manifest list or manifest outside them is never opened (it
    could be any file on the machine): the table is marked instead.
    """

    def __init__(self, io_properties: Mapping[str, str] | None = None,
                 roots: AllowedRoots | None = None) -> None:
        self.io_properties = dict(io_properties or {})
        self.roots = roots
        self.reachable: set[str] = set()
        self.protected_roots: set[str] = set()  # formats we cannot read yet (Delta): keep all
        self.table_ids: set[str] = set()
        #: table id -> locations named by its metadata (as written there)
        self.table_locations: dict[str, set[str]] = {}
        #: table id -> Delta table locations (protected, but they own their directory too)
        self.delta_locations: dict[str, set[str]] = {}
        #: table id -> {path: why it could not be read}
        self.table_errors: dict[str, dict[str, str]] = {}
        self.reads: Counter[str] = Counter()  # normalized path -> times read
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
        self._ios: dict[str, Any] = {}

    def _io(self, path: str) -> Any:
        from pyiceberg.io import load_file_io

        scheme = path.partition("://")[0] if "://" in path else "file"
        if scheme not in self._ios:
            self._ios[scheme] = load_file_io(self.io_properties, path)
        return self._ios[scheme]

    @property
    def unreadable_tables(self) -> dict[str, dict[str, str]]:
        return {k: v for k, v in self.table_errors.items() if v}

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

    def add_content(self, content: Content) -> list[str]:
        """Mark everything a table state reaches; returns the files newly reached."""
        if content.type is ContentType.ICEBERG_TABLE:
            self.table_ids.add(content.id)
            self.table_errors.setdefault(content.id, {})
            self._current = content.id
            try:
                location = content.fields.get("metadata_location")
                if isinstance(location, str) and location:
                    return self.add_metadata(location)
                self._flag(f"content {content.id}", "the table state has no metadata_location")
            finally:
                self._current = None
        elif content.type is ContentType.DELTA_TABLE:
            self.table_ids.add(content.id)
            location = content.fields.get("location")
            if isinstance(location, str) and location:
                # Delta reachability (the _delta_log) is not implemented: never touch it
                self.protected_roots.add(normalize_path(location))
                self.delta_locations.setdefault(content.id, set()).add(location)
        return []

    def add_metadata(self, metadata_location: str) -> list[str]:
        """Follow one metadata.json (once) down to its data files."""
        key = normalize_path(metadata_location)
        if key in self._states:  # followed already (maybe for another table id)
            self._attribute(key)
            return []
        self._states[key] = []
        bad = self._bad_below[key] = set()
        added: list[str] = []
        self._mark(key, added)
        refused = self._refused(metadata_location, "metadata file")
        if refused:
            self._flag(key, refused)
            bad.add(key)
            return added
        try:
            metadata = self._read_json(metadata_location)
        except Exception as exc:  # noqa: BLE001 - any read failure means "unknown"
            self._flag(key, f"{type(exc).__name__}: {exc}")
            bad.add(key)
            return added
        self.metadata_read += 1
        self.reads[key] += 1
        self._states[key] = _named_locations(metadata)
        self._attribute(key)
        for entry in metadata.get("metadata-log") or []:
            if isinstance(entry, dict) and isinstance(entry.get("metadata-file"), str):
                self._mark(normalize_path(entry["metadata-file"]), added)
        for stats_key in ("statistics", "partition-statistics"):
            for stats in metadata.get(stats_key) or []:
                if isinstance(stats, dict) and isinstance(stats.get("statistics-path"), str):
                    self._mark(normalize_path(stats["statistics-path"]), added)
        for snapshot in metadata.get("snapshots") or []:
            manifest_list = snapshot.get("manifest-list") if isinstance(snapshot, dict) \
                else None
            if isinstance(manifest_list, str) and manifest_list:
                bad |= self._add_manifest_list(manifest_list, added)
            else:  # format v1 without manifest lists, or a malformed snapshot
                self._flag(key, "a snapshot without a manifest list (v1 inline manifests) "
                                "is not supported")
                bad.add(key)
        return added

    def _attribute(self, key: str) -> None:
        """Credit the locations (and read errors) of a followed metadata file to the
        current table id, also when another table id followed it first."""
        if self._current is None:
            return
        self.table_locations.setdefault(self._current, set()).update(self._states[key])
        for path in self._bad_below.get(key, ()):
            self._flag(path, self.unreadable[path])

    def followed(self, metadata_location: str) -> bool:
        return normalize_path(metadata_location) in self._states

    def locations_of(self, metadata_location: str) -> list[str]:
        """The locations a metadata file names, read without following its snapshots
        (for tables no retained commit holds any more); raises if it cannot be read."""
        key = normalize_path(metadata_location)
        if key in self._states and key not in self.unreadable:
            return self._states[key]
        metadata = self._read_json(metadata_location)
        return _named_locations(metadata)

    def _mark(self, path: str, added: list[str]) -> None:
        if path not in self.reachable:
            self.reachable.add(path)
            added.append(path)

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
        """The paths a manifest list or manifest lists (`gc_avro.read_paths`), counted as
        one read of `key`; None, with `key` recorded as unreadable, if it cannot be read."""
        from spark_lakeversion.gc_avro import read_paths

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

    def _add_manifest_list(self, path: str, added: list[str]) -> set[str]:
        """Follow one manifest list (once); returns the unreadable files at or below it."""
        key = normalize_path(path)
        self._mark(key, added)
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
            self._mark(mkey, added)
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
                self._mark(normalize_path(file_path), added)
        return bad

    @property
    def max_reads_per_file(self) -> int:
        return max(self.reads.values(), default=0)


def _named_locations(metadata: Mapping[str, Any]) -> list[str]:
    """The table location and `write.*.path` properties a metadata document names: the
    only places gc takes a table's directories from."""
    out: list[str] = []
    location = metadata.get("location")
    if isinstance(location, str) and location:
        out.append(location)
    properties = metadata.get("properties")
    if isinstance(properties, Mapping):
        for prop in _PATH_PROPERTIES:
            value = properties.get(prop)
            if isinstance(value, str) and value:
                out.append(value)
    return out


# ---- the store side -------------------------------------------------------------------------


@dataclass
class _History:
    """What the store retains right now: roots and every retained commit's table states."""

    heads: dict[str, str] = field(default_factory=dict)  # ref name -> head
    reflog_heads: set[str] = field(default_factory=set)
    commits: dict[str, Commit] = field(default_factory=dict)
    contents: dict[str, Content] = field(default_factory=dict)  # canonical -> table state
    keys: dict[str, set[str]] = field(default_factory=dict)  # table id -> keys it held
    _listed: set[str] = field(default_factory=set)  # commits whose states are in `contents`

    def signature(self) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
        return tuple(sorted(self.heads.items())), frozenset(self.reflog_heads)


def _reflog_heads(store: VersionStore, since: datetime, names: set[str]) -> set[str]:
    """Heads `ref#<time>` can resolve to for a time within the window, for the existing
    refs `names` (from the store's public reflog)."""
    rows = ((e.name, e.head, to_us(e.timestamp)) for e in store.reflog(since))
    return reflog_heads(rows, to_us(since), names)


def _all_contents(store: VersionStore) -> Iterator[Content]:
    """Every table state the store ever recorded, to find the locations of tables no
    retained commit holds any more."""
    return store.iter_table_states()


def _read_history(store: VersionStore, cutoff: datetime, history: _History) -> None:
    """(Re)read refs and reflog, walk the retained commits, collect their table states.

    The walk is `spark_lakeversion.versioning.retention.walk_retained`, the same rule the store
    applies to refuse time travel past gc (`HistoryCollected`). Commits are immutable, so
    those already in `history` are not listed again; a commit with a retained parent costs
    one diff, not a full listing.
    """
    history.heads = {r.name: r.head for r in store.list_refs()}
    history.reflog_heads = _reflog_heads(store, cutoff, set(history.heads))
    roots = set(history.heads.values()) | history.reflog_heads
    walk_retained(roots, cutoff, store.get_commit, history.commits)
    # states: oldest first, so that a child's retained parent is listed before it
    pending = sorted((c for c in history.commits.values() if c.id not in history._listed),
                     key=lambda c: c.timestamp)
    for commit in pending:
        base = next((p for p in commit.parents if p in history._listed), None)
        if base is not None:
            states = [(str(d.key), d.to_content) for d in store.diff(base, commit.id)
                      if d.to_content is not None]
        else:
            states = [(str(k), c) for k, c in store.list_keys(commit.id)]
        for key, content in states:
            if content.is_table:
                history.contents.setdefault(content.canonical(), content)
                history.keys.setdefault(content.id, set()).add(key)
        history._listed.add(commit.id)


# ---- the report -----------------------------------------------------------------------------


@dataclass
class GcReport:
    """What a gc run found and did; `to_dict()` is the JSON report (CLI, REST, bench)."""

    dry_run: bool
    now: datetime
    older_than: timedelta
    keep_commits_since: timedelta
    refs: int = 0
    retained_commits: int = 0
    tables: int = 0
    table_states: int = 0
    locations: list[str] = field(default_factory=list)
    protected_locations: list[str] = field(default_factory=list)
    files_listed: int = 0
    files_reachable: int = 0
    metadata_files_read: int = 0
    manifest_lists_read: int = 0
    manifests_read: int = 0
    manifests_total: int = 0
    manifest_references: int = 0
    max_reads_per_file: int = 0
    rechecks: int = 0
    spared_by_recheck: int = 0
    kept_young: int = 0
    bytes_kept_young: int = 0
    garbage: list[ListedFile] = field(default_factory=list)
    deleted: int = 0
    bytes_reclaimed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    #: tables gc left alone, each {"content_id", "keys", "locations", "reasons"}: a location
    #: outside the allowed roots or shared with another table, or unreadable history
    skipped_tables: list[dict[str, Any]] = field(default_factory=list)
    gc_epoch: int | None = None  # the epoch this run recorded (None for a dry run)
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GcReport:
        """The report back from its JSON document (what `POST /api/v1/gc` answers)."""
        report = cls(dry_run=bool(data["dry_run"]), now=datetime.fromisoformat(data["now"]),
                     older_than=timedelta(seconds=data["older_than_seconds"]),
                     keep_commits_since=timedelta(seconds=data["keep_commits_since_seconds"]))
        for name in ("refs", "retained_commits", "tables", "table_states", "files_listed",
                     "files_reachable", "metadata_files_read", "manifest_lists_read",
                     "manifests_read", "manifests_total", "manifest_references",
                     "max_reads_per_file", "rechecks", "spared_by_recheck", "kept_young",
                     "bytes_kept_young", "bytes_reclaimed"):
            setattr(report, name, int(data.get(name, 0)))
        report.deleted = int(data.get("deleted_files", 0))
        report.locations = list(data.get("locations", []))
        report.protected_locations = list(data.get("protected_locations", []))
        report.garbage = [ListedFile(f["path"], int(f["size"]),
                                     datetime.fromisoformat(f["mtime"]) if f.get("mtime")
                                     else None) for f in data.get("files", [])]
        report.errors = list(data.get("errors", []))
        report.skipped_tables = list(data.get("skipped_tables", []))
        report.gc_epoch = data.get("gc_epoch")
        report.seconds = dict(data.get("seconds", {}))
        return report

    @property
    def garbage_bytes(self) -> int:
        return sum(f.size for f in self.garbage)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "older_than_seconds": self.older_than.total_seconds(),
            "keep_commits_since_seconds": self.keep_commits_since.total_seconds(),
            "grace_cutoff": (self.now - self.older_than).isoformat(),
            "history_cutoff": (self.now - self.keep_commits_since).isoformat(),
            "refs": self.refs,
            "retained_commits": self.retained_commits,
            "tables": self.tables,
            "table_states": self.table_states,
            "locations": self.locations,
            "protected_locations": self.protected_locations,
            "files_listed": self.files_listed,
            "files_reachable": self.files_reachable,
            "metadata_files_read": self.metadata_files_read,
            "manifest_lists_read": self.manifest_lists_read,
            "manifests_read": self.manifests_read,
            "manifests_total": self.manifests_total,
            "manifest_references": self.manifest_references,
            "max_reads_per_file": self.max_reads_per_file,
            "rechecks": self.rechecks,
            "spared_by_recheck": self.spared_by_recheck,
            "kept_young": self.kept_young,
            "bytes_kept_young": self.bytes_kept_young,
            "garbage_files": len(self.garbage),
            "garbage_bytes": self.garbage_bytes,
            "deleted_files": self.deleted,
            "bytes_reclaimed": self.bytes_reclaimed,
            "files": [f.to_dict() for f in self.garbage],
            "errors": self.errors,
            "skipped_tables": self.skipped_tables,
            "gc_epoch": self.gc_epoch,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


# ---- the run --------------------------------------------------------------------------------


def compute_reachability(store: VersionStore, *,
                         keep_commits_since: timedelta | str = DEFAULT_KEEP_COMMITS_SINCE,
                         now: datetime | None = None,
                         io_properties: Mapping[str, str] | None = None,
                         roots: AllowedRoots | Iterable[str] | None = None
                         ) -> tuple[Reachability, int, int]:
    """Reachability of the retained history alone (no listing, no deleting): for the
    benchmark and for tools that only want to know. Returns (reachability, retained
    commits, table states)."""
    now = now or datetime.now(timezone.utc)
    cutoff = now - parse_duration(keep_commits_since)
    history = _History()
    _read_history(store, cutoff, history)
    reach = Reachability(io_properties, _allowed(roots) if roots is not None else None)
    for content in history.contents.values():
        reach.add_content(content)
    return reach, len(history.commits), len(history.contents)


def _allowed(roots: AllowedRoots | Iterable[str]) -> AllowedRoots:
    return roots if isinstance(roots, AllowedRoots) else AllowedRoots(list(roots))


def check_grace(grace: timedelta, force: bool) -> None:
    """`InvalidInput` for a grace period below `MIN_OLDER_THAN` unless forced."""
    if grace < MIN_OLDER_THAN and not force:
        raise InvalidInput(
            f"a grace period (--older-than) of {grace.total_seconds():g}s is below the minimum "
            f"of {int(MIN_OLDER_THAN.total_seconds() // 3600)}h: files of writes still in "
            "flight could be deleted; use --force (force=True) to go lower on a local store")


def _roots_to_list(roots: Iterable[str]) -> list[str]:
    """Distinct roots, dropping those inside another root (listed once, by the outer)."""
    out: list[str] = []
    for root in sorted(set(roots)):
        if not any(_under(root, kept) for kept in out):
            out.append(root)
    return out


def _too_broad(location: Location) -> bool:
    """A file-system root or a bare bucket: too much else may live there."""
    return location.path == "/"


@dataclass
class _Ownership:
    """Which table id owns which directories, and the tables gc must leave alone."""

    owned: dict[str, list[Location]] = field(default_factory=dict)  # table id -> locations
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)  # table id -> entry
    _by_uri: dict[str, str] | None = field(default=None, repr=False)

    def owner_of(self, path: str) -> str | None:
        """The table id owning the directory `path` (a listed, normalized URI) lies in;
        looked up by the path's ancestors, so it costs its depth, not the table count."""
        if self._by_uri is None:
            self._by_uri = {loc.uri: table_id for table_id, locs in self.owned.items()
                            for loc in locs}
        by_uri = self._by_uri
        candidate = path
        while True:
            owner = by_uri.get(candidate)
            if owner is not None:
                return owner
            parent, sep, _ = candidate.rpartition("/")
            if not sep or parent.endswith("://"):
                return None  # a file-system or bucket root is never owned
            candidate = parent


def _assess(reach: Reachability, roots: AllowedRoots, history: _History,
            dropped: Mapping[str, set[str]], content_errors: Mapping[str, dict[str, str]]
            ) -> _Ownership:
    """Every table id's locations checked: strictly parsed, under the allowed roots, not
    overlapping (equal to, containing or inside) a location of another table id, and its
    history readable. A table failing any check is skipped whole: none of its locations is
    listed, and its readable files still count as reachable. A location outside the roots
    claims nothing (so one bad content naming the warehouse's parent does not stop gc for
    every table); locations inside the roots overlap whatever else they contain."""
    named: dict[str, set[str]] = {}
    for source in (reach.table_locations, dropped, reach.delta_locations):
        for table_id, texts in source.items():
            named.setdefault(table_id, set()).update(texts)
    reasons: dict[str, list[str]] = {}
    parsed: dict[str, list[Location]] = {}
    for table_id, table_texts in named.items():
        for text in sorted(table_texts):
            try:
                location = parse_location(text, "table location")
            except InvalidInput as exc:
                reasons.setdefault(table_id, []).append(exc.message)
                continue
            if not roots.contains(location):
                # void: never listed, and no claim on the directories inside it (its
                # readable files still count as reachable wherever they lie)
                reasons.setdefault(table_id, []).append(
                    f"location {location} is outside the allowed locations "
                    f"({roots.describe()})")
                continue
            parsed.setdefault(table_id, []).append(location)
            if _too_broad(location):
                reasons.setdefault(table_id, []).append(
                    f"location {location} is a file-system or bucket root")
    by_location: dict[Location, set[str]] = {}
    for table_id, locations in parsed.items():
        for location in locations:
            by_location.setdefault(location, set()).add(table_id)
    for table_id, locations in parsed.items():
        for location in locations:
            ancestor: Location | None = location
            while ancestor is not None:
                for other in sorted(by_location.get(ancestor, set()) - {table_id}):
                    for a, b, loc, other_loc in ((table_id, other, location, ancestor),
                                                 (other, table_id, ancestor, location)):
                        reasons.setdefault(a, []).append(
                            f"location {loc} overlaps location {other_loc} of table {b}")
                ancestor = _parent(ancestor)
    for table_id, errors in list(reach.unreadable_tables.items()) + list(content_errors.items()):
        for path, error in sorted(errors.items()):
            reasons.setdefault(table_id, []).append(f"cannot read {path}: {error}")
    ownership = _Ownership()
    for table_id, locations in parsed.items():
        if table_id not in reasons and table_id not in reach.delta_locations:
            ownership.owned[table_id] = locations
    for table_id, why in reasons.items():
        ownership.skipped[table_id] = {
            "content_id": table_id,
            "keys": sorted(history.keys.get(table_id, ())),
            "locations": sorted(named.get(table_id, ())),
            "reasons": list(dict.fromkeys(why)),
        }
    return ownership


def _parent(location: Location) -> Location | None:
    if location.path == "/":
        return None
    parent = location.path.rpartition("/")[0] or "/"
    return Location(location.scheme, location.authority, parent)


def _dropped_tables(store: VersionStore, reach: Reachability, roots: AllowedRoots
                    ) -> tuple[dict[str, set[str]], dict[str, dict[str, str]]]:
    """(table id -> locations, table id -> {metadata location: error}) for the states
    no retained commit holds.

    The locations of tables no retained commit holds any more (dropped tables, deleted
    branches) come from one readable metadata file of theirs (its `location` and
    `write.*.path`), never from where a metadata file lies. A state naming a metadata file
    that is not a strict location under the roots is an error of its table id (an old
    store may hold such contents), so that table id is never collected."""
    dropped: dict[str, set[str]] = {}
    errors: dict[str, dict[str, str]] = {}
    for content in _all_contents(store):
        if content.type is ContentType.DELTA_TABLE:
            reach.add_content(content)  # protect every Delta location ever seen
            continue
        if content.type is not ContentType.ICEBERG_TABLE:
            continue
        location = content.fields.get("metadata_location")
        if not isinstance(location, str) or not location:
            errors.setdefault(content.id, {})[f"content {content.id}"] = \
                "a table state without a metadata_location"
            continue
        if reach.followed(location):
            continue  # a retained state: checked (and reported) when it was followed
        try:
            roots.check(location, "metadata location")
        except InvalidInput as exc:
            errors.setdefault(content.id, {})[location] = exc.message
            continue
        if content.id in reach.table_ids or content.id in dropped:
            continue  # its directories are known (retained, or read from another state)
        try:
            names = reach.locations_of(location)
        except FileNotFoundError:
            continue  # collected already: nothing left to find its directory by
        except Exception as exc:  # noqa: BLE001 - report, list nothing for it
            errors.setdefault(content.id, {})[location] = f"{type(exc).__name__}: {exc}"
            continue
        dropped[content.id] = set(names)
    return dropped, errors


def collect_garbage(store: VersionStore, *,
                    roots: AllowedRoots | Iterable[str] | None = None,
                    older_than: timedelta | str = DEFAULT_OLDER_THAN,
                    keep_commits_since: timedelta | str = DEFAULT_KEEP_COMMITS_SINCE,
                    dry_run: bool = False, force: bool = False, now: datetime | None = None,
                    io_properties: Mapping[str, str] | None = None) -> GcReport:
    """Delete (or with `dry_run` only report) unreachable files older than `older_than`.

    Only files under the locations of tables that lie under `roots` (the warehouse and any
    allowed location) and that no other table id shares are listed or deleted; a table
    failing that, or with unreadable history, is reported in `skipped_tables` and left
    alone while gc goes on for the rest. `older_than` below `MIN_OLDER_THAN` needs `force`.
    On a store behind a server (`RestVersionStore`) gc runs on the server, with its roots.
    Refuses (`ConflictError`, nothing deleted) when refs keep moving through every
    re-check.
    """
    grace = parse_duration(older_than)
    keep = parse_duration(keep_commits_since)
    check_grace(grace, force)
    remote = _run_on_server(store, grace, keep, dry_run, now, roots)
    if remote is not None:
        return remote
    if roots is None:
        raise InvalidInput("gc needs the allowed roots (the warehouse and any allowed "
                           "location): nothing outside them is listed or deleted")
    allowed = _allowed(roots)
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise InvalidInput("`now` must be timezone-aware")
    history_cutoff = now - keep
    grace_cutoff = now - grace
    report = GcReport(dry_run=dry_run, now=now, older_than=grace, keep_commits_since=keep)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        report.seconds[name] = report.seconds.get(name, 0.0) + time.perf_counter() - clock
        clock = time.perf_counter()

    # 0. a real run first records its epoch and cutoffs: from now on a commit adding files
    #    older than the cutoff, or restoring history older than the window, is refused
    if not dry_run:
        report.gc_epoch = store.begin_gc(grace_cutoff, history_cutoff).epoch

    # 1. what the store retains now, and where its tables live
    history = _History()
    _read_history(store, history_cutoff, history)
    reach = Reachability(io_properties, allowed)
    for content in list(history.contents.values()):
        reach.add_content(content)
    dropped, content_errors = _dropped_tables(store, reach, allowed)
    ownership = _assess(reach, allowed, history, dropped, content_errors)
    lap("reachability")

    # 2. list (before the fresh read, so a file committed meanwhile is seen as reachable)
    filesystems = FileSystems()
    listed: dict[str, ListedFile] = {}
    listed_roots = _roots_to_list(loc.uri for locs in ownership.owned.values() for loc in locs)
    for root in listed_roots:
        try:
            for info in filesystems.list(root):
                listed[info.path] = info
        except Exception as exc:  # noqa: BLE001 - an unlistable root is skipped, not guessed
            report.errors.append({"path": root, "error": f"{type(exc).__name__}: {exc}"})
    lap("listing")

    # 3. re-read the store and add whatever it reaches now
    _read_history(store, history_cutoff, history)
    for content in list(history.contents.values()):
        reach.add_content(content)
    ownership = _assess(reach, allowed, history, dropped, content_errors)
    lap("recheck")

    def garbage_of(files: Iterable[ListedFile]) -> list[ListedFile]:
        return [f for f in files if _owner(f.path) not in reach.reachable
                and not any(_under(f.path, p) for p in reach.protected_roots)
                and ownership.owner_of(f.path) is not None]

    unreached = garbage_of(listed.values())
    for info in unreached:
        if info.mtime is None or info.mtime >= grace_cutoff:
            report.kept_young += 1
            report.bytes_kept_young += info.size
    candidates = [f for f in unreached if f.mtime is not None and f.mtime < grace_cutoff]

    # 4. right before deleting: have the refs moved? then spare what they reach now
    for attempt in range(MAX_RECHECKS + 1):
        signature = history.signature()
        _read_history(store, history_cutoff, history)
        if history.signature() == signature:
            break
        report.rechecks += 1
        for content in list(history.contents.values()):
            reach.add_content(content)
        ownership = _assess(reach, allowed, history, dropped, content_errors)
        kept = len(candidates)
        candidates = garbage_of(candidates)
        report.spared_by_recheck += kept - len(candidates)
        if attempt == MAX_RECHECKS:
            raise ConflictError(f"refs kept moving during gc ({MAX_RECHECKS} re-checks); "
                                "nothing was deleted: run gc again")
    lap("recheck")

    report.garbage = sorted(candidates, key=lambda f: f.path)
    if not dry_run:
        for info in report.garbage:
            why = _unsafe_to_delete(info.path, ownership)
            if why:
                report.errors.append({"path": info.path, "error": f"not deleted: {why}"})
                continue
            try:
                filesystems.delete(info.path)
            except FileNotFoundError:
                continue  # someone else removed it: nothing reclaimed by us
            except OSError as exc:
                report.errors.append({"path": info.path,
                                      "error": f"{type(exc).__name__}: {exc}"})
                continue
            report.deleted += 1
            report.bytes_reclaimed += info.size
    lap("deleting")

    report.refs = len(history.heads)
    report.retained_commits = len(history.commits)
    report.tables = len(reach.table_ids)
    report.table_states = len(history.contents)
    report.locations = listed_roots
    report.protected_locations = sorted(reach.protected_roots)
    report.skipped_tables = sorted(ownership.skipped.values(), key=lambda e: e["content_id"])
    report.files_listed = len(listed)
    report.files_reachable = len(reach.reachable)
    report.metadata_files_read = reach.metadata_read
    report.manifest_lists_read = reach.manifest_lists_read
    report.manifests_read = reach.manifests_read
    report.manifests_total = len(reach.manifests)
    report.manifest_references = reach.manifest_references
    report.max_reads_per_file = reach.max_reads_per_file
    return report


def _unsafe_to_delete(path: str, ownership: _Ownership) -> str | None:
    """Last look before a local delete: the file must still lie, once symlinks are
    resolved, inside the directory of the one table that owns it."""
    owner = ownership.owner_of(path)
    if owner is None:
        return "no longer under the location of exactly one table"
    if not path.startswith("file://"):
        return None
    local = path[len("file://"):]
    if os.path.islink(local):
        return None  # deleting a link removes the link, never its target
    real_dir = os.path.realpath(os.path.dirname(local))
    for location in ownership.owned[owner]:
        if location.scheme == "file" and _under(local, location.path):
            real_root = os.path.realpath(location.path)
            if real_dir == real_root or real_dir.startswith(real_root.rstrip("/") + "/"):
                return None
    return "its directory resolves (through a symbolic link) outside its table location"


def _run_on_server(store: VersionStore, older_than: timedelta, keep: timedelta,
                   dry_run: bool, now: datetime | None,
                   roots: AllowedRoots | Iterable[str] | None) -> GcReport | None:
    """A store behind a lakeversion server: gc runs there, next to the table files, with
    the server's allowed roots and its minimum grace period (no `force` over HTTP)."""
    from spark_lakeversion.versioning.http import RestVersionStore

    if not isinstance(store, RestVersionStore):
        return None
    if now is not None:
        raise InvalidInput("`now` cannot be set for gc on a remote server")
    if roots is not None:
        raise InvalidInput("gc on a server uses the server's allowed locations (its "
                           "warehouse and --allowed-location): roots cannot be given")
    if older_than < MIN_OLDER_THAN:
        raise InvalidInput(
            f"a lakeversion server refuses a grace period below the minimum of "
            f"{int(MIN_OLDER_THAN.total_seconds() // 3600)}h; --force applies to a local "
            "store only")
    data = store.run_gc(older_than.total_seconds(), keep.total_seconds(), dry_run)
    return GcReport.from_dict(data)
