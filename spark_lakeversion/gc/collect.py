"""`lakeversion gc`: delete the files under table locations that no ref can reach any more.

Every ref shares each table's location, so no single table's own history knows which
files are garbage; only the whole store does. A file is *reachable* when some table state
in the *retained history* reaches it (`history.py` reads what the store retains through
the public `VersionStore` interface; each state's `TableFormat` says which files it reaches
and which directories its table owns: `reach.py`).

Garbage = files listed under a table's directories that nothing reaches and whose
modification time is before the grace cutoff `now - older_than` (at least
`MIN_OLDER_THAN` unless forced). The directories of tables no retained commit holds any
more (dropped tables, deleted branches) come from `VersionStore.iter_table_states()`,
each told by its format.

Fail safe: only locations under the allowed roots that exactly one table id owns are listed
(`ownership.py`). A table whose location is outside the roots, overlaps another table id's,
or whose retained history cannot be read is skipped and reported in
`GcReport.skipped_tables`; gc goes on for the rest.

Concurrent writers: a real run first records a new gc epoch and its cutoffs in the store
(`VersionStore.begin_gc`, `spark_lakeversion.model.gc`). Iceberg REST commits check
their new files against the cutoff and land only in the epoch they checked
(`spark_lakeversion.gc.fence`), and time travel to history older than the window is refused
(`HistoryCollected`). Files are listed first, then the store is read again and everything it
now reaches is added; right before deleting, the ref heads are read once more and anything
they newly reach is spared (repeated until they stand still).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from spark_lakeversion.errors import ConflictError, InvalidInput
from spark_lakeversion.gc.durations import (
    DEFAULT_KEEP_COMMITS_SINCE,
    DEFAULT_OLDER_THAN,
    MAX_RECHECKS,
    MIN_OLDER_THAN,
    check_grace,
    parse_duration,
)
from spark_lakeversion.gc.files import FileSystems, ListedFile, owner_file, roots_to_list, under
from spark_lakeversion.gc.history import History, read_history
from spark_lakeversion.gc.ownership import assess, unsafe_to_delete
from spark_lakeversion.gc.reach import Reach
from spark_lakeversion.gc.report import GcReport
from spark_lakeversion.locations import AllowedRoots
from spark_lakeversion.versioning.interface import VersionStore


class GcOnServer(Protocol):
    """A store behind a lakeversion server (the HTTP client): gc runs there, next to the
    table files, with the server's allowed roots, through its public `POST /api/v1/gc`."""

    def gc_on_server(self, *, older_than: timedelta, keep_commits_since: timedelta,
                     dry_run: bool) -> Mapping[str, Any]: ...


def compute_reachability(store: VersionStore, *,
                         keep_commits_since: timedelta | str = DEFAULT_KEEP_COMMITS_SINCE,
                         now: datetime | None = None,
                         io_properties: Mapping[str, str] | None = None,
                         roots: AllowedRoots | Iterable[str] | None = None
                         ) -> tuple[Reach, int, int]:
    """Reachability of the retained history alone (no listing, no deleting): for the
    benchmark and for tools that only want to know. Returns (reachability, retained
    commits, table states)."""
    now = now or datetime.now(timezone.utc)
    cutoff = now - parse_duration(keep_commits_since)
    history = History()
    read_history(store, cutoff, history)
    reach = Reach(_allowed(roots) if roots is not None else None, io_properties)
    for content in history.contents.values():
        reach.add(content)
    return reach, len(history.commits), len(history.contents)


def _allowed(roots: AllowedRoots | Iterable[str]) -> AllowedRoots:
    return roots if isinstance(roots, AllowedRoots) else AllowedRoots(list(roots))


