"""Which content merger a merge uses: the one of the key's table format.

The version-control layer's merge is format-agnostic: when both sides changed one key and the
behaviour is NORMAL, it asks that content type's `TableFormat` (`tableformat.base` registry) for
its merger (`formats.merger`) and the merger for a plan. No merger means the table-level
rule: VALUE_DIFFERS. A gated merge's checked preview is published through the same registry
(`FormatPreviews`: each changed table's `TableFormat.publish_preview`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from spark_lakeversion.model import Content, ContentType, Key
from spark_lakeversion.tableformat.base import FORMATS, TableFormat, table_format
from spark_lakeversion.tableformat.merger import ContentMerger


def content_merger_for(content_type: ContentType) -> ContentMerger | None:
    """The merger of the installed table format for `content_type`, or None."""
    fmt = table_format(content_type)
    return fmt.merger() if fmt is not None else None


def check_merger_options(options: Mapping[str, Any]) -> None:
    """Every installed format's content merger checks the options before a merge starts, so
    a bad option is refused whatever tables the merge touches (and nothing is written)."""
    if not options:
        return
    for fmt in FORMATS.all():
        merger = fmt.merger()
        if merger is not None:
            merger.check_options(options)


class FormatPreviews:
    """The merges' `PreviewPublisher` over the installed formats: each table state a
    gate's preview or an ungated merge changed (same table on both sides, or a table new
    to the branch) is published as its format says (`TableFormat.publish_preview`, files
    opened with the store's `io_properties`); `no_fast_forward` asks
    `TableFormat.republishes`."""

    def __init__(self, io_properties: Mapping[str, str]) -> None:
        self.io_properties = io_properties

    def no_fast_forward(self, branch: str,
                        changes: Mapping[Key, tuple[Content | None, Content | None]]
                        ) -> str | None:
        return self._first_reason(changes, lambda fmt, key, before, after: fmt.republishes(
            key, before, after, branch, self.io_properties))

    def reassign_refusal(self, branch: str,
                         changes: Mapping[Key, tuple[Content | None, Content | None]]
                         ) -> str | None:
        """Why `branch` may not be reset onto the states `changes` brings (each key: the
        branch's state, the new one), asking `TableFormat.reassigns`; None: it may."""
        return self._first_reason(changes, lambda fmt, key, before, after: fmt.reassigns(
            key, before, after, branch, self.io_properties))

    @staticmethod
    def _first_reason(changes: Mapping[Key, tuple[Content | None, Content | None]],
                      ask: Callable[[TableFormat, Key, Content | None, Content],
                                    str | None]) -> str | None:
        """The first reason `ask` gives for a changed table (in key order), or None."""
        for key, (before, after) in sorted(changes.items()):
            fmt = _same_table_format(before, after)
            if fmt is not None and after is not None:
                reason = ask(fmt, key, before, after)
                if reason is not None:
                    return reason
        return None

    def publish(self, branch: str,
                changes: Mapping[Key, tuple[Content | None, Content | None]]
                ) -> tuple[dict[Key, Content], Callable[[], None]]:
        published: dict[Key, Content] = {}
        undos: list[Callable[[], None]] = []

        def undo_all() -> None:
            for undo in reversed(undos):
                undo()

        try:
            for key, (before, after) in sorted(changes.items()):
                fmt = _same_table_format(before, after)
                if fmt is None or after is None:
                    continue
                content, undo = fmt.publish_preview(key, before, after, branch,
                                                    self.io_properties)
                undos.append(undo)
                if content != after:
                    published[key] = content
        except BaseException:
            undo_all()
            raise
        return published, undo_all


def _same_table_format(before: Content | None, after: Content | None) -> TableFormat | None:
    """The format of a table both states are of (one type, one table id), or of `after`
    when the branch does not have the key yet (`before` None: a table new to it), else
    None."""
    if after is None or before is not None and (before.type is not after.type
                                                or before.id != after.id):
        return None
    return table_format(after.type)
