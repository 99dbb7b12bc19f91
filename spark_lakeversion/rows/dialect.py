"""The SQL dialects row work is written in, so one query text serves every engine that runs
it: DuckDB in the server (out of core, within the memory budget) and Spark in the caller's
session (past the budget). Each query builder asks its dialect for what the two spell
differently; everything else is the SQL both accept."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """How one engine spells the few things DuckDB and Spark SQL disagree on."""

    name: str
    quote_char: str

    def quote(self, name: str) -> str:
        """An identifier, quoted (any character allowed, the quote doubled)."""
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def repeat(self, count: str) -> str:
        """A set-returning expression giving `count` rows per input row (count > 0)."""
        if self.name == "spark":
            return f"explode(sequence(1, {count}))"
        return f"unnest(range({count}))"


DUCKDB = Dialect("duckdb", '"')
SPARK = Dialect("spark", "`")

__all__ = ["DUCKDB", "SPARK", "Dialect"]


def same(dialect: Dialect, left: str, right: str) -> str:
    """Null-safe equality (NULL equals NULL), as each engine spells it."""
    if dialect.name == "spark":
        return f"({left} <=> {right})"
    return f"({left} IS NOT DISTINCT FROM {right})"


__all__ += ["same"]


# ---- what else the two engines spell differently (the row diff's statements) -------------

def temp_relation(dialect: Dialect, name: str, query: str) -> str:
    """The statement naming `query`'s rows `name` for the rest of one piece of row work:
    a temporary table in DuckDB (materialized once, spilling past the budget), a temporary
    view in Spark (the caller's session plans the whole chain as one job, lazily)."""
    if dialect.name == "spark":
        return f"CREATE OR REPLACE TEMPORARY VIEW {dialect.quote(name)} AS {query}"
    return f"CREATE TEMP TABLE {dialect.quote(name)} AS {query}"


def ascending(expressions: list[str]) -> str:
    """An ORDER BY list both engines sort alike: ascending with nulls last (DuckDB's default
    already, not Spark's)."""
    return ", ".join(f"{e} ASC NULLS LAST" for e in expressions)


def by_name(name: str) -> Dialect:
    """The dialect an engine name stands for (`duckdb`, `spark`)."""
    for dialect in (DUCKDB, SPARK):
        if dialect.name == name:
            return dialect
    from spark_lakeversion.errors import InvalidInput

    raise InvalidInput(f"unknown row engine {name!r}: duckdb or spark")


def string_literal(dialect: Dialect, text: str) -> str:
    """`text` as a SQL string literal (Spark reads backslashes as escapes, DuckDB does not)."""
    if dialect.name == "spark":
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + text.replace("'", "''") + "'"


__all__ += ["ascending", "by_name", "string_literal", "temp_relation"]
