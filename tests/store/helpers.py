"""Small builders and a whole-store snapshot for "wrote nothing" assertions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from spark_lakeversion.store.model import Content, ContentType
from spark_lakeversion.versioning import VersionStore


def table(table_id: str, version: str) -> Content:
    """A table state for table-level semantics (Delta: no content merger gets involved)."""
    return Content(ContentType.DELTA_TABLE, table_id,
                   {"location": f"file:///wh/{table_id}", "version": version})


def namespace(properties: dict[str, str] | None = None) -> Content:
    return Content(ContentType.NAMESPACE, "ns", {"properties": properties or {}})


def snapshot_of_store(store: VersionStore) -> dict[str, Any]:
    """Every row of every store table: equal snapshots mean nothing was written."""
    store = getattr(store, "_backing", store)  # a REST client: look at the server's store
    engine = store.storage.db.engine  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name.startswith("lv_"):
                rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
                out[name] = sorted(tuple(map(repr, r)) for r in rows)
    return out
