"""The one way a server starts, for every caller (`lakeversion serve`, Spark helpers,
`lakeversion run`/`spark-submit`, tests and benchmarks); all three ways share one uvicorn
configuration (`uvicorn_options`):

- `serve_forever(app, host, port)`: in the foreground until interrupted (`lakeversion serve`);
- `start_embedded_server()`: in a background thread on a free loopback port; it returns once
  the server accepts connections; `.stop()` (or leaving the `with` block, or interpreter exit
  with `stop_at_exit=True`) shuts it down and joins the thread;
- `serve_in_subprocess()`: `lakeversion serve` as a child process (tests that kill a server,
  benchmarks that keep the client's interpreter apart).
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import uvicorn
from fastapi import FastAPI

from spark_lakeversion.auth.config import AuthConfig
from spark_lakeversion.errors import ServerError
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.iceberg.catalog.settings import AppendSettings
from spark_lakeversion.limits import Limits
from spark_lakeversion.server.app import create_app, uvicorn_limits
from spark_lakeversion.server.context import ServerContext
from spark_lakeversion.versioning import VersionStore


def uvicorn_options(app: FastAPI, log_level: str = "warning") -> dict[str, Any]:
    """How every server runs: no access log, no lifespan, and the header limit of the app's
    `Limits` (`uvicorn_limits`)."""
    ctx: ServerContext = app.state.ctx
    return {"log_level": log_level, "access_log": False, "lifespan": "off",
            **uvicorn_limits(ctx.limits)}


def serve_forever(app: FastAPI, host: str, port: int, *, log_level: str = "warning") -> None:
    """Serve `app` on `host:port` in the foreground until interrupted."""
    uvicorn.run(app, host=host, port=port, **uvicorn_options(app, log_level))


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
                          webhook_allow: Sequence[str] | None = None,
                          stop_at_exit: bool = False,
                          appends: AppendSettings | None = None) -> EmbeddedServer:
    """Start the server on 127.0.0.1 and an OS-chosen free port; wait until it serves.
    Table files go only under the warehouse and `allowed_locations`, opened with the FileIO
    properties `io` (default: the standard environment; `spark_lakeversion.fileio`);
    `auth` or `token`, `check_modules`, `webhook_allow` and `appends` as for `create_app`.
    `EmbeddedServer.store` is the store itself, unchecked. With `stop_at_exit` the server
    is also stopped at interpreter exit (Spark helpers, `lakeversion run`)."""
    app = create_app(store_url, warehouse, token, limits, allowed_locations, auth, io,
                     check_modules, webhook_allow, appends)
    ctx: ServerContext = app.state.ctx
    store = ctx.backing or ctx.store
    # proto must say TCP: asyncio only turns Nagle off (TCP_NODELAY) on sockets whose proto
    # is IPPROTO_TCP, and with Nagle on every reused keep-alive connection stalls ~40 ms
    # per response on the client's delayed ACK (measured: 42 ms vs 2 ms per table load)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before the thread starts: the port is ours, no race
    server = uvicorn.Server(uvicorn.Config(app, timeout_graceful_shutdown=5,
                                           **uvicorn_options(app)))
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
    embedded = EmbeddedServer(server, thread, sock, store, token, ctx.catalog.warehouse)
    if stop_at_exit:
        with _at_exit_lock:
            _at_exit.append(embedded)
    return embedded


_at_exit: list[EmbeddedServer] = []
_at_exit_lock = threading.Lock()


@atexit.register
def _stop_at_exit() -> None:
    with _at_exit_lock:
        while _at_exit:
            try:
                _at_exit.pop().stop()
            except Exception:  # noqa: BLE001 - the interpreter is exiting
                pass


def serve_in_subprocess(store: str, warehouse: str | Path, *,
                        output: int | IO[bytes] = subprocess.DEVNULL,
                        timeout: float = 60.0, allowed_locations: tuple[str, ...] = (),
                        io: Mapping[str, str] | None = None, extra_args: Sequence[str] = ()
                        ) -> tuple[subprocess.Popen[bytes], str]:
    """`lakeversion serve` as a child process on a free loopback port (`extra_args`: more
    `serve` options): returns (process, base URL) once `/api/v1/refs` answers. Its stdout
    and stderr go to `output`. RuntimeError if it exits first or does not answer within
    `timeout` seconds (it is killed then); stopping it is the caller's job."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    exe = Path(sys.executable).with_name("lakeversion")
    cmd = [str(exe), "serve"] if exe.exists() else [sys.executable, "-m",
                                                     "spark_lakeversion.cli.serve"]
    cmd += ["--store", store, "--warehouse", str(warehouse), "--port", str(port)]
    for root in allowed_locations:
        cmd += ["--allowed-location", root]
    cmd += list(extra_args)
    env = dict(os.environ)
    if io:  # through the environment, so no secret shows in the process list
        env.update(FileIOConfig.of(io).as_environment())
    proc = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # 401: it answers, and wants a token (`extra_args` gave it an auth config)
            if httpx.get(url + "/api/v1/refs", timeout=2).status_code in (200, 401):
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"lakeversion serve exited with code {proc.returncode}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"lakeversion serve did not answer within {timeout:g} s")
