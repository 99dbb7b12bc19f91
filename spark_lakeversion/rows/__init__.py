"""Rows: format-neutral row algorithms over Arrow. Its floor sits under `tableformat/`
(so the `TableFormat` interface can return its values) and over the shared rules; it
imports only `errors`, `model` and `limits`, and DuckDB lazily.

API (the row diff, the row merge and `changes.` checks build on it):

* `source.py`: what a format hands back for two states of one table,
  `TableFormat.row_changes(before, after, io_properties) -> RowChanges`:

  - `RowChanges(schema, identifier, before, after, counter, skipped)`: `schema` is the union
    of both sides' columns matched by field id (`schema.FIELD_ID` metadata); `identifier`
    the row-identity columns (empty: rows are a counted multiset); `before`/`after` are
    `RowSide`s; `counter` the `ReadCounter` of data and delete files opened; `skipped` the
    shared data files never opened.
  - `RowSide.files`: the `FileRef`s (path, partition label, records, deletes applied,
    the format's `handle`) live on that side only, or whose deletes differ;
    `RowSide.batches(files=None, partition=False)`: their rows with that side's deletes
    applied, in `schema`, plus `PARTITION_COLUMN` on request, files read ahead in parallel
    (`read_ahead`). A merge may read a subset. `RowSide.plain_parquet()`: the files' local
    paths when an engine may read them itself as Parquet by field id (no delete applies).
* `native.py`: `native_sources(sides, schema)`, plain-Parquet sides as queries DuckDB
  reads itself by field id, with their rows from the footers, when that reads what
  `batches` would (else None).
* `schema.py`: `union_schema`, `align` (a batch to the union by field id, else name),
  `field_id`, `check_columns`, `CHANGE_COLUMN` (``change``).
* `diff.py`: `RowDiff(changes, memory_bytes=)` loads both sides once into DuckDB (out of
  core: `engine.duckdb_connect`, spilling past `Limits.max_row_memory_bytes`), cancels
  carry-over rows by counting, pairs per identifier into `update_before`/`update_after`;
  `.rows(columns, limit=, offset=)` (fixed order, so pages never overlap), `.total`,
  `.summary()` (inserted/deleted/updated per partition). `diff_rows(...)` does it in one
  call; `diff_table(changes, con=)` the whole diff once, as one query (a `changes.`
  check's; with an identifier, a join on it where no key repeats with rows on both
  sides). Change names: `INSERT`, `DELETE`, `UPDATE_BEFORE`, `UPDATE_AFTER`. Its statements
  are `DiffSql(dialect, ...)`'s, one text for DuckDB and Spark.
* `plan.py`: `plan_diff(changes, key, commits, dialect)`, the diff planned for Spark, which
  reads the rows itself: per side the table at its commit and the files live only there,
  columns by field id (`RowSide.arrow`), then `DiffSql`'s statements (no row read here).
* `engine.py`: `duckdb_connect(memory_bytes)`, the one way row work opens DuckDB, each
  database spilling to its own `spill_directory()`; `prepare(con, memory_bytes)` fits a
  SQL check's database for a `changes.` diff.
* `merge3.py`: the three-way row rule of a row-level merge, per identity, in plain Python
  (`merge_keyed`, cell by cell, Dolt's rule; `merge_keyless`, counted rows: the reference
  the SQL is tested against), `RowConflict`, the ``row_conflicts`` resolutions
  (`parse_resolution`: ``source-wins`` / ``target-wins``).
* `dialect.py`, `merge_sql.py`: the same rule as SQL (`MergeSQL(dialect, columns,
  identifier, base, target, source, resolution)`: `merged()`, `conflicts()`,
  `rewritten_files()`, `rows_out()`, `inserted()`), one text for DuckDB and Spark.
* `merge_rows.py`: `RowMerger(target_changes, source_changes, resolution=, serializable=,
  matches=, memory_bytes=, max_bytes=).plan()` runs it out of core in DuckDB:
  `RowMergeOutcome` (conflicts listed and counted, serializable's inserts, target files to
  replace, a `RowStream` of the rows to write); `keys_meet`; `CannotMergeRows`.
* `conflicts.py`: a row merge's conflicts as data: `row_conflict` builds the ROW_CONFLICT
  (at most `model.ROW_CONFLICT_KEYS_LISTED` keys with base, target and source values, and
  the count), values made JSON-safe once (`json_value`).
"""

from spark_lakeversion.rows.diff import (
    CHANGES,
    DELETE,
    INSERT,
    UPDATE_AFTER,
    UPDATE_BEFORE,
    RowDiff,
    diff_rows,
)
from spark_lakeversion.rows.schema import CHANGE_COLUMN, FIELD_ID
from spark_lakeversion.rows.source import (
    PARTITION_COLUMN,
    EmptySide,
    FileRef,
    ReadCounter,
    RowChanges,
    RowSide,
)

__all__ = ["CHANGES", "CHANGE_COLUMN", "DELETE", "FIELD_ID", "INSERT", "PARTITION_COLUMN",
           "UPDATE_AFTER", "UPDATE_BEFORE", "EmptySide", "FileRef", "ReadCounter", "RowChanges",
           "RowDiff", "RowSide", "diff_rows"]
