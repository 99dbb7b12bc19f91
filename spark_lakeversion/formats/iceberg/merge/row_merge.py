"""Down to rows for an Iceberg merge whose file-level rules found both sides changing the same
files (`ROW_MERGEABLE`: CONCURRENT_REWRITE, CONCURRENT_DELETE, serializable's
CONCURRENT_APPEND_IN_READ_PARTITION, which a rewrite's new files trip at file grain, and
EQUALITY_DELETE_CONFLICT: an equality delete of one side over rows the other side changed).

Equality deletes need nothing of their own here: the region (`rows.merge_rows`) holds every
ancestor data file a side's equality delete applies to (the reader's planner follows the
scan rules: same partition, lower sequence number, so one delete may bring in many files),
read as the ancestor has it and as each side has it, so the rows a delete removed are seen
and judged by the row rule. The snapshot written keeps the target's delete files as they
are: its untouched files keep the deletes that apply to them, and the merged rows land in new
files that inherit the merge snapshot's sequence number, above every delete file live on the
target, so no target equality delete applies to them (a merged row is never deleted again
and a deleted one never comes back, since the merged rows hold only what the rule kept). The
source's delete files are not replayed: its deletes arrive as rows.

The rows come from the format's row reader (`formats/iceberg/rows.py`: each side's changed
data files with that side's position, equality and deletion-vector deletes applied; files no
side changed never opened) and the format-neutral merge (`rows.merge_rows`). Here: the
Iceberg parts, the source's recorded delete predicate (`rules.DELETE_PREDICATE_PROPERTY`)
evaluated on the target's inserted rows, the outcome as conflicts (ROW_CONFLICT, or the
serializable CONCURRENT_APPEND_IN_READ_PARTITION at row grain), and the rows to write,
streamed in chunks of the target schema's Arrow form (`write.py` writes each chunk with
pyiceberg's writer as it arrives).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import BooleanExpression
from pyiceberg.io.pyarrow import expression_to_pyarrow, schema_to_pyarrow
from pyiceberg.manifest import DataFile

from spark_lakeversion.errors import LakeVersionError
from spark_lakeversion.formats.iceberg.codes import (
    CONCURRENT_APPEND_IN_READ_PARTITION,
    CONCURRENT_DELETE,
    CONCURRENT_REWRITE,
    EQUALITY_DELETE_CONFLICT,
)
from spark_lakeversion.formats.iceberg.merge.diff import TableState
from spark_lakeversion.model import Conflict, Key
from spark_lakeversion.rows.conflicts import row_conflict
from spark_lakeversion.rows.merge_rows import CannotMergeRows, RowMerger, RowStream, keys_meet

#: the file-level conflicts a row-level merge may settle
ROW_MERGEABLE = (CONCURRENT_REWRITE, CONCURRENT_DELETE, CONCURRENT_APPEND_IN_READ_PARTITION,
                 EQUALITY_DELETE_CONFLICT)

__all__ = ["ROW_MERGEABLE", "CannotMergeRows", "IcebergRows", "RowOutcome", "merge_rows",
           "new_keys_meet"]


class IcebergRows:
    """A row merge's rows to write, as tables in the target schema's Arrow form, each of
    about `merge_rows.CHUNK_BYTES`, streamed out of the merge's database; iterated once."""

    def __init__(self, stream: RowStream, schema: pa.Schema) -> None:
        self.stream = stream
        self.schema = schema
        self.num_rows = stream.num_rows

    def __iter__(self) -> Iterator[pa.Table]:
        for table in self.stream.tables():
            yield pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in self.schema],
                                       schema=self.schema)

    def close(self) -> None:
        self.stream.close()


@dataclass
class RowOutcome:
    """Conflicts, or the target's data files to replace and the rows replacing them."""

    conflicts: list[Conflict] = field(default_factory=list)
    removed_paths: set[str] = field(default_factory=set)
    rows: IcebergRows | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    #: data files an engine outside the server wrote (`row_engine.engine_outcome`)
    added_files: list[DataFile] = field(default_factory=list)


def _matcher(state: TableState, predicate: BooleanExpression | None) -> Any:
    """Which of a table's rows the source's recorded delete predicate matches (None: no
    predicate recorded, every inserted row counts); an unusable one matches all."""
    if predicate is None:
        return None
    from pyiceberg.expressions.visitors import bind

    schema = state.metadata.schema()

    def matches(table: pa.Table) -> Sequence[bool]:
        try:
            bound = bind(schema, predicate, case_sensitive=True)
            marked = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
            hits = set(marked.filter(expression_to_pyarrow(bound, schema))
                       .column("__row").to_pylist())
        except Exception:  # noqa: BLE001 - unusable predicate: stay conservative
            return [True] * table.num_rows
        return [i in hits for i in range(table.num_rows)]

    return matches


def merge_rows(key: Key, base: TableState, target: TableState, source: TableState,
               io_properties: Mapping[str, str], *, resolution: str | None,
               serializable: bool, source_predicate: BooleanExpression | None,
               memory_bytes: int, max_bytes: int) -> RowOutcome:
    """The row-level merge of the files the sides changed; `CannotMergeRows` when the region
    cannot go down to rows (the file-level conflict stands)."""
    from spark_lakeversion.formats.iceberg.rows import row_changes

    try:
        changes = [row_changes(base.content, side.content, io_properties)
                   for side in (target, source)]
        merger = RowMerger(*changes, resolution=resolution, serializable=serializable,
                           matches=_matcher(target, source_predicate),
                           memory_bytes=memory_bytes, max_bytes=max_bytes)
        planned = merger.plan()
    except LakeVersionError as exc:  # a feature the row reader refuses, named
        raise CannotMergeRows(exc.message) from None
    outcome = RowOutcome(statistics={**planned.statistics,
                                     "files_read": sum(c.files_read for c in changes)})
    if planned.conflict_count:
        outcome.conflicts.append(row_conflict(key, planned.conflicts, merger.columns,
                                              merger.identifier, planned.conflict_count))
    if planned.inserted:
        partitions = planned.inserted_partitions
        outcome.conflicts.append(Conflict(
            CONCURRENT_APPEND_IN_READ_PARTITION, key,
            f"under serializable isolation: the target inserted {planned.inserted} "
            f"row(s) in partition(s) where the source deleted or overwrote rows since the "
            "common ancestor", {"rows": planned.inserted, "partitions": partitions}))
    if outcome.conflicts:
        return outcome
    outcome.removed_paths = set(planned.removed)
    if planned.rows is not None:
        outcome.rows = IcebergRows(planned.rows, schema_to_pyarrow(target.metadata.schema()))
    return outcome


def new_keys_meet(base: TableState, target: TableState, source: TableState,
                  io_properties: Mapping[str, str], memory_bytes: int) -> bool:
    """Rows of one key in files each side added (`rows.merge_rows.keys_meet`)."""
    from spark_lakeversion.formats.iceberg.rows import row_changes

    try:
        changes = [row_changes(base.content, side.content, io_properties)
                   for side in (target, source)]
        return keys_meet(changes[0], changes[1], memory_bytes)
    except LakeVersionError as exc:
        raise CannotMergeRows(exc.message) from None
