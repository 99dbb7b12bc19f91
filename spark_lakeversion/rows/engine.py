"""The DuckDB database a piece of row work runs in: its own, in memory, capped at the
memory budget and spilling to a directory the caller owns (out of core, never a whole table
held by the server). No extension is loaded: the rows arrive as Arrow."""

from __future__ import annotations

from typing import Any

from spark_lakeversion.errors import InvalidInput


def _megabytes(memory_bytes: int) -> str:
    return f"{max(int(memory_bytes) // (1024 * 1024), 16)}MiB"


def duckdb_connect(memory_bytes: int, spill_dir: str, database: str = ":memory:") -> Any:
    """A new DuckDB connection limited to `memory_bytes`, spilling to `spill_dir`; in memory,
    or in a `database` file the caller owns (whose tables the buffer manager can evict, so
    stored rows beyond the budget go to disk too)."""
    try:
        import duckdb
    except ImportError as exc:
        raise InvalidInput("row-level work needs DuckDB: "
                           "pip install 'spark-lakeversion[rows]'") from exc
    con = duckdb.connect(database, config={
        "memory_limit": _megabytes(memory_bytes),
        "temp_directory": spill_dir,
        "preserve_insertion_order": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    })
    # a native side's footers serve every read of it in one diff (a join's row counts too)
    con.execute("SET parquet_metadata_cache = true")
    return con


def borrow(con: Any, memory_bytes: int, spill_dir: str) -> None:
    """Run row work in a caller's connection (a SQL check's, before it is confined): the same
    budget and spill directory, until `give_back`."""
    con.execute(f"SET memory_limit = '{_megabytes(memory_bytes)}'")
    con.execute("SET temp_directory = '" + spill_dir.replace("'", "''") + "'")
    con.execute("SET parquet_metadata_cache = true")


def give_back(con: Any, budget: bool = True) -> None:
    """The caller's connection as it was before `borrow`; without `budget`, only the spill
    directory (about to be removed) is reset, and the memory limit and metadata cache stay
    (for a database about to be confined, whose own query reads only what the row work
    produced, within the same budget)."""
    con.execute("RESET temp_directory")
    if budget:
        con.execute("RESET memory_limit")
        con.execute("RESET parquet_metadata_cache")


__all__ = ["borrow", "duckdb_connect", "give_back"]
