"""Small content builders for the version-store suite."""

from __future__ import annotations

from spark_lakeversion.store.model import Content, ContentType


def table(table_id: str, version: str) -> Content:
    """A table state for table-level semantics (Delta: no content merger gets involved)."""
    return Content(ContentType.DELTA_TABLE, table_id,
                   {"location": f"file:///wh/{table_id}", "version": version})


def namespace(properties: dict[str, str] | None = None) -> Content:
    return Content(ContentType.NAMESPACE, "ns", {"properties": properties or {}})
