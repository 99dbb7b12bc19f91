"""The DuckDB database a piece of row work runs in: its own, in memory, capped at the
memory budget and spilling to a directory of its own (out of core, never a whole table held
by the server). No extension is loaded: the rows arrive as Arrow, or DuckDB reads plain
Parquet itself."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import uuid
from typing import Any

from spark_lakeversion.errors import InvalidInput

_ROOT: list[str] = []
_ROOT_LOCK = threading.Lock()


def _megabytes(memory_bytes: int) -> str:
    return f"{max(int(memory_bytes) // (1024 * 1024), 16)}MiB"


def duckdb_connect(memory_bytes: int, spill_dir: str | None = None,
                   database: str = ":memory:") -> Any:
    """A new DuckDB connection limited to `memory_bytes`, spilling to `spill_dir` (else a
    directory of its own, `spill_directory`); in memory, or in a `database` file the caller
    owns (whose tables the buffer manager can evict, so stored rows beyond the budget go to
    disk too)."""
    try:
        import duckdb
    except ImportError as exc:
        raise InvalidInput("row-level work needs DuckDB: "
                           "pip install 'spark-lakeversion[rows]'") from exc
    con = duckdb.connect(database, config={
        "memory_limit": _megabytes(memory_bytes),
        "temp_directory": spill_dir if spill_dir is not None else spill_directory(),
        "preserve_insertion_order": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    })
    # a native side's footers serve every read of it in one diff (a join's row counts too)
    con.execute("SET parquet_metadata_cache = true")
    return con


def spill_directory() -> str:
    """A spill directory for one database, not made yet: DuckDB makes it when the database
    first spills and removes it when the database closes (a directory it did not make it
    leaves), so a database costs no `mkdtemp` nor removal of its own. Each is under one
    directory this process makes once (again if a cleaner of the temporary directory took
    it: DuckDB makes only the last level) and removes at exit."""
    with _ROOT_LOCK:
        if not _ROOT:
            _ROOT.append(tempfile.mkdtemp(prefix="lakeversion-rows-"))
            atexit.register(shutil.rmtree, _ROOT[0], True)
        os.makedirs(_ROOT[0], mode=0o700, exist_ok=True)
        return os.path.join(_ROOT[0], uuid.uuid4().hex)


def prepare(con: Any, memory_bytes: int) -> None:
    """Fit a caller's connection, opened with its own spill directory (a SQL check's, before
    it is confined), for row work: the budget as its memory limit, and footers kept for the
    database's life (a native side's footers serve every read of it in one diff). A SQL
    check's spare databases for `changes.` are prepared when made, in the background."""
    con.execute(f"SET memory_limit = '{_megabytes(memory_bytes)}'")
    con.execute("SET parquet_metadata_cache = true")


__all__ = ["duckdb_connect", "prepare", "spill_directory"]
