"""Shared pieces of the merge-gate tests: a lake over a real server, a real webhook
receiver on loopback, and Python checks importable by dotted path."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa

from spark_lakeversion.checks.python import CheckContext, CheckResult
from spark_lakeversion.server.embedded import EmbeddedServer

#: the module the test servers allow Python checks from (`--check-module`)
CHECK_MODULE = "tests.gates.helpers"
SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])


@dataclass
class Lake:
    """A server, its warehouse, and pyiceberg catalogs per ref."""

    server: EmbeddedServer
    warehouse: Path

    @property
    def store(self) -> Any:
        return self.server.store

    def catalog(self, ref: str = "main") -> Any:
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(f"lv-{ref}", uri=self.server.iceberg_uri, warehouse=ref)

    def append(self, ref: str, table: str, ids: list[int]) -> None:
        self.catalog(ref).load_table(table).append(
            pa.table({"id": ids, "v": [f"v{i}" for i in ids]}, schema=SCHEMA))

    def ids(self, ref: str, table: str = "db.t") -> list[int]:
        return sorted(self.catalog(ref).load_table(table).scan().to_arrow()["id"].to_pylist())

    def create(self, table: str, ids: list[int]) -> None:
        catalog = self.catalog("main")
        namespace = table.split(".")[0]
        if (namespace,) not in catalog.list_namespaces():
            catalog.create_namespace(namespace)
        catalog.create_table(table, schema=SCHEMA)
        self.append("main", table, ids)

    def metadata_files(self) -> set[Path]:
        return set(self.warehouse.rglob("*.metadata.json"))

    def head(self, branch: str = "main") -> str:
        return str(self.store.get_ref(branch).head)


# ---- python checks (named by dotted path in the tests) ------------------------------------
CALLS: list[str] = []
HOOKS: dict[str, Callable[[CheckContext], None]] = {}


def at_most_five_rows(ctx: CheckContext) -> CheckResult:
    """Reads the preview through the catalog handle."""
    CALLS.append(ctx.preview)
    hook = HOOKS.pop("at_most_five_rows", None)
    if hook is not None:
        hook(ctx)
    rows = ctx.catalog().load_table("db.t").scan().to_arrow().num_rows
    if rows > 5:
        return CheckResult(False, f"{rows} rows on the preview", violations=rows - 5)
    return CheckResult(True, f"{rows} rows")


def changed_tables_named(ctx: CheckContext) -> tuple[bool, str]:
    return (ctx.changed_tables == ["db.t"] and ctx.target == "main",
            f"changed {ctx.changed_tables} into {ctx.target}")


# ---- a real webhook receiver on loopback ----------------------------------------------------
@dataclass
class Receiver:
    """Answers `status` after `delay` seconds; keeps every JSON body it received."""

    status: int = 200
    delay: float = 0.0
    answer: dict[str, Any] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                time.sleep(receiver.delay)
                data = json.dumps(receiver.answer).encode()
                try:
                    self.send_response(receiver.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
