"""The commit side of gc's epoch protocol: files a commit adds must postdate gc's cutoff.

`lakeversion gc` records, before it reads the store, a new epoch and its cutoff (files
with an older modification time may be deleted by it; `spark_lakeversion.model.gc`).
Every commit that adds files (Iceberg REST, `/api/v1/commits`, register, Delta writes;
`fence` asks each state's format which files it adds) does the same as a commit through
the Iceberg REST catalog that adds snapshots:

1. reads the gc state (epoch E, cutoff C);
2. checks every file it adds, as the state's format names them (`TableFormat.added_files`;
   for Iceberg the manifest list, the manifests not carried over from the parent snapshot,
   and the data and delete files those manifests add): each must exist and be modified at
   or after C (`check_added`);
3. commits with ``expected_gc_epoch=E``: the store refuses if a gc run began meanwhile.

So a commit landing after gc recorded its cutoff was checked against that very cutoff, and
gc deletes only files modified before it; a commit landing earlier is seen by gc's reads.
A refused commit is a definite CommitFailed (409): nothing was committed, the client may
write its files again and retry.

While no gc has run for real (no cutoff), step 2 has nothing to check; step 3 still fences
the commit against a run that begins in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.model import Content, GcState, Key


class FilesMayBeCollected(ConflictError):
    """A commit adding files gc may already have collected (missing, or older than its
    cutoff): refused, nothing written; write the files again and retry (409)."""

#: at most this many problems are named in one refusal
_SHOWN = 5


def check_added(state: GcState, files: Iterator[tuple[str, str]],
                io_properties: Mapping[str, str] | None = None) -> list[str]:
    """Problems with the files a format says a commit adds (`TableFormat.added_files`:
    (what, path) pairs, read lazily): the first missing or too old one, or the first that
    cannot be read; nothing more is read after it."""
    if state.cutoff is None:
        return []
    stat = _Stat(state.cutoff, io_properties)
    what = "file"
    try:
        for what, path in files:
            problems = stat.check([path], what)
            if problems:
                return problems
    except Exception as exc:  # noqa: BLE001 - unreadable: the commit cannot be checked
        return [f"a {what} cannot be read: {type(exc).__name__}: {exc}"]
    finally:
        close = getattr(files, "close", None)
        if close is not None:
            close()
    return []


def fence(store: Any, puts: Sequence[tuple[Key, Content | None, Content]],
          io_properties: Mapping[str, str] | None = None) -> int:
    """The gc epoch a commit of `puts` ((key, the state at the key before, the new state))
    must land in, once the files each adds are checked; `FilesMayBeCollected` otherwise.

    The same fence for every surface that commits files (Iceberg REST, `/api/v1/commits`,
    register, Delta writes), format-neutral: each state's format names the files it adds.
    Only states of a table that already owns its location are checked: gc lists and
    deletes only under locations the store's index knows (`gc.ownership`), so the files
    of a state at a location no table owns yet (a registered table, a new one) cannot be
    collected by a run already under way, and a run that starts later sees the commit
    (or moves the epoch, and the store refuses it)."""
    from spark_lakeversion.tableformat.base import FORMATS
    from spark_lakeversion.tableformat.validate import owned

    state: GcState = store.gc_state()
    if state.cutoff is None:
        return state.epoch
    problems: list[str] = []
    for key, base, content in puts:
        fmt = FORMATS.get(content.type)
        if fmt is None or not content.is_table or not owned(store, content, io_properties):
            continue
        found = check_added(state, fmt.added_files(base, content,
                                                   FileIOConfig.of(io_properties)),
                            io_properties)
        problems += [f"{key}: {problem}" for problem in found]
        if len(problems) >= _SHOWN:
            break
    if problems:
        raise FilesMayBeCollected(refusal(problems, state))
    return state.epoch


def check_written(state: GcState, paths: Iterable[str],
                  io_properties: Mapping[str, str] | None = None) -> list[str]:
    """Problems with files the catalog itself wrote for the commit (metadata files)."""
    if not state.cutoff:
        return []
    return _Stat(state.cutoff, io_properties).check(paths, "metadata file")


def refusal(problems: Iterable[str], state: GcState) -> str:
    shown = list(problems)
    more = f" (and {len(shown) - _SHOWN} more)" if len(shown) > _SHOWN else ""
    cutoff = state.cutoff.isoformat() if state.cutoff else "?"
    return ("the commit adds files that gc may already have collected (gc epoch "
            f"{state.epoch} deletes unreferenced files modified before {cutoff}): "
            + "; ".join(shown[:_SHOWN]) + more
            + ". Nothing was committed: write the files again and retry")


class _Stat:
    """Existence and modification time through gc's own file access (`gc.files`)."""

    def __init__(self, cutoff: datetime, io_properties: Mapping[str, str] | None) -> None:
        from spark_lakeversion.gc.files import FileSystems

        self.cutoff = cutoff
        self.filesystems = FileSystems(io_properties)

    def check(self, paths: Iterable[str], what: str) -> list[str]:
        from spark_lakeversion.locations import normalize_path

        problems = []
        for path in paths:
            try:
                info = self.filesystems.info(normalize_path(path))
            except Exception as exc:  # noqa: BLE001 - cannot look: cannot vouch for it
                problems.append(f"{what} {path}: {type(exc).__name__}: {exc}")
                continue
            if info is None:
                problems.append(f"{what} {path} does not exist")
                continue
            if info.mtime is None:
                problems.append(f"{what} {path} has no modification time")
                continue
            if info.mtime < self.cutoff:
                problems.append(f"{what} {path} was modified at {info.mtime.isoformat()}, "
                                "before gc's cutoff")
        return problems


__all__ = ["FilesMayBeCollected", "check_added", "check_written", "fence", "refusal"]
