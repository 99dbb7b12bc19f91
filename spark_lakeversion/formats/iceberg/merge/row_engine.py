"""An Iceberg row merge run by an engine outside the server (Spark, in the caller's session):
the plan it runs, and the outcome rebuilt from what it hands back (`rows.merge_plan`).

Planning reads metadata only (`formats/iceberg/rows.row_changes`: which files each side
changed); the plan names the staging directory the engine writes under, a fresh one under
the table's data location (`data_location`). Taking the engine's rows back checks them
against the table before anything is written: the plan's commits are the merge's, the
files to replace are live on the target inside the region, and every written file is a
Parquet file under that staging directory whose schema, statistics and partition the server
reads from the file itself (`staged.staged_data_files`). Those files are the engine's, so
they are never deleted here; the merge snapshot only references them, fenced against gc
like any client's files (`IcebergMergePlan.client_files`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyiceberg.expressions import BooleanExpression
from pyiceberg.io import FileIO
from pyiceberg.table.metadata import TableMetadata

from spark_lakeversion.errors import LakeVersionError
from spark_lakeversion.formats.iceberg.codes import CONCURRENT_APPEND_IN_READ_PARTITION
from spark_lakeversion.formats.iceberg.merge.diff import TableState
from spark_lakeversion.formats.iceberg.merge.row_merge import CannotMergeRows, RowOutcome
from spark_lakeversion.model import Key
from spark_lakeversion.rows.dialect import SPARK
from spark_lakeversion.rows.merge_plan import (
    EngineRows,
    check_engine_rows,
    check_replaced,
    inserts_conflict,
    new_staging_segment,
    plan_merge,
    staging_under,
    written_statistics,
)
from spark_lakeversion.rows.source import RowChanges
from spark_lakeversion.tableformat.merger import MergeContext

__all__ = ["data_location", "engine_outcome", "engine_plan"]


def data_location(metadata: TableMetadata) -> str:
    """Where the table's data files go: `write.data.path`, else `<location>/data`."""
    path = metadata.properties.get("write.data.path")
    return (path or f"{metadata.location.rstrip('/')}/data").rstrip("/")


def _changes(base: TableState, target: TableState, source: TableState,
             io_properties: Mapping[str, str]) -> list[RowChanges]:
    from spark_lakeversion.formats.iceberg.rows import row_changes

    try:
        return [row_changes(base.content, side.content, io_properties)
                for side in (target, source)]
    except LakeVersionError as exc:  # a feature the row reader refuses, named
        raise CannotMergeRows(exc.message) from None


def engine_plan(key: Key, base: TableState, target: TableState, source: TableState,
                context: MergeContext, *, resolution: str | None, serializable: bool,
                source_predicate: BooleanExpression | None) -> dict[str, object]:
    """The plan of this table's row merge for Spark (`rows.merge_plan.plan_merge`), with
    where its files go: a fresh staging directory under the table's data location, the
    table's current spec."""
    if serializable and source_predicate is not None:
        raise CannotMergeRows(
            "under serializable isolation the source's recorded delete predicate is "
            "evaluated on the target's new rows by the server's row merge only; merge with "
            "isolation_level='snapshot', or within the server's row limit")
    changes = _changes(base, target, source, context.io_properties)
    commits = context.row_commits()
    staging = f"{data_location(target.metadata)}/{new_staging_segment()}"
    write = {"namespace": [f"{key.elements[0]}@{context.target_commit}",
                           *key.elements[1:-1]],
             "name": key.elements[-1], "staging": staging,
             "spec_id": target.metadata.default_spec_id}
    return plan_merge(changes[0], changes[1], key, commits, SPARK, resolution=resolution,
                      serializable=serializable, write=write)


def engine_outcome(key: Key, io: FileIO, base: TableState, target: TableState,
                   source: TableState, context: MergeContext, rows: EngineRows, *,
                   resolution: str | None, serializable: bool) -> RowOutcome:
    """The row merge's outcome from an engine's `rows`, checked against the table; a
    bad value is `InvalidInput` (nothing written), results of another planning (the
    target or source moved, another ancestor) `CannotMergeRows`."""
    changes = _changes(base, target, source, context.io_properties)
    check = check_engine_rows(key, rows, context.row_commits(), changes[0], changes[1],
                              resolution)
    outcome = RowOutcome(conflicts=check.conflicts, statistics=check.statistics)
    inserts = inserts_conflict(
        key, rows, CONCURRENT_APPEND_IN_READ_PARTITION,
        f"under serializable isolation: the target inserted {rows.inserted} row(s) in "
        "partition(s) where the source deleted or overwrote rows since the common ancestor")
    if serializable and inserts is not None:
        outcome.conflicts.append(inserts)
    if outcome.conflicts:
        return outcome
    check_replaced(rows, check.replaceable)
    from spark_lakeversion.formats.iceberg.staged import staged_data_files

    staging = staging_under(data_location(target.metadata), rows.staging)
    outcome.removed_paths = set(rows.removed)
    outcome.added_files = staged_data_files(io, target.metadata, staging, list(rows.written),
                                            spec_id=target.metadata.default_spec_id)
    outcome.statistics.update(written_statistics(outcome.added_files))
    return outcome
