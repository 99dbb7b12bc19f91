"""Which content merger a merge uses: the one of the key's table format.

The version-control layer's merge is format-agnostic: when both sides changed one key and the
behaviour is NORMAL, it asks that content type's `TableFormat` (`tableformat.base` registry) for
its merger (`formats.merger`) and the merger for a plan. No merger means the table-level
rule: VALUE_DIFFERS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spark_lakeversion.model import ContentType
from spark_lakeversion.tableformat.base import FORMATS, table_format
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
