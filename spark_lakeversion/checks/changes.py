"""`changes.db.t` (SQL checks) and `ctx.changes("db.t")` (Python checks): the row diff of a
table from the merge's target to its preview, `change` column first, as an Arrow table.

Its cost follows the change: only the data and delete files live on one side of target and
preview are read (`TableFormat.row_changes`), through the server's FileIO properties the gate
hands over (`GateContext.io`), within the store's memory budget
(`Limits.max_row_memory_bytes`). A check never names another ref: both states are the
gate's own relations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import Key, KeyLike
from spark_lakeversion.rows.diff import RowDiff
from spark_lakeversion.versioning.gates.context import GateContext
from spark_lakeversion.versioning.rowdiff import row_changes_of

if TYPE_CHECKING:
    import pyarrow as pa

#: the catalog a SQL check reads changes from (`changes.db.t`), beside the three states
CHANGES = "changes"


def changes_table(context: GateContext, table: KeyLike, con: Any = None) -> pa.Table:
    """The rows of `table` the merge changes (target -> preview); `InvalidInput` when the
    table is in neither state. `con`: the SQL check's DuckDB connection, not yet confined,
    to run the diff in (one database start fewer)."""
    key = Key.of(table)
    before = context.relations.get("target", {}).get(key)
    after = context.relations.get("preview", {}).get(key)
    if before is None and after is None:
        raise InvalidInput(f"no table {key} in the target or the preview: changes.{key} "
                           "reads the rows a merge changes in one of them")
    changes = row_changes_of(before, after, key, context.io)
    with RowDiff(changes, memory_bytes=context.store.limits.max_row_memory_bytes,
                 con=con) as diff:
        return diff.rows()


__all__ = ["CHANGES", "changes_table"]
