"""lakeFS-style Python handles over a version store: `connect()`, `Branch`, `Tag`, `Reference`.

Handles are lazy: creating one checks only its name and touches no store, so
``catalog.branch("dev").create(from_="main")`` reads like what it does. Every method that
takes a ref accepts a name/expression string or a handle (or a `Commit`), so code can
pass around whichever it has.

A `Catalog` wraps any `VersionStore`; `connect(url)` only picks one, with the one factory
`spark_lakeversion.wiring.open_store` (databases and ``http(s)://`` servers alike).

One idea per module, all importable from here: `catalog.py` (`Catalog`), `reference.py`
(`Reference`, the ref arguments `RefLike`, and `HandleCatalog`, what a handle needs of its
catalog), `named.py` (`Tag`, `Branch`), `transaction.py` (`Transaction`).
"""

from __future__ import annotations

from collections.abc import Iterable

from spark_lakeversion.api.catalog import Catalog
from spark_lakeversion.api.named import Branch, Tag
from spark_lakeversion.api.reference import (
    Reference,
    RefLike,
    branch_name,
    ref_expression,
)
from spark_lakeversion.api.transaction import Transaction
from spark_lakeversion.wiring import open_store

__all__ = [
    "Branch",
    "Catalog",
    "RefLike",
    "Reference",
    "Tag",
    "Transaction",
    "branch_name",
    "connect",
    "ref_expression",
]


def connect(store_url: str | None = None, *, author: str | None = None,
            warehouse: str | None = None, allowed_locations: Iterable[str] = ()) -> Catalog:
    """Open the store at `store_url` (default: `$LAKEVERSION_SERVER_URL`, else
    `$LAKEVERSION_STORE`, else ./lakehouse).

    ``sqlite:///path``, ``sqlite:///:memory:``, ``postgresql+psycopg://...`` open a store
    in-process; ``http(s)://host:port`` talks to a lakeversion server. New Delta tables go
    under `warehouse` (default `<LAKEVERSION_HOME>/warehouse`, as the server's); tables
    may be registered under it or `allowed_locations`. Inside a run (`lakeversion run`) the
    job's catalog is on the run's server, `default_branch` is the run branch
    (`$LAKEVERSION_BRANCH`) and its commits carry the run id.
    """
    from spark_lakeversion.runs import env_branch, env_properties, env_server_url

    return Catalog(open_store(store_url or env_server_url()), author=author,
                   warehouse=warehouse, allowed_locations=allowed_locations,
                   properties=env_properties(), default_branch=env_branch())
