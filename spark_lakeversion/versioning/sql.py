"""`SqlVersionStore`: the version-control layer over the SQL storage (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping

from spark_lakeversion.limits import Limits
from spark_lakeversion.store.sql import SqlStorage
from spark_lakeversion.versioning.control import VersionControl
from spark_lakeversion.versioning.gates.context import NO_ENGINES, CheckEngines
from spark_lakeversion.versioning.gates.policy import CheckPolicy


class SqlVersionStore(VersionControl):
    """Only opens the storage: everything else is `VersionControl`'s."""

    def __init__(self, url: str, *, limits: Limits | None = None,
                 io: Mapping[str, str] | None = None,
                 check_policy: CheckPolicy | None = None,
                 check_engines: CheckEngines = NO_ENGINES) -> None:
        super().__init__(SqlStorage(url), limits=limits, io=io, check_policy=check_policy,
                         check_engines=check_engines)
