"""Down to rows for an Iceberg merge whose file-level rules found both sides changing the same
files (`ROW_MERGEABLE`: CONCURRENT_REWRITE, CONCURRENT_DELETE, and serializable's
CONCURRENT_APPEND_IN_READ_PARTITION, which a rewrite's new files trip at file grain).

The rows come from the format's row reader (`formats/iceberg/rows.py`: each side's changed
data files with that side's position, equality and deletion-vector deletes applied; files no
side changed never opened) and the format-neutral merge (`rows.merge_rows`). Here: the
Iceberg parts, the source's recorded delete predicate (`rules.DELETE_PREDICATE_PROPERTY`)
evaluated on the target's inserted rows, the outcome as conflicts (ROW_CONFLICT, or the
serializable CONCURRENT_APPEND_IN_READ_PARTITION at row grain), and the rows to write in the
target schema's Arrow form (`write.py` writes them with pyiceberg's writer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import BooleanExpression
from pyiceberg.io.pyarrow import expression_to_pyarrow, schema_to_pyarrow

from spark_lakeversion.errors import LakeVersionError
from spark_lakeversion.formats.iceberg.codes import (
    CONCURRENT_APPEND_IN_READ_PARTITION,
    CONCURRENT_DELETE,
    CONCURRENT_REWRITE,
)
from spark_lakeversion.formats.iceberg.merge.diff import TableState
from spark_lakeversion.model import Conflict, Key
from spark_lakeversion.rows.conflicts import row_conflict
from spark_lakeversion.rows.merge_rows import CannotMergeRows, RowMerger

#: the file-level conflicts a row-level merge may settle
ROW_MERGEABLE = (CONCURRENT_REWRITE, CONCURRENT_DELETE, CONCURRENT_APPEND_IN_READ_PARTITION)

__all__ = ["ROW_MERGEABLE", "CannotMergeRows", "RowOutcome", "merge_rows"]


@dataclass
class RowOutcome:
    """Conflicts, or the target's data files to replace and the rows replacing them."""

    conflicts: list[Conflict] = field(default_factory=list)
    removed_paths: set[str] = field(default_factory=set)
    rows: pa.Table | None = None
    statistics: dict[str, Any] = field(default_factory=dict)


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
               budget_bytes: int) -> RowOutcome:
    """The row-level merge of the files the sides changed; `CannotMergeRows` when the region
    cannot go down to rows (the file-level conflict stands)."""
    from spark_lakeversion.formats.iceberg.rows import row_changes

    try:
        changes = [row_changes(base.content, side.content, io_properties)
                   for side in (target, source)]
        merger = RowMerger(*changes, resolution=resolution, serializable=serializable,
                           matches=_matcher(target, source_predicate),
                           budget_bytes=budget_bytes)
        planned = merger.plan()
    except LakeVersionError as exc:  # a feature the row reader refuses, named
        raise CannotMergeRows(exc.message) from None
    outcome = RowOutcome(statistics={**planned.statistics,
                                     "files_read": sum(c.files_read for c in changes)})
    if planned.merge.conflicts:
        outcome.conflicts.append(row_conflict(key, planned.merge.conflicts, merger.columns,
                                              merger.identifier))
    if planned.inserted:
        partitions = sorted({p for p, _ in planned.inserted})
        outcome.conflicts.append(Conflict(
            CONCURRENT_APPEND_IN_READ_PARTITION, key,
            f"under serializable isolation: the target inserted {len(planned.inserted)} "
            f"row(s) in {len(partitions)} partition(s) where the source deleted or "
            "overwrote rows since the common ancestor",
            {"rows": len(planned.inserted), "partitions": partitions[:20]}))
    if outcome.conflicts:
        return outcome
    outcome.removed_paths = set(planned.removed)
    if planned.rows is not None:
        arrow = schema_to_pyarrow(target.metadata.schema())
        outcome.rows = pa.Table.from_arrays(
            [planned.rows.column(f.name).cast(f.type) for f in arrow], schema=arrow)
    return outcome
