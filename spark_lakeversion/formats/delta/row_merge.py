"""Down to rows for a Delta merge whose rules found both sides removing the same files
(ConcurrentDeleteDelete), the target removing files the source read (ConcurrentDeleteRead),
or the target adding files where the source read (ConcurrentAppend), as copy-on-write
UPDATEs and DELETEs on both sides do.

The rows come from Delta's row reader (`rows.py`: the add actions a side changed, read
through the server's FileIO) and the format-neutral merge (`rows.merge_rows`). At row grain
Delta's isolation keeps its meaning: under ``Serializable``, and under ``WriteSerializable``
when the target's writes were not blind appends, a row the target inserted in a partition
where the source removed rows conflicts (ConcurrentAppend). A clean merge is one commit on
the target's log: the target's affected files removed, the merged rows written once into new
files in that log's directory (`writes.write_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.errors import LakeVersionError
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.codes import (
    DELTA_CONCURRENT_APPEND,
    DELTA_CONCURRENT_DELETE_DELETE,
    DELTA_CONCURRENT_DELETE_READ,
)
from spark_lakeversion.model import Conflict, Content, Key
from spark_lakeversion.rows.conflicts import row_conflict
from spark_lakeversion.rows.merge_rows import CannotMergeRows, RowMerger, RowStream, keys_meet

#: the file-level conflicts a row-level merge may settle
ROW_MERGEABLE = (DELTA_CONCURRENT_DELETE_DELETE, DELTA_CONCURRENT_DELETE_READ,
                 DELTA_CONCURRENT_APPEND)

#: why a merge whose files commute went down to rows: both sides added rows of one key
SHARED_NEW_KEYS = "SHARED_NEW_KEYS"

__all__ = ["ROW_MERGEABLE", "SHARED_NEW_KEYS", "CannotMergeRows", "DeltaRowOutcome",
           "merge_rows", "new_keys_meet"]


@dataclass
class DeltaRowOutcome:
    """Conflicts, or the target's files to remove (file ids) and the rows to write (the
    server's merge) or the files an engine wrote, checked (`staged`: pyiceberg `DataFile`s
    read against the served Iceberg schema `staged_schema`; `row_engine.py`)."""

    conflicts: list[Conflict] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    rows: RowStream | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    staged: list[Any] = field(default_factory=list)
    staged_schema: Any = None


def merge_rows(key: Key, base: Content, target: Content, source: Content,
               io_properties: Mapping[str, str], *, resolution: str | None,
               serializable: bool, memory_bytes: int, max_bytes: int) -> DeltaRowOutcome:
    """The row-level merge of the files the sides changed; `CannotMergeRows` when the region
    cannot go down to rows (the file-level conflict stands)."""
    from spark_lakeversion.formats.delta.rows import row_changes

    try:
        changes = [row_changes(base, side, io_properties) for side in (target, source)]
        merger = RowMerger(*changes, resolution=resolution, serializable=serializable,
                           memory_bytes=memory_bytes, max_bytes=max_bytes)
        planned = merger.plan()
    except LakeVersionError as exc:  # deletion vectors and the like, named
        raise CannotMergeRows(exc.message) from None
    outcome = DeltaRowOutcome(statistics={**planned.statistics,
                                          "files_read": sum(c.files_read for c in changes)})
    if planned.conflict_count:
        outcome.conflicts.append(row_conflict(key, planned.conflicts, merger.columns,
                                              merger.identifier, planned.conflict_count))
    if planned.inserted:
        outcome.conflicts.append(Conflict(
            DELTA_CONCURRENT_APPEND, key,
            f"{key}: the target inserted {planned.inserted} row(s) in partitions "
            "the source read and deleted from", {"rows": planned.inserted,
                                                  "partitions": planned.inserted_partitions}))
    if outcome.conflicts:
        return outcome
    outcome.removed = {log.file_id(ref.path, ref.path) for ref in planned.removed.values()}
    outcome.rows = planned.rows
    return outcome


def new_keys_meet(base: Content, target: Content, source: Content,
                  io_properties: Mapping[str, str], memory_bytes: int) -> bool:
    """Rows of one key in files each side added (`rows.merge_rows.keys_meet`); False when
    the table has no identifier fields."""
    from spark_lakeversion.formats.delta.rows import row_changes

    try:
        changes = [row_changes(base, side, io_properties) for side in (target, source)]
        return keys_meet(changes[0], changes[1], memory_bytes)
    except LakeVersionError as exc:
        raise CannotMergeRows(exc.message) from None
