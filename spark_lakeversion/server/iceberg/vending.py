"""Credential vending: the storage config a client receives with a table, when it asks.

A client that sends `X-Iceberg-Access-Delegation: vended-credentials` (pyiceberg does by
default; Spark through the catalog's `header.X-Iceberg-Access-Delegation`) gets, with
`loadTable`, `createTable` and `registerTable`, the server's storage settings in the
LoadTableResult's `config` and its credentials in `storage-credentials` (one entry, for the
table's location). Then Spark, pyiceberg and DuckDB need no storage settings of their own.
The credentials are the server's static ones (`--io`, `--io-config`, the environment);
a client that did not ask gets none, and they are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from spark_lakeversion.fileio import FileIOConfig

ACCESS_DELEGATION = "x-iceberg-access-delegation"
VENDED_CREDENTIALS = "vended-credentials"


def wants_vended_credentials(request: Request) -> bool:
    """The header lists delegation modes, comma-separated; we serve `vended-credentials`."""
    value = request.headers.get(ACCESS_DELEGATION, "")
    return VENDED_CREDENTIALS in (mode.strip().lower() for mode in value.split(","))


@dataclass(frozen=True)
class StorageAccess:
    """LoadTableResult's `config` and `storage-credentials`."""

    config: dict[str, str] = field(default_factory=dict)
    credentials: list[dict[str, Any]] = field(default_factory=list)


NO_ACCESS = StorageAccess()


def storage_access(io: FileIOConfig, table_location: str, asked: bool) -> StorageAccess:
    """What to tell a client about where the table at `table_location` is stored."""
    if not asked:
        return NO_ACCESS
    config = io.vended()
    if not io.credentials():
        return StorageAccess(config)
    return StorageAccess(config, [{"prefix": table_location, "config": dict(config)}])
