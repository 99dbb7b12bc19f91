"""`ServerContext`: what every router of the app is built over, one value for all of them
(`router(ctx) -> APIRouter` in `api_v1`, `gc_routes` and `iceberg.routes`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from spark_lakeversion.auth.config import AuthConfig
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.limits import Limits
from spark_lakeversion.locations import AllowedRoots
from spark_lakeversion.versioning.interface import VersionStore

if TYPE_CHECKING:
    from spark_lakeversion.formats.iceberg.catalog.catalog import IcebergCatalog


@dataclass(frozen=True)
class ServerContext:
    """The store, the Iceberg catalog over it (with the allowed roots and the FileIO
    configuration), and the server's limits.

    `store` is the per-principal `AccessControlledStore` over `backing` (the request's
    principal comes from `server.auth.current_principal`; without authentication, the
    client's author, unrestricted), so every router checks grants and leaves audit records
    without knowing about them."""

    store: VersionStore
    catalog: IcebergCatalog
    limits: Limits
    #: who may call; None: no authentication (loopback only)
    auth: AuthConfig | None = None
    #: the store itself, under `store`'s access checks and audit
    backing: VersionStore | None = None

    @property
    def roots(self) -> AllowedRoots:
        """Where table files may live: the warehouse and every `--allowed-location`."""
        return self.catalog.roots

    @property
    def io(self) -> FileIOConfig:
        """How the server opens table files (`--io`, `--io-config`, the environment): for
        the catalog, register, `/api/v1/commits`, the content merge and gc alike."""
        return self.catalog.io