def _dropped_tables(store: VersionStore, reach: Reach
                    ) -> tuple[dict[str, set[str]], dict[str, dict[str, str]]]:
    """(table id -> locations, table id -> {path: error}) for the states no retained
    commit holds (dropped tables, deleted branches), from every table state the store
    ever recorded. Each state's format tells where its table lived (Iceberg: from one
    readable metadata file, never from where a metadata file lies) and what it could not
    read; a table id with such an error is never collected."""
    dropped: dict[str, set[str]] = {}
    errors: dict[str, dict[str, str]] = {}
    retained = reach.table_ids  # their directories are known already
    for content in store.iter_table_states():
        if not content.is_table:
            continue
        known = content.id in retained or content.id in dropped
        names, problems = reach.files_for(content.type).dropped(content, known)
        if problems:
            errors.setdefault(content.id, {}).update(problems)
        if names is not None:
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
    On a store behind a server (`GcOnServer`: the HTTP client) gc runs there, with its roots.
    Refuses (`ConflictError`, nothing deleted) when refs keep moving through every
    re-check.
    """
    grace = parse_duration(older_than)
    keep = parse_duration(keep_commits_since)
    check_grace(grace, force)
    remote = _run_on_server(store, grace, keep, dry_run, now, roots, io_properties)
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
    history = History()
    read_history(store, history_cutoff, history)
    reach = Reach(allowed, io_properties)
    for content in list(history.contents.values()):
        reach.add(content)
    dropped, content_errors = _dropped_tables(store, reach)
    ownership = assess(reach, allowed, history, dropped, content_errors)
    lap("reachability")

    # 2. list (before the fresh read, so a file committed meanwhile is seen as reachable)
    filesystems = FileSystems(io_properties)
    listed: dict[str, ListedFile] = {}
    listed_roots = roots_to_list(loc.uri for locs in ownership.owned.values() for loc in locs)
    for root in listed_roots:
        try:
            for info in filesystems.list(root):
                listed[info.path] = info
        except Exception as exc:  # noqa: BLE001 - an unlistable root is skipped, not guessed
            report.errors.append({"path": root, "error": f"{type(exc).__name__}: {exc}"})
    lap("listing")

    # 3. re-read the store and add whatever it reaches now
    read_history(store, history_cutoff, history)
    for content in list(history.contents.values()):
        reach.add(content)
    ownership = assess(reach, allowed, history, dropped, content_errors)
    lap("recheck")

    def garbage_of(files: Iterable[ListedFile]) -> list[ListedFile]:
        protected = reach.protected_roots()
        return [f for f in files if owner_file(f.path) not in reach.reachable
                and not any(under(f.path, p) for p in protected)
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
        read_history(store, history_cutoff, history)
        if history.signature() == signature:
            break
        report.rechecks += 1
        for content in list(history.contents.values()):
            reach.add(content)
        ownership = assess(reach, allowed, history, dropped, content_errors)
        kept = len(candidates)
        candidates = garbage_of(candidates)
        report.spared_by_recheck += kept - len(candidates)
        if attempt == MAX_RECHECKS:
            raise ConflictError(f"refs kept moving during gc ({MAX_RECHECKS} re-checks); "
                                "nothing was deleted: run gc again")
    lap("recheck")

    report.garbage = sorted(candidates, key=lambda f: f.path)
    if not dry_run:
        deletable: dict[str, ListedFile] = {}
        for info in report.garbage:
            why = unsafe_to_delete(info.path, ownership)
            if why:
                report.errors.append({"path": info.path, "error": f"not deleted: {why}"})
                continue
            deletable[info.path] = info
        for path, error in filesystems.delete_many(list(deletable)).items():
            if error is not None:
                report.errors.append({"path": path, "error": error})
                continue
            report.deleted += 1
            report.bytes_reclaimed += deletable[path].size
    lap("deleting")

    report.refs = len(history.heads)
    report.retained_commits = len(history.commits)
    report.tables = len(reach.table_ids)
    report.table_states = len(history.contents)
    report.locations = listed_roots
    report.protected_locations = sorted(reach.protected_roots())
    report.skipped_tables = sorted(ownership.skipped.values(), key=lambda e: e["content_id"])
    report.files_listed = len(listed)
    report.files_reachable = len(reach.reachable)
    for name, value in reach.counters().items():
        setattr(report, name, value)
    return report


def runs_on_server(store: VersionStore) -> bool:
    """Whether gc over `store` runs on a server (`GcOnServer`), with the server's roots."""
    return getattr(store, "gc_on_server", None) is not None


def _run_on_server(store: VersionStore, older_than: timedelta, keep: timedelta,
                   dry_run: bool, now: datetime | None,
                   roots: AllowedRoots | Iterable[str] | None,
                   io_properties: Mapping[str, str] | None = None) -> GcReport | None:
    """gc on the server when the store is behind one (`GcOnServer`), with the server's
    allowed roots and its minimum grace period (no `force` over HTTP); else None."""
    if not runs_on_server(store):
        return None
    if now is not None:
        raise InvalidInput("`now` cannot be set for gc on a remote server")
    if roots is not None:
        raise InvalidInput("gc on a server uses the server's allowed locations (its "
                           "warehouse and --allowed-location): roots cannot be given")
    if io_properties:
        raise InvalidInput("gc on a server opens files with the server's FileIO settings "
                           "(its --io, --io-config and environment): they cannot be given")
    if older_than < MIN_OLDER_THAN:
        raise InvalidInput(
            f"a lakeversion server refuses a grace period below the minimum of "
            f"{int(MIN_OLDER_THAN.total_seconds() // 3600)}h; --force applies to a local "
            "store only")
    server: GcOnServer = store  # type: ignore[assignment]
    return GcReport.from_dict(server.gc_on_server(older_than=older_than,
                                                  keep_commits_since=keep, dry_run=dry_run))
