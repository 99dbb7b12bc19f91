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
`write.data.path` / `write.metadata.path`) that nothing reaches and whose modification time
is older than the grace period `older_than`. Locations of tables that no retained commit
holds any more (dropped tables, deleted branches) are found from the store's content rows.

Concurrent writers: files are listed first, then the store is read again and everything it
now reaches is added; right before deleting, the ref heads are read once more and anything
they newly reach is spared (repeated until they stand still). A writer's files are younger
than the grace period until it commits, so an in-flight commit is never collected as long
as it takes less than `older_than`.

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
from spark_lakeversion.store.base import VersionStore
from spark_lakeversion.store.model import Commit, Content, ContentType

#: grace period: unreached files younger than this are kept (in-flight writes); a Spark job
#: can run for hours before it commits, so the default is a full day
DEFAULT_OLDER_THAN = timedelta(days=1)
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
    manifest is read at most once per instance (all caches are keyed by normalized path)."""

    def __init__(self, io_properties: Mapping[str, str] | None = None) -> None:
        self.io_properties = dict(io_properties or {})
        self.reachable: set[str] = set()
        self.table_roots: set[str] = set()  # table locations (and write.*.path) to list
        self.protected_roots: set[str] = set()  # formats we cannot read yet (Delta): keep all
        self.table_ids: set[str] = set()
        self.reads: Counter[str] = Counter()  # normalized path -> times read
        self.metadata_read = 0
        self.manifest_lists_read = 0
        self.manifests_read = 0
        self.manifests: set[str] = set()  # every manifest path reached
        self.manifest_references = 0  # manifest entries of all lists read: reads saved
        self.unreadable: dict[str, str] = {}
        self._states: set[str] = set()  # metadata locations already followed
        self._lists: set[str] = set()
        self._ios: dict[str, Any] = {}

    def _io(self, path: str) -> Any:
        from pyiceberg.io import load_file_io

        scheme = path.partition("://")[0] if "://" in path else "file"
        if scheme not in self._ios:
            self._ios[scheme] = load_file_io(self.io_properties, path)
        return self._ios[scheme]

    def add_content(self, content: Content) -> list[str]:
        """Mark everything a table state reaches; returns the files newly reached."""
        if content.type is ContentType.ICEBERG_TABLE:
            self.table_ids.add(content.id)
            location = content.fields.get("metadata_location")
            if isinstance(location, str) and location:
                return self.add_metadata(location)
        elif content.type is ContentType.DELTA_TABLE:
            self.table_ids.add(content.id)
            location = content.fields.get("location")
            if isinstance(location, str) and location:
                # Delta reachability (the _delta_log) is not implemented: never touch it
                self.protected_roots.add(normalize_path(location))
        return []

    def add_metadata(self, metadata_location: str) -> list[str]:
        """Follow one metadata.json (once) down to its data files."""
        key = normalize_path(metadata_location)
        if key in self._states:
            return []
        self._states.add(key)
        added: list[str] = []
        self._mark(key, added)
        try:
            metadata = self._read_json(metadata_location)
        except Exception as exc:  # noqa: BLE001 - any read failure means "unknown"
            self.unreadable[key] = f"{type(exc).__name__}: {exc}"
            return added
        self.metadata_read += 1
        self.reads[key] += 1
        table_location = metadata.get("location")
        if isinstance(table_location, str) and table_location:
            self.table_roots.add(normalize_path(table_location))
        properties = metadata.get("properties") or {}
        for prop in _PATH_PROPERTIES:
            if isinstance(properties.get(prop), str) and properties[prop]:
                self.table_roots.add(normalize_path(properties[prop]))
        for entry in metadata.get("metadata-log") or []:
            if isinstance(entry, dict) and entry.get("metadata-file"):
                self._mark(normalize_path(entry["metadata-file"]), added)
        for stats_key in ("statistics", "partition-statistics"):
            for stats in metadata.get(stats_key) or []:
                if isinstance(stats, dict) and stats.get("statistics-path"):
                    self._mark(normalize_path(stats["statistics-path"]), added)
        for snapshot in metadata.get("snapshots") or []:
            manifest_list = snapshot.get("manifest-list")
            if manifest_list:
                self._add_manifest_list(manifest_list, added)
            elif snapshot.get("manifests"):  # format v1 without manifest lists
                self.unreadable[key] = ("snapshot with an inline manifest array (v1 without "
                                        "manifest lists) is not supported")
        return added

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

        try:
            paths = read_paths(self._io(path), path, kind)
        except Exception as exc:  # noqa: BLE001 - any read failure means "unknown"
            self.unreadable[key] = f"{type(exc).__name__}: {exc}"
            return None
        self.reads[key] += 1
        return paths

    def _add_manifest_list(self, path: str, added: list[str]) -> None:
        key = normalize_path(path)
        self._mark(key, added)
        if key in self._lists:
            return
        self._lists.add(key)
        manifests = self._read_paths(path, key, "manifest_list")
        if manifests is None:
            return
        self.manifest_lists_read += 1
        self.manifest_references += len(manifests)
        for manifest_path in manifests:
            mkey = normalize_path(manifest_path)
            self._mark(mkey, added)
            if mkey in self.manifests:
                continue
            self.manifests.add(mkey)
            files = self._read_paths(manifest_path, mkey, "manifest")
            if files is None:
                continue
            self.manifests_read += 1
            for file_path in files:
                self._mark(normalize_path(file_path), added)

    @property
    def max_reads_per_file(self) -> int:
        return max(self.reads.values(), default=0)


# ---- the store side -------------------------------------------------------------------------


@dataclass
class _History:
    """What the store retains right now: roots and every retained commit's table states."""

    heads: dict[str, str] = field(default_factory=dict)  # ref name -> head
    reflog_heads: set[str] = field(default_factory=set)
    commits: dict[str, Commit] = field(default_factory=dict)
    contents: dict[str, Content] = field(default_factory=dict)  # canonical -> table state
    _listed: set[str] = field(default_factory=set)  # commits whose states are in `contents`

    def signature(self) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
        return tuple(sorted(self.heads.items())), frozenset(self.reflog_heads)


