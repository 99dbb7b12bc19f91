"""Shared pieces of the merge-gate tests: a lake over a real server, a real webhook
receiver on loopback, and Python checks importable by dotted path."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from spark_lakeversion.checks.python import CheckContext, CheckResult
from spark_lakeversion.server.embedded import EmbeddedServer

#: the module the test servers allow Python checks from (`--check-module`)
CHECK_MODULE = "tests.gates.helpers"


#: principals of `TeamLake`: the operator, an admin of team-* only, a reader of team-*
TEAM_GRANTS = {
    "root": '[{ refs = "*", allow = ["admin"] }]',
    "team": '[{ refs = "team-*", allow = ["admin"] }]',
    "viewer": '[{ refs = "team-*", allow = ["read"] }]',
}


@dataclass
class TeamLake:
    """A server with principals (`TEAM_GRANTS`): `db.t` on main, `team-1` and `team-1-dev`
    from it (the latter with one more row), and `secret`, holding `db.secret_t` only;
    `http` records any request that reaches it."""

    server: EmbeddedServer
    root: Path
    tokens: dict[str, str]
    http: Receiver

    @property
    def warehouse(self) -> Path:
        return self.root / "wh"

    @property
    def store_file(self) -> Path:
        return self.root / "store.db"

    def catalog(self, ref: str) -> Any:
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(f"root-{ref}", uri=self.server.iceberg_uri, warehouse=ref,
                           token=self.tokens["root"])

    def api(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.api_url,
                            headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def secret_metadata(self) -> str:
        [(_, content)] = [(k, c) for k, c in self.server.store.list_keys("secret")
                          if str(k) == "db.secret_t"]
        return str(content.fields["metadata_location"]).removeprefix("file://")

    def refs(self) -> list[tuple[str, str]]:
        return [(r.name, r.head) for r in self.server.store.list_refs()]

    def listing(self) -> dict[str, str]:
        """Every file of the warehouse and the test's directory (the store aside)."""
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.root.rglob("*"))
                if p.is_file() and not p.name.startswith("store.db")}


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


def exits(ctx: CheckContext) -> bool:
    raise SystemExit(3)


def interrupts(ctx: CheckContext) -> bool:
    raise KeyboardInterrupt


def raises_base(ctx: CheckContext) -> bool:
    raise BaseException("a check raising BaseException")


def changed_tables_named(ctx: CheckContext) -> tuple[bool, str]:
    return (ctx.changed_tables == ["db.t"] and ctx.target == "main",
            f"changed {ctx.changed_tables} into {ctx.target}")


# ---- a real webhook receiver on loopback ----------------------------------------------------
@dataclass
class Receiver:
    """Answers `status` after `delay` seconds (with a `Location` header when `location`
    is set); keeps every JSON body it received, and every request (`hits`: method and
    path, GET and HEAD too)."""

    status: int = 200
    delay: float = 0.0
    answer: dict[str, Any] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    location: str | None = None
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                receiver.hits.append(f"GET {self.path}")
                self.send_response(200)
                self.send_header("content-length", "6")
                self.end_headers()
                self.wfile.write(b"LEAKED")

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
                receiver.hits.append(f"HEAD {self.path}")
                self.send_response(200)
                self.send_header("content-length", "6")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                receiver.hits.append(f"POST {self.path}")
                length = int(self.headers.get("content-length") or 0)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                time.sleep(receiver.delay)
                data = json.dumps(receiver.answer).encode()
                try:
                    self.send_response(receiver.status)
                    self.send_header("content-type", "application/json")
                    if receiver.location is not None:
                        self.send_header("location", receiver.location)
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
