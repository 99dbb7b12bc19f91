"""The storage interface on SQLAlchemy: SQLite and PostgreSQL (`SqlStorage`)."""

from __future__ import annotations

from spark_lakeversion.store.sql.storage import SqlStorage

__all__ = ["SqlStorage"]
