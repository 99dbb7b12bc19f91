"""The composition root: the one place a store is wired with everything above the
version-control layer that it runs, so that layer never imports its callers (as lakeFS
injects its hooks when the system is wired). Every surface (server, Python API, CLI, Spark
helpers, benches) opens stores here; configuration is fixed at that moment."""

from __future__ import annotations

from collections.abc import Mapping

from spark_lakeversion.checks.runner import notify, run_checks, validate
from spark_lakeversion.limits import Limits
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.versioning import open_store as open_version_store
from spark_lakeversion.versioning.gates.context import CheckEngines
from spark_lakeversion.versioning.gates.policy import CheckPolicy

#: the merge gates' engines (`spark_lakeversion.checks`): SQL on DuckDB, Python, webhooks
CHECK_ENGINES = CheckEngines(run=run_checks, notify=notify, validate=validate)


def open_store(url: str | None = None, *, limits: Limits | None = None,
               io: Mapping[str, str] | None = None,
               check_policy: CheckPolicy | None = None) -> VersionStore:
    """The store at `url` (`spark_lakeversion.versioning.open_store`: SQLite, PostgreSQL or
    an http(s) server), its gates wired to `CHECK_ENGINES`."""
    return open_version_store(url, limits=limits, io=io, check_policy=check_policy,
                              check_engines=CHECK_ENGINES)
