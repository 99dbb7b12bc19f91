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
