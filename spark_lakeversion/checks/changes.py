"""`changes.db.t` (SQL checks) and `ctx.changes("db.t")` (Python checks): the row diff of a
table from the merge's target to its preview, `change` column first, as an Arrow table.

Its cost follows the change: only the data and delete files live on one side of target and
preview are read (`TableFormat.row_changes`), through the server's FileIO properties the gate
hands over (`GateContext.io`), or by DuckDB itself where a side is plain local Parquet
(`rows.native`), within the store's memory budget (`Limits.max_row_memory_bytes`), as one
query (`rows.diff.diff_table`). A check never names another ref: both states are the
gate's own relations.

One check run (`runner.run_checks`, one merge preview) plans and reads each table's diff
once for all its checks (`shared_changes`): the first check that needs it computes it, the
others wait for it and get the same Arrow table. The diffs are dropped when the run ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import Content, Key, KeyLike
from spark_lakeversion.rows.diff import diff_table
from spark_lakeversion.versioning.gates.context import GateContext
from spark_lakeversion.versioning.rowdiff import row_changes_of

if TYPE_CHECKING:
    import pyarrow as pa

#: the catalog a SQL check reads changes from (`changes.db.t`), beside the three states
CHANGES = "changes"

#: what identifies one diff: the table and both states' contents (canonical JSON)
_DiffKey = tuple[Key, str, str]


class _RunDiffs:
    """The row diffs of one check run, each computed once (a lock per diff: a second check
    waits for the first; a diff that failed is not kept, so the next check tries again)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[_DiffKey, threading.Lock] = {}
        self._tables: dict[_DiffKey, pa.Table] = {}
        self.users = 0

    def get(self, key: _DiffKey, compute: Callable[[], pa.Table]) -> pa.Table:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            found = self._tables.get(key)
            if found is None:
                found = self._tables[key] = compute()
            return found


#: context.attempt -> the diffs of the check run under way on it
_RUNS: dict[str, _RunDiffs] = {}
_RUNS_LOCK = threading.Lock()


@contextmanager
def shared_changes(context: GateContext) -> Iterator[None]:
    """While this runs, the checks of `context` share each table's row diff."""
    with _RUNS_LOCK:
        run = _RUNS.setdefault(context.attempt, _RunDiffs())
        run.users += 1
    try:
        yield
    finally:
        with _RUNS_LOCK:
            run.users -= 1
            if not run.users:
                _RUNS.pop(context.attempt, None)


def _state(content: Content | None) -> str:
    return content.canonical() if content is not None else ""


def changes_table(context: GateContext, table: KeyLike, con: Any = None) -> pa.Table:
    """The rows of `table` the merge changes (target -> preview); `InvalidInput` when the
    table is in neither state. `con`: the SQL check's DuckDB connection, not yet confined
    and fit for row work within the store's budget (`rows.engine.prepare`), to run the
    diff in (one database start fewer)."""
    key = Key.of(table)
    before = context.relations.get("target", {}).get(key)
    after = context.relations.get("preview", {}).get(key)
    if before is None and after is None:
        raise InvalidInput(f"no table {key} in the target or the preview: changes.{key} "
                           "reads the rows a merge changes in one of them")

    def compute() -> pa.Table:
        return diff_table(row_changes_of(before, after, key, context.io),
                          memory_bytes=context.store.limits.max_row_memory_bytes, con=con)

    with _RUNS_LOCK:
        run = _RUNS.get(context.attempt)
    if run is None:
        return compute()
    return run.get((key, _state(before), _state(after)), compute)


__all__ = ["CHANGES", "changes_table", "shared_changes"]
