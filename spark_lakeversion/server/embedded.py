"""The server in a background thread on a free loopback port, for Spark helpers and tests.

`start_embedded_server()` returns once the server accepts connections; `.stop()` (or
leaving the `with` block) shuts it down and joins the thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

import uvicorn

from spark_lakeversion.auth.config import AuthConfig
from spark_lakeversion.errors import ServerError
from spark_lakeversion.limits import Limits
from spark_lakeversion.server.app import create_app, uvicorn_limits
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.versioning import VersionStore


class EmbeddedServer:
    """A running server: `.url` (base), `.iceberg_uri` (for Iceberg clients' `uri`)."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket,
                 store: VersionStore, token: str | None, warehouse: str) -> None:
        self._server = server
        self.warehouse = warehouse  # URI under which new tables are created
        self._thread = thread
        self._sock = sock
        self.store = store
        self.token = token
        host, port = sock.getsockname()[:2]
        self.host: str = host
        self.port: int = port
        self.url = f"http://{host}:{port}"
        self.iceberg_uri = f"{self.url}/iceberg"
        self.api_url = f"{self.url}/api/v1"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests, join the thread."""
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedServer({self.url}, running={self.running})"


def start_embedded_server(store_url: str | VersionStore | None = None,
                          warehouse: str | None = None, token: str | None = None,
                          *, limits: Limits | None = None,
                          timeout: float = 30.0,
                          allowed_locations: Sequence[str] | None = None,
                          auth: AuthConfig | None = None,
                          io: Mapping[str, str] | None = None,
                          check_modules: Sequence[str] | None = None,
                          webhook_allow: Sequence[str] | None = None) -> EmbeddedServer:
    """Start the server on 127.0.0.1 and an OS-chosen free port; wait until it serves.
    Table files go only under the warehouse and `allowed_locations`, opened with the FileIO
    properties `io` (default: the standard environment; `spark_lakeversion.fileio`);
    `auth` or `token`, `check_modules` and `webhook_allow` as for `create_app`.
    `EmbeddedServer.store` is the store itself, unchecked."""
    app = create_app(store_url, warehouse, token, limits, allowed_locations, auth, io,
                     check_modules, webhook_allow)
    ctx: ServerContext = app.state.ctx
    store = ctx.backing or ctx.store
    # proto must say TCP: asyncio only turns Nagle off (TCP_NODELAY) on sockets whose proto
    # is IPPROTO_TCP, and with Nagle on every reused keep-alive connection stalls ~40 ms
    # per response on the client's delayed ACK (measured: 42 ms vs 2 ms per table load)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before the thread starts: the port is ours, no race
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5, **uvicorn_limits(ctx.limits))
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="lakeversion-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if failure or not thread.is_alive():
            sock.close()
            raise ServerError(f"embedded server failed to start: {failure[0] if failure else '?'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise ServerError(f"embedded server did not start within {timeout}s")
        time.sleep(0.01)
    return EmbeddedServer(server, thread, sock, store, token, ctx.catalog.warehouse)
