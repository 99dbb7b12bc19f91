"""The version-control layer: refs, commits, merge, cherry-pick, revert, rollback, log,
diff and ref expressions, as algorithms over any storage (`spark_lakeversion.store.spi`).

`open_store(url, limits=..., io=...)` is the one factory (its configuration fixed then):
``sqlite:///path``, ``sqlite:///:memory:`` and ``postgresql+psycopg://...`` give
`VersionControl` over a database, ``http(s)://host:port`` the `RestVersionStore` over a
server's `/api/v1`. With no URL, the embedded SQLite store
under ``$LAKEVERSION_HOME`` (default ``./lakehouse``) is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from spark_lakeversion.limits import Limits
from spark_lakeversion.locations import lakeversion_home
from spark_lakeversion.versioning.gates.context import NO_ENGINES, CheckEngines
from spark_lakeversion.versioning.gates.policy import CheckPolicy
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH, LogPage, VersionStore
from spark_lakeversion.versioning.options import MergeOptions

__all__ = ["DEFAULT_BRANCH", "LogPage", "MergeOptions", "VersionStore", "default_store_url",
           "lakeversion_home", "open_store"]


def default_store_url() -> str:
    """`$LAKEVERSION_STORE`, else the embedded SQLite file under the lakeversion home."""
    url = os.environ.get("LAKEVERSION_STORE")
    if url:
        return url
    home = lakeversion_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'store.db'}"


def open_store(url: str | None = None, *, limits: Limits | None = None,
               io: Mapping[str, str] | None = None,
               check_policy: CheckPolicy | None = None,
               check_engines: CheckEngines = NO_ENGINES) -> VersionStore:
    """The store at `url`, configured once: `limits` (default `Limits()`) hold every commit,
    `io` are the FileIO properties content merges open table files with (default: the
    standard `AWS_...`/`PYICEBERG_...` environment), and `check_policy` is what merge-gate
    checks run in this process may reach (default: `CheckPolicy.from_environment()`,
    `LAKEVERSION_CHECK_MODULES` and `LAKEVERSION_WEBHOOK_ALLOW`; a server's own comes from
    `lakeversion serve`). None of them changes after opening. A server store (http) keeps
    its own: `io` is refused for it. `check_engines` run its gates' checks: this layer
    cannot import them, so `spark_lakeversion.wiring.open_store`, the composition root
    every surface opens stores with, hands them in; without them no check can run."""
    from spark_lakeversion.errors import InvalidInput
    from spark_lakeversion.fileio import FileIOConfig

    url = url or default_store_url()
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in ("http", "https"):
        from spark_lakeversion.versioning.http import RestVersionStore

        if io is not None:
            raise InvalidInput("a server store opens table files with the server's own "
                               "FileIO properties: give them to `lakeversion serve`")
        return RestVersionStore(url, limits=limits)
    if scheme in ("sqlite", "postgresql", "postgres"):
        if scheme == "postgres":
            url = "postgresql" + url[len("postgres"):]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        if url.startswith("postgresql"):
            try:
                import psycopg  # noqa: F401
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise InvalidInput(
                    "PostgreSQL stores need psycopg: pip install 'spark-lakeversion[postgres]'"
                ) from exc
        from spark_lakeversion.versioning.sql import SqlVersionStore

        return SqlVersionStore(url, limits=limits, io=FileIOConfig.of(io) if io is not None
                               else FileIOConfig.from_environment(),
                               check_policy=check_policy or CheckPolicy.from_environment(),
                               check_engines=check_engines)
    raise InvalidInput(f"unsupported store URL {url!r}: use sqlite:///PATH, "
                       "postgresql+psycopg://USER@HOST/DB or http(s)://HOST:PORT")
