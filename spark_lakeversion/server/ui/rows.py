"""The row diff as the UI shows it: a page of rows with their `change` column (insert,
delete, update_before, update_after), an update's changed cells marked. The rows come
from the row-level diff (`/api/v1/diff/rows`); until a store offers it, the page says so."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from spark_lakeversion.server.ui.tables import cell

if TYPE_CHECKING:
    from spark_lakeversion.server.ui.render import View

#: rows one page of a row diff shows
ROW_PAGE = 100


@dataclass
class RowDiff:
    columns: list[str]
    #: (change, cells, indexes of the cells an update changed)
    rows: list[tuple[str, list[str], set[int]]] = field(default_factory=list)
    offset: int = 0
    more: bool = False
    unavailable: str = ""


def mark_updates(columns: list[str], raw: list[tuple[str, list[str]]]
                 ) -> list[tuple[str, list[str], set[int]]]:
    """Each update_before/update_after pair gets the indexes of the cells that differ."""
    marked: list[tuple[str, list[str], set[int]]] = []
    for i, (change, cells) in enumerate(raw):
        changed: set[int] = set()
        partner = None
        if change == "update_before" and i + 1 < len(raw) and \
                raw[i + 1][0] == "update_after":
            partner = raw[i + 1][1]
        elif change == "update_after" and i > 0 and raw[i - 1][0] == "update_before":
            partner = raw[i - 1][1]
        if partner is not None:
            changed = {j for j, (x, y) in enumerate(zip(cells, partner)) if x != y}
        marked.append((change, cells, changed))
    return marked


def row_diff(view: View, a: str, b: str, table: str, offset: int = 0) -> RowDiff:
    """Rows offset..offset+ROW_PAGE of the diff of `table` going from `a` to `b`."""
    diff_rows = getattr(view.store, "diff_rows", None)
    if diff_rows is None:
        return RowDiff([], unavailable="the row diff is not available on this server")
    arrow = diff_rows(a, b, table, limit=offset + ROW_PAGE + 1)
    window = arrow.slice(offset, ROW_PAGE)
    columns = list(window.column_names)
    raw = [(str(r[columns[0]]), [cell(r[c]) for c in columns[1:]]) for r in window.to_pylist()]
    return RowDiff(columns[1:], mark_updates(columns[1:], raw), offset,
                   arrow.num_rows > offset + ROW_PAGE)
