"""The row diff of one table between two refs: the version-control layer's part.

It resolves both refs to commits (a page token pins them, so every page is of one diff),
reads the table's state at each, asks the state's `TableFormat` (the `tableformat` registry)
for the rows in the files live on exactly one side (`TableFormat.row_changes`, through the
store's FileIO properties) and runs the format-neutral diff (`rows.diff.RowDiff`) within
the store's memory budget (`Limits.max_row_memory_bytes`; pyarrow and DuckDB load when a
diff runs, not when a store opens). Access (read on both refs) is the access layer's rule
`diff_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from spark_lakeversion.errors import InvalidInput, KeyNotFound, ReferenceConflict
from spark_lakeversion.limits import Limits
from spark_lakeversion.model import Content, Key, KeyLike
from spark_lakeversion.tableformat.base import FORMATS
from spark_lakeversion.versioning.commits import Commits
from spark_lakeversion.versioning.refs import Refs

if TYPE_CHECKING:
    from spark_lakeversion.rows.page import RowDiffPage
    from spark_lakeversion.rows.source import RowChanges


def row_changes_of(before: Content | None, after: Content | None, key: Key,
                   io_properties: Mapping[str, str]) -> RowChanges:
    """The format's `RowChanges` of `key` from `before` to `after` (either may be None)."""
    if before is None and after is None:
        raise KeyNotFound(f"table {key} exists on neither side")
    if before is not None and after is not None and before.type != after.type:
        raise InvalidInput(f"{key} is a {before.type.value} on one side and a "
                           f"{after.type.value} on the other: no row diff")
    content_type = (after or before).type  # type: ignore[union-attr]
    return FORMATS.require(content_type).row_changes(before, after, io_properties)


class RowDiffs:
    """`VersionStore.diff_rows` over the version-control layer's refs and commits."""

    def __init__(self, refs: Refs, commits: Commits, limits: Limits,
                 io_properties: Mapping[str, str]) -> None:
        self.refs = refs
        self.commits = commits
        self.limits = limits
        self.io_properties = io_properties

    def diff_rows(self, from_ref: str, to_ref: str, key: KeyLike, *,
                  columns: Sequence[str] | None = None, limit: int | None = None,
                  page_token: str | None = None, summary: bool = False) -> RowDiffPage:
        from spark_lakeversion.rows.diff import RowDiff
        from spark_lakeversion.rows.page import PageToken, RowDiffPage

        k = Key.of(key)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or not 0 <= limit < 2**62):
            raise InvalidInput(f"limit must be an integer from 0 to 2**62 - 1, not {limit!r}")
        from_commit = self.refs.resolve(from_ref).commit_id
        to_commit = self.refs.resolve(to_ref).commit_id
        offset = 0
        if page_token:
            token = PageToken.decode(page_token)
            if (token.from_commit, token.to_commit) != (from_commit, to_commit):
                raise ReferenceConflict(f"{from_ref} or {to_ref} moved since the first page "
                                        "of this row diff: start again without page_token")
            offset = token.offset
        before = self.commits.get_contents(from_commit, [k]).get(k)
        after = self.commits.get_contents(to_commit, [k]).get(k)
        if before is None and after is None:
            raise KeyNotFound(f"table {k} exists at neither {from_ref} nor {to_ref}")
        changes = row_changes_of(before, after, k, self.io_properties)
        with RowDiff(changes, memory_bytes=self.limits.max_row_memory_bytes) as diff:
            total = diff.total
            if summary:
                return RowDiffPage(diff.summary(), total, None, changes.statistics())
            rows = diff.rows(columns, limit=limit, offset=offset)
        end = offset + rows.num_rows
        following = PageToken(from_commit, to_commit, end).encode() \
            if limit is not None and end < total else None
        return RowDiffPage(rows, total, following, changes.statistics())

    def plan_row_diff(self, from_ref: str, to_ref: str, key: KeyLike, *,
                      columns: Sequence[str] | None = None, limit: int | None = None,
                      summary: bool = False, dialect: str = "spark") -> dict[str, Any]:
        """The row diff planned for an engine that reads the rows itself (`rows.plan`):
        both refs resolved to commits, the files live on one side only found from metadata;
        no row is read here."""
        from spark_lakeversion.rows.dialect import by_name
        from spark_lakeversion.rows.plan import plan_diff

        engine = by_name(dialect)
        k = Key.of(key)
        from_commit = self.refs.resolve(from_ref).commit_id
        to_commit = self.refs.resolve(to_ref).commit_id
        before = self.commits.get_contents(from_commit, [k]).get(k)
        after = self.commits.get_contents(to_commit, [k]).get(k)
        if before is None and after is None:
            raise KeyNotFound(f"table {k} exists at neither {from_ref} nor {to_ref}")
        changes = row_changes_of(before, after, k, self.io_properties)
        return plan_diff(changes, k, (from_commit, to_commit), engine, columns=columns,
                         limit=limit, summary=summary)


__all__ = ["RowDiffs", "row_changes_of"]
