"""Which content merger a merge uses: the one of the key's table format.

The merge engine is format-agnostic: when both sides changed one key and the behaviour is
NORMAL, it asks that content type's `TableFormat` for its merger (`formats.merger`) and the
merger for a plan. No merger (e.g. Delta today) means the table-level rule: VALUE_DIFFERS.
"""

from __future__ import annotations

from spark_lakeversion.formats.base import table_format
from spark_lakeversion.formats.merger import ContentMerger
from spark_lakeversion.store.model import ContentType


def content_merger_for(content_type: ContentType) -> ContentMerger | None:
    """The merger of the installed table format for `content_type`, or None."""
    fmt = table_format(content_type)
    return fmt.merger() if fmt is not None else None
