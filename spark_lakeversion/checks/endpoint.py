"""The Iceberg REST endpoint check engines read previews through.

The gate runs wherever the `VersionControl` lives (inside `lakeversion serve`, or in a
CLI/Python process over a database), so it brings its own endpoint: one private loopback
server per store, started on the first gated merge, over the same store object, with a
random bearer token. Every ref, commit and preview is a catalog there (its URL prefix).
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from spark_lakeversion.versioning.interface import VersionStore


@dataclass(frozen=True)
class Endpoint:
    uri: str  # the Iceberg REST base, ".../iceberg"
    token: str

    def catalog(self, ref: str) -> Any:
        """A pyiceberg catalog reading `ref` (a branch, tag, commit or preview id)."""
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(f"lv-{ref[:12]}", uri=self.uri, token=self.token, warehouse=ref)


_lock = threading.Lock()
_servers: weakref.WeakKeyDictionary[VersionStore, Any] = weakref.WeakKeyDictionary()


def endpoint_for(store: VersionStore) -> Endpoint:
    from spark_lakeversion.server.embedded import start_embedded_server

    with _lock:
        server = _servers.get(store)
        if server is None or not server.running:
            # reads only: the warehouse is an empty scratch directory nothing is written to
            scratch = tempfile.mkdtemp(prefix="lakeversion-checks-")
            # the store's own FileIO properties (its server's): tables may live on S3
            server = start_embedded_server(store, warehouse=scratch,
                                           token=secrets.token_urlsafe(24),
                                           io=store.io_properties)
            _servers[store] = server
        return Endpoint(server.iceberg_uri, str(server.token))
