"""A whole-store snapshot (every row of the SQL storage) for "wrote nothing" assertions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from spark_lakeversion.versioning import VersionStore


def snapshot_of_store(store: VersionStore) -> dict[str, Any]:
    """Every row of every store table but the audit trail: equal snapshots mean nothing
    was written. (`lv_audit` records attempts, refusals included, on every server.)"""
    store = getattr(store, "_backing", store)  # a REST client: look at the server's store
    engine = store.storage.db.engine  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name.startswith("lv_") and name != "lv_audit":
                rows = conn.execute(sa.text(f"SELECT * FROM {name}")).all()
                out[name] = sorted(tuple(map(repr, r)) for r in rows)
    return out
