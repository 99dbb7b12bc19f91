"""The row-level merge of one table, format-neutral and out of core: which rows to read, the
three-way row rule over them (`rows.merge_sql`, run in a DuckDB database of the merge's own)
and what the target must rewrite. The format reads and writes.

Input: the target's and the source's `RowChanges` against the common ancestor (each format's
`TableFormat.row_changes(base, side)`): the files a side changed, read on demand. The region
is the ancestor's files either side changed; each side's rows of the region are its changed
files' rows plus the ancestor's rows of the region files it left alone. Files no side
changed are never opened.

Memory: the rows stream into DuckDB batch by batch (`rows.engine.duckdb_connect`: its
`memory_limit` is `memory_bytes`, `Limits.max_row_memory_bytes`, and it spills past it to a
temporary directory that also holds its database file, so stored rows leave memory too; the
keyed rule's joins run one per statement, `MergeSQL.steps`, because DuckDB spills a join but
not a pipeline of several); no Python list of rows is ever built. `max_bytes`
(`Limits.max_row_merge_bytes`) caps how much row data (Arrow bytes) the server takes on at
all: past it the merge is `CannotMergeRows` and the file-level conflict stands (only the row
diff has a Spark engine so far).

Output (`RowMergeOutcome`): the conflicts (at most `CONFLICTS_LISTED`, and their count), and,
when there are none, the target's files to replace and a `RowStream` of the rows replacing
them, read in batches when the format writes (the database lives until then). A target file
is replaced only when it holds a row whose merged state differs from the target's; its other
rows are written again with the merged ones, so each affected file is rewritten once.

Serializable isolation at row grain (`MergeSQL.inserted`): a row the target inserted in a
partition where the source removed a row is a conflict, unless the caller's `matches` says
the source's recorded delete predicate does not match it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from spark_lakeversion.model import ROW_CONFLICT_KEYS_LISTED
from spark_lakeversion.rows.dialect import DUCKDB
from spark_lakeversion.rows.engine import duckdb_connect
from spark_lakeversion.rows.merge3 import RowConflict
from spark_lakeversion.rows.merge_sql import FILE, ORD, PART, MergeSQL, side
from spark_lakeversion.rows.source import FileRef, RowChanges, RowSide

#: rows per batch streamed out of the database (to the writers, to `matches`)
BATCH_ROWS = 64 * 1024
#: the most Arrow bytes of rows handed to a writer at once (`RowStream.tables`)
CHUNK_BYTES = 64 * 1024 * 1024
#: how many conflicts are fetched (the ROW_CONFLICT lists this many; all are counted)
CONFLICTS_LISTED = ROW_CONFLICT_KEYS_LISTED
#: the region's tables in the merge's database
_BASE, _TNEW, _SNEW = "lv_base", "lv_target_new", "lv_source_new"
_TARGET, _SOURCE, _MERGED, _FILES = "lv_target", "lv_source", "lv_merged", "lv_files"
_TKEPT, _SKEPT = "__lv_tk", "__lv_sk"


class CannotMergeRows(Exception):
    """The region cannot go down to rows here (the message says why); the caller's
    file-level conflict stands. `over_limit`: only because the rows exceed the server's
    row limit (an engine outside the server, Spark, can merge them)."""

    def __init__(self, message: str, *, over_limit: bool = False) -> None:
        super().__init__(message)
        self.over_limit = over_limit


def _close(con: Any, spill: str) -> None:
    try:
        con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)


class _Database:
    """The merge's own DuckDB database and spill directory; closed explicitly, or when the
    last holder (the merger, a `RowStream`) is gone."""

    def __init__(self, memory_bytes: int) -> None:
        self.spill = tempfile.mkdtemp(prefix="lakeversion-rowmerge-")
        try:
            # a database file of its own: the region's tables are evicted to it past the
            # budget (an in-memory database's tables cannot leave memory)
            self.con: Any = duckdb_connect(memory_bytes, self.spill,
                                           os.path.join(self.spill, "merge.duckdb"))
        except BaseException:
            shutil.rmtree(self.spill, ignore_errors=True)
            raise
        self._finalizer = weakref.finalize(self, _close, self.con, self.spill)

    def close(self) -> None:
        self._finalizer()

    def scalar(self, sql: str) -> int:
        row = self.con.execute(sql).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


class RowStream:
    """The rows a row merge writes, streamed out of its database in batches of the table's
    Arrow schema; read once (then the database closes)."""

    def __init__(self, db: _Database, sql: str, schema: pa.Schema, rows: int) -> None:
        self._db: _Database | None = db
        self.sql = sql
        self.schema = schema
        self.num_rows = rows

    def batches(self, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        db, self._db = self._db, None
        if db is None:
            raise RuntimeError("a row merge's rows are read once")
        try:
            reader = db.con.execute(self.sql).fetch_record_batch(rows)
            for batch in reader:
                if batch.num_rows:
                    yield typed(batch, self.schema)
        finally:
            db.close()

    def tables(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[pa.Table]:
        """The rows as tables of about `chunk_bytes` each (what a writer takes at once)."""
        held: list[pa.RecordBatch] = []
        size = 0
        for batch in self.batches():
            held.append(batch)
            size += batch.nbytes
            if size >= chunk_bytes:
                yield pa.Table.from_batches(held)
                held, size = [], 0
        if held:
            yield pa.Table.from_batches(held)

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()


def typed(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """DuckDB's batch in the table's own Arrow types and field metadata (a type DuckDB
    cannot give back keeps DuckDB's, with the field's name and metadata)."""
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        fields = [pa.field(f.name, batch.schema.field(i).type, metadata=f.metadata)
                  for i, f in enumerate(schema)]
        return batch.cast(pa.schema(fields))


@dataclass
class RowMergeOutcome:
    """What the row merge decided.

    `conflicts` lists at most `CONFLICTS_LISTED` of the `conflict_count` identities changed
    differently on both sides (none when a resolution settled them: `resolved`);
    `inserted` counts the target's rows serializable isolation refuses, in
    `inserted_partitions`; `removed` the target's data files to replace and `rows` their
    replacement (None: nothing to write)."""

    conflicts: list[RowConflict] = field(default_factory=list)
    conflict_count: int = 0
    resolved: int = 0
    inserted: int = 0
    inserted_partitions: list[str] = field(default_factory=list)
    removed: dict[str, FileRef] = field(default_factory=dict)
    rows: RowStream | None = None
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.conflict_count and not self.inserted


class RowMerger:
    """One table's row merge over the target's and source's `RowChanges`."""

    def __init__(self, target: RowChanges, source: RowChanges, *,
                 resolution: str | None = None, serializable: bool = False,
                 matches: Callable[[pa.Table], Sequence[bool]] | None = None,
                 memory_bytes: int = 512 * 1024 * 1024,
                 max_bytes: int = 4 * 1024 * 1024 * 1024) -> None:
        if target.schema.remove_metadata() != source.schema.remove_metadata() or \
                [f.metadata for f in target.schema] != [f.metadata for f in source.schema]:
            raise CannotMergeRows("the table's schema differs between the states")
        if target.identifier != source.identifier:
            raise CannotMergeRows("the identifier fields differ between the sides")
        self.target, self.source = target, source
        self.schema = target.schema
        self.columns = list(self.schema.names)
        self.identifier = list(target.identifier)
        self.resolution = resolution
        self.serializable = serializable
        self.matches = matches
        self.memory_bytes = memory_bytes
        self.max_bytes = max_bytes
        self.bytes_read = 0
        self.sql = MergeSQL(DUCKDB, tuple(self.columns), tuple(self.identifier),
                            _BASE, _TARGET, _SOURCE, resolution)

    # ---- loading --------------------------------------------------------------------------
    def _load(self, db: _Database, table: str, parts: Sequence[tuple[RowSide, FileRef]],
              first: int, flags: Callable[[str], tuple[bool, bool]] | None = None) -> None:
        """Stream the rows of `parts` into `table`, batch by batch, each row tagged with its
        file, partition and file ordinal (from `first`); `flags` adds the base's kept
        columns."""
        extra = [pa.field(FILE, pa.string()), pa.field(PART, pa.string()),
                 pa.field(ORD, pa.int64())]
        if flags is not None:
            extra += [pa.field(_TKEPT, pa.bool_()), pa.field(_SKEPT, pa.bool_())]
        schema = pa.schema([*self.schema, *extra])
        db.con.register("lv_in", schema.empty_table())
        db.con.execute(f"CREATE TABLE {table} AS SELECT * FROM lv_in")
        db.con.unregister("lv_in")
        for ordinal, (row_side, ref) in enumerate(parts, start=first):
            for batch in row_side.batches([ref]):
                if not batch.num_rows:
                    continue
                self.bytes_read += batch.nbytes
                if self.bytes_read > self.max_bytes:
                    raise CannotMergeRows(
                        f"the rows to merge exceed the row merge's limit of {self.max_bytes} "
                        "bytes (--max-row-merge-bytes), the most the server merges by rows; "
                        "raise it on the server (the merge runs out of core within "
                        "--max-row-memory-bytes), or merge with the Spark engine",
                        over_limit=True)
                n = batch.num_rows
                columns = [*batch.columns, pa.nulls(n, pa.string()).fill_null(ref.path),
                           pa.nulls(n, pa.string()).fill_null(ref.partition),
                           pa.nulls(n, pa.int64()).fill_null(ordinal)]
                if flags is not None:
                    kept = flags(ref.path)
                    columns += [pa.nulls(n, pa.bool_()).fill_null(kept[0]),
                                pa.nulls(n, pa.bool_()).fill_null(kept[1])]
                db.con.register("lv_in", pa.RecordBatch.from_arrays(columns, schema=schema))
                db.con.execute(f"INSERT INTO {table} SELECT * FROM lv_in")
                db.con.unregister("lv_in")

    # ---- the merge ------------------------------------------------------------------------
    def plan(self) -> RowMergeOutcome:
        db = _Database(self.memory_bytes)
        try:
            outcome = self._plan(db)
        except BaseException:
            db.close()
            raise
        if outcome.rows is None:
            db.close()
        return outcome

    def _plan(self, db: _Database) -> RowMergeOutcome:
        tb = {r.path: r for r in self.target.before.files}
        sb = {r.path: r for r in self.source.before.files}
        region = sorted(set(tb) | set(sb))
        self._load(db, _BASE, [(self.target.before, tb[p]) if p in tb
                               else (self.source.before, sb[p]) for p in region], 0,
                   lambda p: (p not in tb, p not in sb))
        self._load(db, _TNEW, [(self.target.after, r) for r in self.target.after.files],
                   len(region))
        self._load(db, _SNEW, [(self.source.after, r) for r in self.source.after.files],
                   len(region))
        for name, kept, new in ((_TARGET, _TKEPT, _TNEW), (_SOURCE, _SKEPT, _SNEW)):
            db.con.execute(f"CREATE VIEW {name} AS "
                           f"{side(DUCKDB, self.columns, _BASE, kept, new)}")
        if self.identifier:
            for name, what in ((_BASE, "ancestor"), (_TARGET, "target"), (_SOURCE, "source")):
                if db.scalar(self.sql.duplicate_keys(name)):
                    raise CannotMergeRows(f"the identifier fields ({', '.join(self.identifier)})"
                                          f" do not name one row on the {what}")
        # one join per statement: DuckDB spills a single join past its budget, not a
        # pipeline of several
        steps = self.sql.steps("lv_step")
        for name, sql in steps:
            db.con.execute(f"CREATE TABLE {name} AS {sql}")
        db.con.execute(f"CREATE VIEW {_MERGED} AS SELECT * FROM {steps[-1][0]}")
        for name, _ in steps[:-1]:
            db.con.execute(f"DROP TABLE {name}")
        count = db.scalar(self.sql.conflict_count(_MERGED))
        outcome = RowMergeOutcome()
        if self.resolution is None:
            outcome.conflict_count = count
            outcome.conflicts = self._conflicts(db) if count else []
        else:
            outcome.resolved = count
        outcome.statistics = {
            "files_read": len(region) + len(self.target.after.files)
            + len(self.source.after.files),
            "rows_read": sum(db.scalar(f"SELECT count(*) FROM {t}")
                             for t in (_BASE, _TNEW, _SNEW)),
            "conflicts": outcome.conflict_count, "resolved": outcome.resolved,
            "files_rewritten": 0, "rows_rewritten": 0, "bytes_written": 0}
        if self.serializable:
            self._inserted(db, outcome)
        if outcome.clean:
            self._rewrite(db, outcome, {**{p: tb.get(p) or sb[p] for p in region},
                                        **{r.path: r for r in self.target.after.files}})
        return outcome

    def _conflicts(self, db: _Database) -> list[RowConflict]:
        table = db.con.execute(self.sql.conflicts(_MERGED, CONFLICTS_LISTED)).fetch_arrow_table()
        n = len(self.columns)
        out: list[RowConflict] = []
        for row in table.to_pylist():  # at most CONFLICTS_LISTED rows
            identity = tuple(row[f"__lv_k{j}"] for j in range(len(self.sql.identity)))
            if not self.identifier:
                b, t, s = (int(row[f"__lv_n{a}"]) for a in "bts")
                out.append(RowConflict(identity, row["__lv_reason"], identity if b else None,
                                       identity if t else None, identity if s else None,
                                       counts=(b, t, s)))
                continue

            def state(a: str, row: dict[str, Any] = row) -> tuple[Any, ...] | None:
                return tuple(row[f"__lv_{a}{i}"] for i in range(n)) \
                    if row[f"__lv_{a}p"] else None

            clashes = tuple(i for i in range(n) if row[f"__lv_x{i}"]) \
                if row["__lv_case"] == "X" else ()
            out.append(RowConflict(identity, row["__lv_reason"], state("b"), state("t"),
                                   state("s"), clashes))
        return out

    def _inserted(self, db: _Database, outcome: RowMergeOutcome) -> None:
        """Count the target's rows serializable isolation refuses (the predicate, when
        there is one, evaluated batch by batch)."""
        sql = self.sql.inserted(_MERGED)
        partitions: set[str] = set()
        if self.matches is None:
            outcome.inserted = db.scalar(f"SELECT count(*) FROM ({sql}) AS i")
            if outcome.inserted:
                partitions = {r[0] for r in db.con.execute(
                    f"SELECT DISTINCT {PART} FROM ({sql}) AS i ORDER BY 1 LIMIT 20").fetchall()}
        else:
            for batch in db.con.execute(sql).fetch_record_batch(BATCH_ROWS):
                if not batch.num_rows:
                    continue
                labels = batch.column(PART)
                rows = typed(batch.select(self.columns), self.schema)
                hits = self.matches(pa.Table.from_batches([rows]))
                picked = [i for i, hit in enumerate(hits) if hit]
                outcome.inserted += len(picked)
                if picked and len(partitions) < 20:
                    partitions |= set(labels.take(pa.array(picked)).to_pylist())
        outcome.inserted_partitions = sorted(partitions)[:20]

    # ---- what the target rewrites --------------------------------------------------------
    def _rewrite(self, db: _Database, outcome: RowMergeOutcome,
                 refs: dict[str, FileRef]) -> None:
        db.con.execute(f"CREATE TABLE {_FILES} AS {self.sql.rewritten_files(_MERGED)}")
        files = [r[0] for r in db.con.execute(f"SELECT {FILE} FROM {_FILES}").fetchall()]
        outcome.removed = {p: refs[p] for p in sorted(files)}
        sql = self.sql.rows_out(_MERGED, _FILES)
        rows = db.scalar(f"SELECT count(*) FROM ({sql}) AS o")
        outcome.statistics.update(files_rewritten=len(files), rows_rewritten=rows)
        if rows:
            outcome.rows = RowStream(db, sql, self.schema, rows)


