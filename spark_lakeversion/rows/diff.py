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
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.limits import DEFAULT_LIMITS
from spark_lakeversion.rows.engine import borrow, duckdb_connect, give_back
from spark_lakeversion.rows.schema import CHANGE_COLUMN, check_columns
from spark_lakeversion.rows.source import PARTITION_COLUMN, RowChanges

INSERT, DELETE, UPDATE_BEFORE, UPDATE_AFTER = "insert", "delete", "update_before", "update_after"
#: every value of the `change` column, in the order a key's rows are listed
CHANGES = (UPDATE_BEFORE, UPDATE_AFTER, DELETE, INSERT)

#: the summary's columns: one row per partition label
SUMMARY_SCHEMA = pa.schema([("partition", pa.string()), ("inserted", pa.int64()),
                            ("deleted", pa.int64()), ("updated", pa.int64())])

_P, _S, _N, _R = "__lv_p", "__lv_s", "__lv_n", "__lv_rank"
#: more rows than any diff holds (DuckDB's LIMIT and OFFSET are 64-bit)
_MAX_ROWS = 2**62


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _reader(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> pa.RecordBatchReader:
    full = pa.schema([*schema, pa.field(PARTITION_COLUMN, pa.string())])
    return pa.RecordBatchReader.from_batches(full, batches)


def output_schema(schema: pa.Schema, columns: Sequence[str]) -> pa.Schema:
    """`change` first, then the asked columns as the table has them (field ids kept)."""
    return pa.schema([pa.field(CHANGE_COLUMN, pa.string(), nullable=False),
                      *(schema.field(c) for c in columns)])


class RowDiff:
    """One diff: both sides' changed rows loaded once into DuckDB, then its pages, its
    total and its per-partition summary. Close it (or use `with`) to free the database."""

    def __init__(self, changes: RowChanges, *,
                 memory_bytes: int = DEFAULT_LIMITS.max_row_memory_bytes,
                 con: Any = None) -> None:
        """`con`: run in this DuckDB connection instead of a new one (a SQL check's, saving
        a database start); its settings are restored and the diff's tables dropped on
        close."""
        self.changes = changes
        self.schema = changes.schema
        self._spill = tempfile.mkdtemp(prefix="lakeversion-rows-")
        self._own = con is None
        self._con: Any = duckdb_connect(memory_bytes, self._spill) if con is None else con
        try:
            if con is not None:
                borrow(con, memory_bytes, self._spill)
            self._load()
        except BaseException:
            self.close()
            raise

    # ---- loading --------------------------------------------------------------------------
    def _load(self) -> None:
        """+1 per row after, -1 per row before, summed per distinct row in one pass over both
        sides' streams: what is left (`lv_net`) is the change, usually small."""
        con, schema = self._con, self.schema
        cols = ", ".join(quote(n) for n in schema.names)
        for name, side in (("lv_before_src", self.changes.before),
                           ("lv_after_src", self.changes.after)):
            con.register(name, _reader(schema, side.batches(partition=True)))
        part = quote(PARTITION_COLUMN)
        con.execute(f"""
            CREATE TEMP TABLE lv_net AS
            SELECT {cols}, CAST(sum({_S}) AS BIGINT) AS {_N},
                   any_value({_P}) FILTER (WHERE {_S} > 0) AS lv_pa,
                   any_value({_P}) FILTER (WHERE {_S} < 0) AS lv_pb
            FROM (SELECT {cols}, 1 AS {_S}, {part} AS {_P} FROM lv_after_src
                  UNION ALL SELECT {cols}, -1 AS {_S}, {part} AS {_P} FROM lv_before_src)
            GROUP BY {cols} HAVING sum({_S}) <> 0""")
        for name in ("lv_before_src", "lv_after_src"):
            con.unregister(name)
        self._result()

    def _side(self, sign: str) -> str:
        """The query of one side's remaining rows, each repeated as often as it counts."""
        cols = ", ".join(quote(n) for n in self.schema.names)
        part = "lv_pa" if sign == ">" else "lv_pb"
        return (f"SELECT {cols}, {part} AS {_P} FROM (SELECT *, unnest(range(abs({_N}))) "
                f"AS lv_i FROM lv_net WHERE {_N} {sign} 0)")

    def _result(self) -> None:
        con = self._con
        cols = ", ".join(quote(n) for n in self.schema.names)
        key = [quote(k) for k in self.changes.identifier]
        if not key:
            con.execute(f"""
                CREATE TEMP TABLE lv_result AS
                SELECT '{DELETE}' AS {quote(CHANGE_COLUMN)}, 2 AS {_R}, {cols}, {_P},
                       0 AS {_N} FROM ({self._side("<")})
                UNION ALL
                SELECT '{INSERT}', 3, {cols}, {_P}, 0 FROM ({self._side(">")})""")
            self._order = f"{cols}, {_R}"
            return
        keys = ", ".join(key)
        for name, sign in (("lv_del_n", "<"), ("lv_ins_n", ">")):
            con.execute(f"""CREATE TEMP TABLE {name} AS SELECT *, row_number() OVER
                (PARTITION BY {keys} ORDER BY {cols}) AS {_N} FROM ({self._side(sign)})""")
        on = " AND ".join([f"d.{k} IS NOT DISTINCT FROM i.{k}" for k in key] +
                          [f"d.{_N} = i.{_N}"])
        d_cols = ", ".join(f"d.{quote(n)}" for n in self.schema.names)
        i_cols = ", ".join(f"i.{quote(n)}" for n in self.schema.names)
        con.execute(f"""
            CREATE TEMP TABLE lv_result AS
            SELECT CASE WHEN i.{_N} IS NULL THEN '{DELETE}' ELSE '{UPDATE_BEFORE}' END
                       AS {quote(CHANGE_COLUMN)},
                   CASE WHEN i.{_N} IS NULL THEN 2 ELSE 0 END AS {_R},
                   {d_cols}, d.{_P} AS {_P}, d.{_N} AS {_N}
            FROM lv_del_n d LEFT JOIN lv_ins_n i ON {on}
            UNION ALL
            SELECT CASE WHEN d.{_N} IS NULL THEN '{INSERT}' ELSE '{UPDATE_AFTER}' END,
                   CASE WHEN d.{_N} IS NULL THEN 3 ELSE 1 END,
                   {i_cols}, i.{_P}, i.{_N}
            FROM lv_ins_n i LEFT JOIN lv_del_n d ON {on}""")
        self._order = f"{keys}, {_N}, {_R}"

    # ---- answers --------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """How many rows the whole diff has."""
        row = self._con.execute("SELECT count(*) FROM lv_result").fetchone()
        return int(row[0]) if row else 0

    def rows(self, columns: Sequence[str] | None = None, *, limit: int | None = None,
             offset: int = 0) -> pa.Table:
        """Rows `offset`.. of the diff (at most `limit`), `change` first, then `columns`."""
        if limit is not None and (isinstance(limit, bool) or not 0 <= limit < _MAX_ROWS):
            raise InvalidInput(f"limit must be an integer from 0 to {_MAX_ROWS - 1}, "
                               f"not {limit!r}")
        if isinstance(offset, bool) or not 0 <= offset < _MAX_ROWS:
            raise InvalidInput(f"offset must be an integer from 0 to {_MAX_ROWS - 1}, "
                               f"not {offset!r}")
        names = check_columns(self.schema, columns)
        wanted = ", ".join([quote(CHANGE_COLUMN), *map(quote, names)])
        page = f" LIMIT {int(limit)}" if limit is not None else ""
        table = self._con.execute(
            f"SELECT {wanted} FROM lv_result ORDER BY {self._order}{page} OFFSET {int(offset)}"
        ).fetch_arrow_table()
        return _typed(table, output_schema(self.schema, names))

    def summary(self) -> pa.Table:
        """Per partition label: rows inserted, deleted and updated (one per pair, counted in
        the partition of its after image)."""
        change = quote(CHANGE_COLUMN)
        table = self._con.execute(f"""
            SELECT coalesce({_P}, '') AS partition,
                   count(*) FILTER (WHERE {change} = '{INSERT}') AS inserted,
                   count(*) FILTER (WHERE {change} = '{DELETE}') AS deleted,
                   count(*) FILTER (WHERE {change} = '{UPDATE_AFTER}') AS updated
            FROM lv_result WHERE {change} <> '{UPDATE_BEFORE}'
            GROUP BY 1 ORDER BY 1""").fetch_arrow_table()
        return table.cast(SUMMARY_SCHEMA)

    def close(self) -> None:
        con, self._con = getattr(self, "_con", None), None
        if con is not None and self._own:
            con.close()
        elif con is not None:
            for table in ("lv_result", "lv_del_n", "lv_ins_n", "lv_net"):
                con.execute(f"DROP TABLE IF EXISTS temp.main.{table}")
            for name in ("lv_before_src", "lv_after_src"):
                try:
                    con.unregister(name)
                except Exception:  # noqa: BLE001 - not registered (loading never began)
                    pass
            give_back(con)
        shutil.rmtree(self._spill, ignore_errors=True)

    def __enter__(self) -> RowDiff:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _typed(table: pa.Table, schema: pa.Schema) -> pa.Table:
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
           "RowDiff", "diff_rows", "output_schema"]