def _reflog_heads(store: VersionStore, since: datetime, names: set[str]) -> set[str]:
    """Heads `ref#<time>` can resolve to for a time within the window, for the existing
    refs `names`.

    Only the SQL store keeps a reflog; other stores contribute none (their heads and
    history are still retained).
    """
    from spark_lakeversion.store.sql import SqlVersionStore, reflog_table

    if not isinstance(store, SqlVersionStore):
        return set()
    import sqlalchemy as sa

    since_us = int(since.timestamp() * 1_000_000)
    heads: set[str] = set()
    with store._read() as conn:  # noqa: SLF001 - read-only, the store's own connection
        rows = conn.execute(sa.select(reflog_table.c.name, reflog_table.c.head,
                                      reflog_table.c.ts_us, reflog_table.c.seq)
                            .order_by(reflog_table.c.ts_us, reflog_table.c.seq)).all()
    before: dict[str, str | None] = {}
    for name, head, ts_us, _seq in rows:
        if name not in names:
            continue
        if ts_us < since_us:
            before[name] = head  # the entry in force when the window opens
        elif head:
            heads.add(head)
    heads.update(h for h in before.values() if h)
    return heads


def _all_contents(store: VersionStore) -> Iterator[Content]:
    """Every table state the store ever recorded (the SQL store keeps them all), to find
    the locations of tables no retained commit holds any more."""
    from spark_lakeversion.store.sql import SqlVersionStore, contents_table

    if not isinstance(store, SqlVersionStore):
        return
    import sqlalchemy as sa

    with store._read() as conn:  # noqa: SLF001 - read-only, the store's own connection
        rows = conn.execute(sa.select(contents_table.c.data)).all()
    for (data,) in rows:
        content = Content.from_dict(json.loads(data))
        if content.is_table:
            yield content


