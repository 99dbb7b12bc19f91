"""A Delta row merge run by an engine outside the server (Spark, in the caller's session):
the plan it runs, and the outcome rebuilt from what it hands back (`rows.merge_plan`).

Spark reads and writes a Delta table as the Iceberg table the catalog serves for it
(`iceberg/translate.py`: field ids, identity partitions, data under the table's root), so
the plan is the Iceberg one's: the scans name `db@<commit>`, the written files go under a
fresh staging directory under the Delta table's root (`<root>/lv-rowmerge-<hex32>`, where a
plain Delta reader finds them by a relative path from any of the table's logs), in the
served metadata's spec. Taking the engine's rows back checks them against the table before
anything is written: the plan's commits are the merge's, the files to replace are live on
the target inside the region, and every written file is a Parquet file under that staging
directory whose schema, statistics and partition the server reads from the file itself
(`formats/iceberg/staged.staged_data_files`, against the served metadata of the target's
state); they become Delta `add`s (`iceberg/commit.add_action`: relative path, size, stats
JSON and partition values from the footer's data) in the merge's one Delta version. Those
files are the engine's: never deleted here, fenced against gc (`DeltaMergePlan.fence`).

Column-mapped tables are refused (the file-level conflict stands): Iceberg's writer names
Parquet columns by their logical names, which Delta readers of a table in `name` mode do not
look up (`id` mode is refused too: untested).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema

from spark_lakeversion.errors import InvalidInput, LakeVersionError
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.codes import DELTA_CONCURRENT_APPEND
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.row_merge import CannotMergeRows, DeltaRowOutcome
from spark_lakeversion.model import Content, Key
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

__all__ = ["engine_outcome", "engine_plan", "staged_add_actions", "staging_root"]

def staging_root(state: DeltaState) -> str:
    """Where an engine's files go: right under the Delta table's root (the served
    metadata's `write.data.path`), whichever log the state reads."""
    return state.root.rstrip("/")


def _changes(base: Content, target: Content, source: Content,
             io: Mapping[str, str]) -> list[RowChanges]:
    from spark_lakeversion.formats.delta.rows import row_changes

    state = DeltaState.of(target)
    configuration = log.read_state(state.location, state.version, io=io).configuration
    if (configuration.get(log.MAPPING_MODE) or "none").strip().lower() != "none":
        raise CannotMergeRows(
            "the table uses Delta column mapping: Spark's Iceberg writer names Parquet "
            "columns by their logical names, which its Delta readers do not look up; merge "
            "within the server's row limit")
    try:
        return [row_changes(base, side, io) for side in (target, source)]
    except LakeVersionError as exc:  # deletion vectors and the like, named
        raise CannotMergeRows(exc.message) from None


def _served(state: DeltaState, io: Mapping[str, str]) -> Any:
    """The Iceberg metadata served for `state` (what Spark loads as `db@<commit>`)."""
    from spark_lakeversion.formats.delta.iceberg.translate import load

    try:
        return load(state, io).metadata
    except LakeVersionError as exc:  # a log the Iceberg view cannot serve, named
        raise CannotMergeRows(exc.message) from None


def engine_plan(key: Key, base: Content, target: Content, source: Content,
                context: MergeContext, *, resolution: str | None,
                serializable: bool) -> dict[str, Any]:
    """The plan of this table's row merge for Spark (`rows.merge_plan.plan_merge`), with
    where its files go: a fresh staging directory under the table's root, the served
    metadata's default spec."""
    io = context.io_properties
    changes = _changes(base, target, source, io)
    commits = context.row_commits()
    state = DeltaState.of(target, key)
    metadata = _served(state, io)
    write = {"namespace": [f"{key.elements[0]}@{context.target_commit}",
                           *key.elements[1:-1]],
             "name": key.elements[-1],
             "staging": f"{staging_root(state)}/{new_staging_segment()}",
             "spec_id": metadata.default_spec_id}
    return plan_merge(changes[0], changes[1], key, commits, SPARK, resolution=resolution,
                      serializable=serializable, write=write)


def engine_outcome(key: Key, base: Content, target: Content, source: Content,
                   context: MergeContext, rows: EngineRows, *, resolution: str | None,
                   serializable: bool) -> DeltaRowOutcome:
    """The row merge's outcome from an engine's `rows`, checked against the table; a bad
    value is `InvalidInput` (nothing written), results of another planning (the target or
    source moved, another ancestor) `CannotMergeRows`."""
    io = context.io_properties
    changes = _changes(base, target, source, io)
    check = check_engine_rows(key, rows, context.row_commits(), changes[0], changes[1],
                              resolution)
    outcome = DeltaRowOutcome(conflicts=check.conflicts, statistics=check.statistics)
    inserts = inserts_conflict(
        key, rows, DELTA_CONCURRENT_APPEND,
        f"{key}: the target inserted {rows.inserted} row(s) in partitions the source read "
        "and deleted from")
    if serializable and inserts is not None:
        outcome.conflicts.append(inserts)
    if outcome.conflicts:
        return outcome
    check_replaced(rows, check.replaceable)
    if rows.written and not rows.removed:
        raise InvalidInput("row_results: files written but none of the target's replaced")
    state = DeltaState.of(target, key)
    staging = staging_under(staging_root(state), rows.staging) if rows.written or \
        rows.staging else ""
    outcome.removed = {log.file_id(p, p) for p in rows.removed}
    if rows.written:
        metadata = _served(state, io)
        outcome.staged = _staged(metadata, staging, list(rows.written), io)
        outcome.staged_schema = metadata.schema()
    outcome.statistics.update(written_statistics(outcome.staged))
    return outcome


def _staged(metadata: Any, staging: str, written: list[str],
            io: Mapping[str, str]) -> list[DataFile]:
    """The engine's files, read from their footers against the served metadata of the
    target's state (field ids, statistics, the partition from the data)."""
    from spark_lakeversion.fileio import FileIOConfig, pyiceberg_file_io
    from spark_lakeversion.formats.iceberg.staged import staged_data_files
    from spark_lakeversion.rows.merge_plan import MAX_WRITTEN_FILES

    fio = pyiceberg_file_io(staging, FileIOConfig.of(io))
    return staged_data_files(fio, metadata, staging, written,
                             spec_id=metadata.default_spec_id, max_files=MAX_WRITTEN_FILES)


def staged_add_actions(files: list[DataFile], schema: Schema, location: str,
                       partition_columns: list[str], timestamp_ms: int) -> list[dict[str, Any]]:
    """The `add` actions the log at `location` writes for the engine's checked files,
    their columns known by the field ids of the served `schema` they were checked against:
    relative paths, sizes, stats JSON, and partition values from the footer's data."""
    from spark_lakeversion.formats.delta.iceberg.commit import add_action
    from spark_lakeversion.formats.delta.iceberg.translate import translated_of

    translated = translated_of(schema, schema.highest_field_id)
    return [add_action(location, f, translated, partition_columns, timestamp_ms)
            for f in files]
