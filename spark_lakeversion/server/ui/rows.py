"""The row diff as the UI shows it: one page of rows (`VersionStore.diff_rows`, the first
100, then paged by its token) with the `change` column (insert, delete, update_before,
update_after); an update's changed cells are marked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from spark_lakeversion.errors import LakeVersionError
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
    total: int = 0
    next_token: str | None = None
    paged: bool = False  # this is a later page (a link back to the first one)
    unavailable: str = ""


def mark_updates(raw: list[tuple[str, list[str]]]) -> list[tuple[str, list[str], set[int]]]:
    """Each update_before/update_after pair gets the indexes of the cells that differ."""
    marked: list[tuple[str, list[str], set[int]]] = []
    for i, (change, cells) in enumerate(raw):
        partner = None
        if change == "update_before" and i + 1 < len(raw) and \
                raw[i + 1][0] == "update_after":
            partner = raw[i + 1][1]
        elif change == "update_after" and i > 0 and raw[i - 1][0] == "update_before":
            partner = raw[i - 1][1]
        changed = {j for j, (x, y) in enumerate(zip(cells, partner)) if x != y} \
            if partner is not None else set()
        marked.append((change, cells, changed))
    return marked


def row_diff(view: View, a: str, b: str, table: str) -> RowDiff:
    """A page of the diff of `table` going from `a` to `b`: the first, or the one the
    query's `rows` token names when its `table` is this one. A table whose rows cannot be
    diffed (a view, a feature the reader refuses) says why instead."""
    token = view.query.get("rows") if view.query.get("table") == table else None
    try:
        page = view.store.diff_rows(a, b, table, limit=ROW_PAGE, page_token=token or None)
    except LakeVersionError as exc:
        if token:
            raise
        return RowDiff([], unavailable=f"no row diff: {exc.message}")
    columns = list(page.rows.column_names)
    raw = [(str(r[columns[0]]), [cell(r[c]) for c in columns[1:]])
           for r in page.rows.to_pylist()]
    return RowDiff(columns[1:], mark_updates(raw), page.total, page.next_page_token,
                   bool(token))