def keys_meet(target: RowChanges, source: RowChanges, memory_bytes: int) -> bool:
    """Keyed tables: did both sides write rows of one key in files they added (two appends
    of one new key)? Then the files commute but the rows do not: the merge goes down to
    rows, which takes the key once or reports the clash. Reads both sides' added files."""
    if not target.identifier or not target.after.files or not source.after.files \
            or target.identifier != source.identifier:
        return False
    keys = [DUCKDB.quote(c) for c in target.identifier]
    db = _Database(memory_bytes)
    try:
        for name, changes in (("lv_tk", target), ("lv_sk", source)):
            fields = [changes.schema.field(c) for c in changes.identifier]
            db.con.register("lv_in", pa.schema(fields).empty_table())
            db.con.execute(f"CREATE TABLE {name} AS SELECT * FROM lv_in")
            db.con.unregister("lv_in")
            for batch in changes.after.batches():
                db.con.register("lv_in", batch.select(list(changes.identifier)))
                db.con.execute(f"INSERT INTO {name} SELECT {', '.join(keys)} FROM lv_in")
                db.con.unregister("lv_in")
        return bool(db.scalar("SELECT count(*) FROM (SELECT * FROM lv_tk INTERSECT "
                              "SELECT * FROM lv_sk) AS m"))
    finally:
        db.close()


__all__ = ["BATCH_ROWS", "CHUNK_BYTES", "CannotMergeRows", "RowMergeOutcome", "RowMerger",
           "RowStream", "keys_meet", "typed"]