def _read_history(store: VersionStore, cutoff: datetime, history: _History) -> None:
    """(Re)read refs and reflog, walk the retained commits, collect their table states.

    Commits are immutable, so those already in `history` are not listed again; a commit
    with a retained parent costs one diff, not a full listing.
    """
    history.heads = {r.name: r.head for r in store.list_refs()}
    history.reflog_heads = _reflog_heads(store, cutoff, set(history.heads))
    roots = set(history.heads.values()) | history.reflog_heads
    stack = [c for c in roots if c not in history.commits]
    for commit_id in stack:
        history.commits[commit_id] = store.get_commit(commit_id)
    while stack:
        commit = history.commits[stack.pop()]
        for parent in commit.parents:
            if parent in history.commits:
                continue
            parent_commit = store.get_commit(parent)
            if parent_commit.timestamp >= cutoff:
                history.commits[parent] = parent_commit
                stack.append(parent)
    # states: oldest first, so that a child's retained parent is listed before it
    pending = sorted((c for c in history.commits.values() if c.id not in history._listed),
                     key=lambda c: c.timestamp)
    for commit in pending:
        base = next((p for p in commit.parents if p in history._listed), None)
        if base is not None:
            states = [d.to_content for d in store.diff(base, commit.id)
                      if d.to_content is not None]
        else:
            states = [c for _, c in store.list_keys(commit.id)]
        for content in states:
            if content.is_table:
                history.contents.setdefault(content.canonical(), content)
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
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


# ---- the run --------------------------------------------------------------------------------


def compute_reachability(store: VersionStore, *,
                         keep_commits_since: timedelta | str = DEFAULT_KEEP_COMMITS_SINCE,
                         now: datetime | None = None,
                         io_properties: Mapping[str, str] | None = None
                         ) -> tuple[Reachability, int, int]:
    """Reachability of the retained history alone (no listing, no deleting): for the
    benchmark and for tools that only want to know. Returns (reachability, retained
    commits, table states)."""
    now = now or datetime.now(timezone.utc)
    cutoff = now - parse_duration(keep_commits_since)
    history = _History()
    _read_history(store, cutoff, history)
    reach = Reachability(io_properties)
    for content in history.contents.values():
        reach.add_content(content)
    return reach, len(history.commits), len(history.contents)


def _roots_to_list(roots: Iterable[str]) -> list[str]:
    """Distinct roots, dropping those inside another root (listed once, by the outer)."""
    out: list[str] = []
    for root in sorted(set(roots)):
        if not any(_under(root, kept) for kept in out):
            out.append(root)
    return out


def _too_broad(root: str) -> bool:
    """A file-system root or a bare bucket: too much else may live there."""
    scheme, _, rest = root.partition("://")
    rest = rest.strip("/")
    return not rest or (scheme != "file" and "/" not in rest)


def _derived_location(metadata_location: str) -> str | None:
    """`<location>/metadata/<file>` -> `<location>`, for tables whose metadata is gone."""
    parent, _, _ = normalize_path(metadata_location).rpartition("/")
    base, _, name = parent.rpartition("/")
    return base if name == "metadata" and base else None


