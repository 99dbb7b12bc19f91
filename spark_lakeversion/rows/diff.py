"""The row diff of two table states from their changed files, out of core in DuckDB.

Why by counting: a copy-on-write rewrite of one row puts the file's other rows back
unchanged (carry-over rows). Counting each distinct row on both sides (+1 after, -1 before)
cancels them, and keeps duplicates: a row twice before and once after is one `delete`.
With identifier columns, what is left is paired per key into `update_before` /
`update_after` (Iceberg's changelog names); without, rows are a counted multiset and only
`insert` and `delete` exist.

Both sides' rows go into a DuckDB database of this diff's own, whose `memory_limit` is the
budget (`Limits.max_row_memory_bytes`): past it DuckDB spills to a temporary directory,
removed on close. Output order is fixed (identifier, then the pair; else every column), so
pages (`offset`, `limit`) of one diff never overlap.

The query texts are `DiffSql`'s, written once for every engine through `rows.dialect`:
Spark runs the same statements in the caller's session (`rows.plan`, `spark/rows.py`) on
the same two source relations, so both engines give the same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.limits import DEFAULT_LIMITS
from spark_lakeversion.rows.dialect import DUCKDB, Dialect, ascending, same, temp_relation
from spark_lakeversion.rows.engine import duckdb_connect
from spark_lakeversion.rows.native import native_sources
from spark_lakeversion.rows.schema import CHANGE_COLUMN, check_columns
from spark_lakeversion.rows.source import PARTITION_COLUMN, RowChanges

INSERT, DELETE, UPDATE_BEFORE, UPDATE_AFTER = "insert", "delete", "update_before", "update_after"
#: every value of the `change` column, in the order a key's rows are listed
CHANGES = (UPDATE_BEFORE, UPDATE_AFTER, DELETE, INSERT)

#: the summary's columns: one row per partition label
SUMMARY_SCHEMA = pa.schema([("partition", pa.string()), ("inserted", pa.int64()),
                            ("deleted", pa.int64()), ("updated", pa.int64())])

_P, _S, _N, _R = "__lv_p", "__lv_s", "__lv_n", "__lv_rank"
#: `DiffSql.joined`'s last row: each side's rows in the join, then each source's rows
JOIN_COUNTS = ("__lv_joined_before", "__lv_joined_after", "__lv_before", "__lv_after")
#: more rows than any diff holds (DuckDB's LIMIT and OFFSET are 64-bit)
_MAX_ROWS = 2**62


def quote(name: str) -> str:
    return DUCKDB.quote(name)


def _reader(schema: pa.Schema, batches: Iterator[pa.RecordBatch],
            failed: list[BaseException], partition: bool = True) -> pa.RecordBatchReader:
    """A side's stream for DuckDB (with `PARTITION_COLUMN` when `partition`). DuckDB reports
    an error raised inside the stream as its own `InvalidInputException`; the original (a
    typed error of the row reader, say) is kept in `failed` so `_load` raises it instead."""
    full = pa.schema([*schema, pa.field(PARTITION_COLUMN, pa.string())]) if partition \
        else schema

    def kept() -> Iterator[pa.RecordBatch]:
        try:
            yield from batches
        except BaseException as exc:
            failed.append(exc)
            raise

    return pa.RecordBatchReader.from_batches(full, kept())


def output_schema(schema: pa.Schema, columns: Sequence[str]) -> pa.Schema:
    """`change` first, then the asked columns as the table has them (field ids kept)."""
    return pa.schema([pa.field(CHANGE_COLUMN, pa.string(), nullable=False),
                      *(schema.field(c) for c in columns)])


def check_page(limit: int | None, offset: int) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or not 0 <= limit < _MAX_ROWS):
        raise InvalidInput(f"limit must be an integer from 0 to {_MAX_ROWS - 1}, "
                           f"not {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < _MAX_ROWS:
        raise InvalidInput(f"offset must be an integer from 0 to {_MAX_ROWS - 1}, "
                           f"not {offset!r}")


class DiffSql:
    """The row diff's query texts in one dialect: what DuckDB runs in the server and Spark
    in the caller's session (`rows.plan`), word for word but for `Dialect`'s spellings.

    The relations are named `<prefix>before_src` and `<prefix>after_src` (each side's
    changed rows in `names`' columns plus `PARTITION_COLUMN`), then `<prefix>net`,
    `<prefix>del_n`, `<prefix>ins_n` and `<prefix>result` in `statements()`' order."""

    def __init__(self, dialect: Dialect, names: Sequence[str], identifier: Sequence[str],
                 prefix: str = "lv_", partitions: bool = True,
                 sources: Mapping[str, str] | None = None) -> None:
        """`partitions`: the sources carry `PARTITION_COLUMN` and each change keeps its
        label (for `summary`); without, the labels are null and never aggregated.
        `sources`: a query written in place of a source relation (`before_src`,
        `after_src`), so nothing needs naming (or dropping) in the database."""
        self.d = dialect
        self.names = list(names)
        self.identifier = list(identifier)
        self.prefix = prefix
        self.partitions = partitions
        self.sources = dict(sources or {})

    def rel(self, name: str) -> str:
        inline = self.sources.get(name)
        return f"({inline})" if inline is not None else self.d.quote(self.prefix + name)

    def _cols(self, alias: str = "") -> str:
        return ", ".join(alias + self.d.quote(n) for n in self.names)

    def statements(self) -> list[tuple[str, str]]:
        """(relation name, query) in order; each query reads the relations before it."""
        q, cols = self.d.quote, self._cols()
        p, s, n = q(_P), q(_S), q(_N)
        part = q(PARTITION_COLUMN)
        # +1 per row after, -1 per row before, summed per distinct row: what is left is the
        # change, usually small; `min` picks a partition label the same in every engine
        if self.partitions:
            labels = (f"min({p}) FILTER (WHERE {s} > 0) AS lv_pa, "
                      f"min({p}) FILTER (WHERE {s} < 0) AS lv_pb ")
            carried = f", {part} AS {p}"
        else:  # a third of the grouping's cost is carrying the labels: none asked for
            labels = "CAST(NULL AS STRING) AS lv_pa, CAST(NULL AS STRING) AS lv_pb "
            carried = ""
        net = (f"SELECT {cols}, CAST(sum({s}) AS BIGINT) AS {n}, {labels}"
               f"FROM (SELECT {cols}, 1 AS {s}{carried} FROM {self.rel('after_src')} "
               f"UNION ALL SELECT {cols}, -1 AS {s}{carried} "
               f"FROM {self.rel('before_src')}) lv_signed "
               f"GROUP BY {cols} HAVING sum({s}) <> 0")
        out: list[tuple[str, str]] = [(self.prefix + "net", net)]
        change, r = q(CHANGE_COLUMN), q(_R)
        if not self.identifier:
            out.append((self.prefix + "result",
                        f"SELECT '{DELETE}' AS {change}, 2 AS {r}, {cols}, {p}, 0 AS {n} "
                        f"FROM ({self._side('<')}) lv_d UNION ALL "
                        f"SELECT '{INSERT}', 3, {cols}, {p}, 0 FROM ({self._side('>')}) lv_i"))
            return out
        keys = ", ".join(q(k) for k in self.identifier)
        for name, sign in (("del_n", "<"), ("ins_n", ">")):
            out.append((self.prefix + name,
                        f"SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY "
                        f"{ascending([q(c) for c in self.names])}) AS {n} "
                        f"FROM ({self._side(sign)}) lv_s"))
        on = " AND ".join([f"d.{q(k)} IS NOT DISTINCT FROM i.{q(k)}" for k in self.identifier]
                          + [f"d.{n} = i.{n}"])
        out.append((self.prefix + "result", f"""
            SELECT CASE WHEN i.{n} IS NULL THEN '{DELETE}' ELSE '{UPDATE_BEFORE}' END
                       AS {change},
                   CASE WHEN i.{n} IS NULL THEN 2 ELSE 0 END AS {r},
                   {self._cols('d.')}, d.{p} AS {p}, d.{n} AS {n}
            FROM {self.rel('del_n')} d LEFT JOIN {self.rel('ins_n')} i ON {on}
            UNION ALL
            SELECT CASE WHEN d.{n} IS NULL THEN '{INSERT}' ELSE '{UPDATE_AFTER}' END,
                   CASE WHEN d.{n} IS NULL THEN 3 ELSE 1 END,
                   {self._cols('i.')}, i.{p}, i.{n}
            FROM {self.rel('ins_n')} i LEFT JOIN {self.rel('del_n')} d ON {on}"""))
        return out

    def _side(self, sign: str) -> str:
        """One side's remaining rows, each repeated as often as it counts."""
        q, cols = self.d.quote, self._cols()
        part = "lv_pa" if sign == ">" else "lv_pb"
        count = f"CAST(abs({q(_N)}) AS INTEGER)"
        return (f"SELECT {cols}, {part} AS {q(_P)} FROM (SELECT *, {self.d.repeat(count)} "
                f"AS lv_i FROM {self.rel('net')} WHERE {q(_N)} {sign} 0) lv_r")

    def order(self) -> str:
        """The fixed order of the diff's rows (identifier, then the pair; else every
        column), so pages never overlap and every engine lists them alike."""
        q = self.d.quote
        if self.identifier:
            return ascending([*(q(k) for k in self.identifier), q(_N), q(_R)])
        return ascending([*(q(c) for c in self.names), q(_R)])

    def rows(self, columns: Sequence[str], limit: int | None, offset: int) -> str:
        """Rows `offset`.. of the diff (at most `limit`), `change` first, then `columns`."""
        check_page(limit, offset)
        q = self.d.quote
        wanted = ", ".join([q(CHANGE_COLUMN), *map(q, columns)])
        page = f" LIMIT {int(limit)}" if limit is not None else ""
        skip = f" OFFSET {int(offset)}" if offset else ""
        return f"SELECT {wanted} FROM {self.rel('result')} ORDER BY {self.order()}{page}{skip}"

    def query(self, columns: Sequence[str]) -> str:
        """The whole diff as one query, in `rows`' order: `statements()` as common table
        expressions (DuckDB: each materialized once), for a reader that wants every row
        once and so no temporary table."""
        hint = "MATERIALIZED " if self.d.name == DUCKDB.name else ""
        steps = ", ".join(f"{self.d.quote(name)} AS {hint}({query})"
                          for name, query in self.statements())
        return f"WITH {steps} {self.rows(columns, None, 0)}"

    def joined(self, columns: Sequence[str], rows: tuple[int, int]) -> str:
        """The diff as `query` gives it, for a table whose identifier no key repeats on
        both sides at once, as one full outer join on the identifier: cheaper than counting
        every distinct row (a join on the key, not a grouping by every column), and it
        needs no pairing (a key's one row before and one after are the update).

        Its last row is not a change (`change` NULL): it carries `JOIN_COUNTS`, each side's
        rows in the join and each source's rows, `rows`, known before the sources are read
        (their footers: each source is read once here, and again only by `query`, so not
        an Arrow stream).
        The rows are the diff exactly when the join repeats no row (`joined_exact`): else a
        key has more than one row on one side and rows on the other, whose pairing only
        `query` knows (a key repeated on one side only is all inserts or all deletes, the
        same both ways). Equality is the grouping's: NULLs, NaNs and -0.0 = 0.0 alike."""
        q = self.d.quote
        before = ", ".join(f"b.{q(c)} AS {q(f'__lv_b{i}')}" for i, c in enumerate(self.names))
        after = ", ".join(f"a.{q(c)} AS {q(f'__lv_a{i}')}" for i, c in enumerate(self.names))
        on = " AND ".join(same(self.d, f"b.{q(k)}", f"a.{q(k)}") for k in self.identifier)
        differ = " OR ".join(f"NOT {same(self.d, q(f'__lv_b{i}'), q(f'__lv_a{i}'))}"
                             for i in range(len(self.names)))
        bp, ap, r, last = q("__lv_bp"), q("__lv_ap"), q(_R), q("__lv_last")
        change = q(CHANGE_COLUMN)
        hint = "MATERIALIZED " if self.d.name == DUCKDB.name else ""
        joined = (f"SELECT {before}, {after}, b.{bp}, a.{ap} "
                  f"FROM (SELECT *, 1 AS {bp} FROM {self.rel('before_src')}) b FULL OUTER JOIN "
                  f"(SELECT *, 1 AS {ap} FROM {self.rel('after_src')}) a ON {on}")
        nulls = ", ".join(f"CAST(NULL AS BIGINT) AS {q(name)}" for name in JOIN_COUNTS)
        branches = []
        for mine, other, names, pair, lone in ((bp, ap, "b", 0, 2), (ap, bp, "a", 1, 3)):
            cells = ", ".join(f"{q(f'__lv_{names}{i}')} AS {q(c)}"
                              for i, c in enumerate(self.names))
            labels = ((UPDATE_BEFORE, DELETE) if names == "b" else (UPDATE_AFTER, INSERT))
            branches.append(
                f"SELECT CASE WHEN {other} IS NULL THEN '{labels[1]}' ELSE '{labels[0]}' END "
                f"AS {change}, CASE WHEN {other} IS NULL THEN {lone} ELSE {pair} END AS {r}, "
                f"{cells}, 0 AS {last}, {nulls} FROM lv_joined "
                f"WHERE {mine} IS NOT NULL AND ({other} IS NULL OR {differ})")
        counts = ", ".join(f"{query} AS {q(name)}" for name, query in zip(JOIN_COUNTS, (
            f"count({bp})", f"count({ap})", f"CAST({int(rows[0])} AS BIGINT)",
            f"CAST({int(rows[1])} AS BIGINT)"), strict=True))
        empty = ", ".join(["NULL"] * (len(self.names) + 2))
        branches.append(f"SELECT {empty}, 1, {counts} FROM lv_joined")
        wanted = ", ".join([change, *map(q, columns), *map(q, JOIN_COUNTS)])
        order = ascending([last, *(q(k) for k in self.identifier), r,
                           *(q(c) for c in self.names)])
        return (f"WITH lv_joined AS {hint}({joined}) SELECT {wanted} FROM ("
                + " UNION ALL ".join(branches) + f") lv_changes ORDER BY {order}")

    def total(self) -> str:
        return f"SELECT count(*) AS total FROM {self.rel('result')}"

    def summary(self) -> str:
        """Per partition label: rows inserted, deleted and updated (one per pair, counted in
        the partition of its after image)."""
        q = self.d.quote
        change = q(CHANGE_COLUMN)
        return (f"SELECT coalesce({q(_P)}, '') AS {q('partition')}, "
                f"count(*) FILTER (WHERE {change} = '{INSERT}') AS inserted, "
                f"count(*) FILTER (WHERE {change} = '{DELETE}') AS deleted, "
                f"count(*) FILTER (WHERE {change} = '{UPDATE_AFTER}') AS updated "
                f"FROM {self.rel('result')} WHERE {change} <> '{UPDATE_BEFORE}' "
                f"GROUP BY coalesce({q(_P)}, '') ORDER BY 1")


class RowDiff:
    """One diff: both sides' changed rows loaded once into DuckDB, then its pages, its
    total and its per-partition summary. Close it (or use `with`) to free the database."""

    def __init__(self, changes: RowChanges, *,
                 memory_bytes: int = DEFAULT_LIMITS.max_row_memory_bytes) -> None:
        self.changes = changes
        self.schema = changes.schema
        self.sql = DiffSql(DUCKDB, self.schema.names, changes.identifier)
        self._con: Any = duckdb_connect(memory_bytes)
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    # ---- loading --------------------------------------------------------------------------
    def _load(self) -> None:
        """Both sides' streams registered as the two source relations, then the diff's
        statements, each materialized (spilling past the budget)."""
        with _sources(self._con, self.changes, True) as sources:
            for name, query in self.sql.statements():
                sources.run(temp_relation(DUCKDB, name, query))

    # ---- answers --------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """How many rows the whole diff has."""
        row = self._con.execute(self.sql.total()).fetchone()
        return int(row[0]) if row else 0

    def rows(self, columns: Sequence[str] | None = None, *, limit: int | None = None,
             offset: int = 0) -> pa.Table:
        """Rows `offset`.. of the diff (at most `limit`), `change` first, then `columns`."""
        names = check_columns(self.schema, columns)
        table = self._con.execute(self.sql.rows(names, limit, offset)).fetch_arrow_table()
        return typed(table, output_schema(self.schema, names))

    def summary(self) -> pa.Table:
        """Per partition label: rows inserted, deleted and updated (one per pair, counted in
        the partition of its after image)."""
        return self._con.execute(self.sql.summary()).fetch_arrow_table().cast(SUMMARY_SCHEMA)

    def close(self) -> None:
        con, self._con = getattr(self, "_con", None), None
        if con is not None:
            con.close()  # its spill directory goes with it

    def __enter__(self) -> RowDiff:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Sources:
    """Both sides registered in one connection: `run` runs one statement over them (its
    rows as Arrow) and raises the row reader's own error (a typed one, say) rather than
    DuckDB's wrapping of it. `inline`: the sides DuckDB reads itself, as `DiffSql`'s
    `sources`; `counts`: the rows of each side known before it is read (a query over its
    Parquet files, from their footers, or no rows), where an Arrow stream is read once."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.failed: list[BaseException] = []
        self.inline: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    @property
    def rows(self) -> tuple[int, int] | None:
        """(before, after) rows when both are known, so both sides may be read twice."""
        if len(self.counts) < 2:
            return None
        return self.counts["before_src"], self.counts["after_src"]

    def run(self, statement: str) -> pa.Table:
        try:
            return self.con.execute(statement).fetch_arrow_table()
        except Exception:
            if self.failed:
                raise self.failed[0] from None
            raise


@contextmanager
def _sources(con: Any, changes: RowChanges, labels: bool, native: bool = False
             ) -> Iterator[_Sources]:
    """Both sides registered in `con` as the two source relations while this runs: with
    `native` (and no labels), a side of plain Parquet files as the query DuckDB reads it
    with (`rows.native`), written in place of the relation (`_Sources.inline`), a side
    without files as an empty table, else as its Arrow stream."""
    sources = _Sources(con)
    registered: list[str] = []
    pairs = (("before_src", changes.before), ("after_src", changes.after))
    try:
        natives = native_sources([side for _, side in pairs], changes.schema) \
            if native and not labels else [None, None]
        for (short, side), source in zip(pairs, natives, strict=True):
            name = "lv_" + short
            if source is not None:
                sources.inline[short], sources.counts[short] = source
                continue
            if native and not side.files:
                con.register(name, changes.schema.empty_table())
                sources.counts[short] = 0
            else:
                con.register(name, _reader(changes.schema, side.batches(partition=labels),
                                           sources.failed, labels))
            registered.append(name)
        yield sources
    finally:
        for name in registered:
            try:
                con.unregister(name)
            except Exception:  # noqa: BLE001 - gone with the connection already
                pass


def diff_table(changes: RowChanges, *,
               memory_bytes: int = DEFAULT_LIMITS.max_row_memory_bytes,
               con: Any = None) -> pa.Table:
    """The whole diff, every column, in `RowDiff.rows`' order, without partition labels:
    one query whose steps DuckDB materializes once each (spilling past the budget), so a
    reader of every row once (a check's `changes.`) pays no temporary table. With an
    identifier and sides DuckDB may read twice, first `DiffSql.joined` (a join on the key,
    about half the counting's cost), kept when `joined_exact` says so, else the counting
    `DiffSql.query`. `con`: a caller's connection fit for row work (`engine.prepare`: a
    SQL check's, about to be confined), used as it is and left open; else one of its own."""
    names = changes.schema.names
    db: Any = duckdb_connect(memory_bytes) if con is None else con
    try:
        with _sources(db, changes, False, native=True) as sources:
            sql = DiffSql(DUCKDB, names, changes.identifier, partitions=False,
                          sources=sources.inline)
            table = None
            if changes.identifier and sources.rows is not None:
                table = joined_exact(sources.run(sql.joined(names, sources.rows)))
            if table is None:
                table = sources.run(sql.query(names))
    finally:
        if con is None:
            db.close()  # its spill directory goes with it
    return typed(table, output_schema(changes.schema, names))


def joined_exact(table: pa.Table) -> pa.Table | None:
    """`DiffSql.joined`'s rows without its counts row, when the join repeated no row (each
    side's rows in the join equal its source's rows, so no key has more than one row on
    one side and any on the other); None when it did (the counting query decides)."""
    last = table.num_rows - 1
    if last < 0 or table.column(CHANGE_COLUMN)[last].is_valid:
        return None
    counts = [table.column(name)[last].as_py() for name in JOIN_COUNTS]
    if counts[0] != counts[2] or counts[1] != counts[3]:
        return None
    return table.slice(0, last).drop_columns(list(JOIN_COUNTS))


def typed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """DuckDB's answer in the table's own Arrow types and field ids (a type DuckDB cannot
    give back keeps DuckDB's, with the field's name and metadata)."""
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        fields = [pa.field(f.name, table.schema.field(i).type, metadata=f.metadata)
                  for i, f in enumerate(schema)]
        return table.cast(pa.schema(fields))


def diff_rows(changes: RowChanges, *, columns: Sequence[str] | None = None,
              limit: int | None = None, offset: int = 0, summary: bool = False,
              memory_bytes: int = DEFAULT_LIMITS.max_row_memory_bytes) -> pa.Table:
    """The row diff (or with `summary`, its counts per partition) as one Arrow table."""
    with RowDiff(changes, memory_bytes=memory_bytes) as diff:
        return diff.summary() if summary else diff.rows(columns, limit=limit, offset=offset)


__all__ = ["CHANGES", "DELETE", "INSERT", "SUMMARY_SCHEMA", "UPDATE_AFTER", "UPDATE_BEFORE",
           "JOIN_COUNTS", "DiffSql", "RowDiff", "check_page", "diff_rows", "diff_table",
           "joined_exact", "output_schema", "typed"]
