"""The commit side of gc's epoch protocol: files a commit adds must postdate gc's cutoff.

`lakeversion gc` records, before it reads the store, a new epoch and its cutoff (files
with an older modification time may be deleted by it; `spark_lakeversion.store.gc_state`).
A commit through the Iceberg REST catalog that adds snapshots:

1. reads the gc state (epoch E, cutoff C);
2. checks every file its new snapshots add (the manifest list, the manifests not carried
   over from the parent snapshot, and the data and delete files those manifests add):
   each must exist and be modified at or after C (`check_new_files`);
3. commits with ``expected_gc_epoch=E``: the store refuses if a gc run began meanwhile.

So a commit landing after gc recorded its cutoff was checked against that very cutoff, and
gc deletes only files modified before it; a commit landing earlier is seen by gc's reads.
A refused commit is a definite CommitFailed (409): nothing was committed, the client may
write its files again and retry.

While no gc has run for real (no cutoff), step 2 has nothing to check; step 3 still fences
the commit against a run that begins in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from spark_lakeversion.store.gc_state import GcState

#: at most this many problems are named in one refusal
_SHOWN = 5


def check_new_files(state: GcState, base: Any, metadata: Any, io: Any,
                    io_properties: Mapping[str, str] | None = None) -> list[str]:
    """Problems with the files `metadata`'s snapshots add over `base` (pyiceberg
    `TableMetadata`s; `base` None for a new table): missing, or older than gc's cutoff.
    `io` reads manifests; files are looked up with the FileIO properties `io_properties`.
    An empty list: the commit may go ahead (with ``expected_gc_epoch=state.epoch``)."""
    if state.cutoff is None:
        return []
    known = {s.snapshot_id for s in (base.snapshots if base is not None else [])}
    new = [s for s in metadata.snapshots if s.snapshot_id not in known]
    problems: list[str] = []
    stat = _Stat(state.cutoff, io_properties)
    for snapshot in new:
        problems += stat.check([snapshot.manifest_list], "manifest list")
        if problems:
            continue
        try:
            manifests = snapshot.manifests(io)
            parent = metadata.snapshot_by_id(snapshot.parent_snapshot_id) \
                if snapshot.parent_snapshot_id is not None else None
            carried = {m.manifest_path for m in parent.manifests(io)} if parent else set()
        except Exception as exc:  # noqa: BLE001 - unreadable: the commit cannot be checked
            problems.append(f"manifest list {snapshot.manifest_list} cannot be read: "
                            f"{type(exc).__name__}: {exc}")
            continue
        for manifest in manifests:
            if manifest.manifest_path in carried:
                continue
            found = stat.check([manifest.manifest_path], "manifest")
            problems += found
            if found:
                continue
            try:
                entries = manifest.fetch_manifest_entry(io, discard_deleted=True)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"manifest {manifest.manifest_path} cannot be read: "
                                f"{type(exc).__name__}: {exc}")
                continue
            added = [e.data_file.file_path for e in entries
                     if int(getattr(e.status, "value", e.status)) == _ADDED]
            problems += stat.check(added, "data file")
        if len(problems) >= _SHOWN:
            break
    return problems


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


_ADDED = 1  # ManifestEntryStatus.ADDED


class _Stat:
    """Existence and modification time through gc's own file access (`gc.files`)."""

    def __init__(self, cutoff: datetime, io_properties: Mapping[str, str] | None) -> None:
        from spark_lakeversion.gc.files import FileSystems

        self.cutoff = cutoff
        self.filesystems = FileSystems(io_properties)

    def check(self, paths: Iterable[str], what: str) -> list[str]:
        from spark_lakeversion.formats.base import normalize_path

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


__all__ = ["check_new_files", "check_written", "refusal"]