def collect_garbage(store: VersionStore, *,
                    older_than: timedelta | str = DEFAULT_OLDER_THAN,
                    keep_commits_since: timedelta | str = DEFAULT_KEEP_COMMITS_SINCE,
                    dry_run: bool = False, now: datetime | None = None,
                    io_properties: Mapping[str, str] | None = None) -> GcReport:
    """Delete (or with `dry_run` only report) unreachable files older than `older_than`.

    Refuses (`ConflictError`, nothing deleted) when a file the retained history reaches
    cannot be read, or when refs keep moving through every re-check.
    """
    grace = parse_duration(older_than)
    keep = parse_duration(keep_commits_since)
    remote = _run_on_server(store, grace, keep, dry_run, now)
    if remote is not None:
        return remote
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

    # 1. what the store retains now, and where its tables live
    history = _History()
    _read_history(store, history_cutoff, history)
    reach = Reachability(io_properties)
    for content in list(history.contents.values()):
        reach.add_content(content)
    roots = set(reach.table_roots)
    for content in _all_contents(store):  # tables no retained commit holds any more
        if content.type is ContentType.DELTA_TABLE:
            reach.add_content(content)  # protect every Delta location ever seen
            continue
        location = content.fields.get("metadata_location")
        if isinstance(location, str) and normalize_path(location) not in reach.reachable:
            derived_root = _derived_location(location)
            if derived_root:
                roots.add(derived_root)
    lap("reachability")

    # 2. list (before the fresh read, so a file committed meanwhile is seen as reachable)
    filesystems = FileSystems()
    listed: dict[str, ListedFile] = {}
    for root in _roots_to_list(roots):
        if _too_broad(root):
            report.errors.append({"path": root, "error": "a table location at a file-system "
                                  "or bucket root is never listed: nothing there is deleted"})
            continue
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
    lap("recheck")
    if reach.unreadable:
        raise _unreadable_error(reach.unreadable)

    def garbage_of(files: Iterable[ListedFile]) -> list[ListedFile]:
        return [f for f in files if _owner(f.path) not in reach.reachable
                and not any(_under(f.path, p) for p in reach.protected_roots)]

    unreached = garbage_of(listed.values())
    for info in unreached:
        if info.mtime is None or info.mtime > grace_cutoff:
            report.kept_young += 1
            report.bytes_kept_young += info.size
    candidates = [f for f in unreached if f.mtime is not None and f.mtime <= grace_cutoff]

    # 4. right before deleting: have the refs moved? then spare what they reach now
    for attempt in range(MAX_RECHECKS + 1):
        signature = history.signature()
        _read_history(store, history_cutoff, history)
        if history.signature() == signature:
            break
        report.rechecks += 1
        for content in list(history.contents.values()):
            reach.add_content(content)
        if reach.unreadable:
            raise _unreadable_error(reach.unreadable)
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
    report.locations = _roots_to_list(roots)
    report.protected_locations = sorted(reach.protected_roots)
    report.files_listed = len(listed)
    report.files_reachable = len(reach.reachable)
    report.metadata_files_read = reach.metadata_read
    report.manifest_lists_read = reach.manifest_lists_read
    report.manifests_read = reach.manifests_read
    report.manifests_total = len(reach.manifests)
    report.manifest_references = reach.manifest_references
    report.max_reads_per_file = reach.max_reads_per_file
    return report


def _run_on_server(store: VersionStore, older_than: timedelta, keep: timedelta,
                   dry_run: bool, now: datetime | None) -> GcReport | None:
    """A store behind a lakeversion server: gc runs there, next to the table files."""
    try:
        from spark_lakeversion.server.client import RestVersionStore
    except ImportError:  # the HTTP client is optional: then no store is remote
        return None
    if not isinstance(store, RestVersionStore):
        return None
    if now is not None:
        raise InvalidInput("`now` cannot be set for gc on a remote server")
    data = store._call("POST", "/gc", body={  # noqa: SLF001 - the client's own transport
        "older_than": older_than.total_seconds(),
        "keep_commits_since": keep.total_seconds(), "dry_run": dry_run})
    return GcReport.from_dict(data)


def _unreadable_error(unreadable: Mapping[str, str]) -> ConflictError:
    shown = "; ".join(f"{p}: {e}" for p, e in sorted(unreadable.items())[:5])
    more = f" (and {len(unreadable) - 5} more)" if len(unreadable) > 5 else ""
    return ConflictError(
        f"gc refused: {len(unreadable)} file(s) the retained history reaches cannot be "
        f"read, so what they reference is unknown; nothing was deleted: {shown}{more}")

