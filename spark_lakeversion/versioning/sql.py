"""`SqlVersionStore`: the version-control layer over the SQL storage (SQLite, PostgreSQL)."""

from __future__ import annotations

from spark_lakeversion.store.sql import SqlStorage
from spark_lakeversion.versioning.control import VersionControl


class SqlVersionStore(VersionControl):
    def __init__(self, url: str) -> None:
        super().__init__(SqlStorage(url))
