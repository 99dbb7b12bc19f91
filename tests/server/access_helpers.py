"""A server with principals for the access-control tests: its auth config, tokens and the
log lines it wrote (grepped for tokens at the end)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_lakeversion.auth import load_auth_config, new_token, token_sha256
from spark_lakeversion.server.embedded import EmbeddedServer

#: principal -> its grants (TOML inline tables)
GRANTS = {
    "admin": '[{ refs = "*", allow = ["admin"] }]',
    "etl": '[{ refs = "etl-*", allow = ["read", "write", "create", "delete"] },'
           ' { refs = "main", allow = ["read", "merge"] },'
           ' { refs = "rel-*", allow = ["read", "create", "delete"] }]',
    "analyst": '[{ refs = "*", allow = ["read"] },'
               ' { refs = "user/ann/*", allow = ["read", "write", "create", "delete"] }]',
    "nobody": "[]",
}


def write_auth_config(path: Path, grants: dict[str, str] | None = None) -> dict[str, str]:
    """Write the config (principal -> grants, default `GRANTS`); return principal -> its
    (fresh) token."""
    grants = GRANTS if grants is None else grants
    tokens = {name: new_token() for name in grants}
    path.write_text("".join(
        f'[[principal]]\nname = "{name}"\ntoken_sha256 = "{token_sha256(tokens[name])}"\n'
        f"grants = {allowed}\n\n" for name, allowed in grants.items()))
    load_auth_config(path)  # the file is valid
    return tokens


class Captured(logging.Handler):
    """Every log record of the process, formatted with its arguments and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class AuthedServer:
    server: EmbeddedServer
    tokens: dict[str, str]
    log: Captured
    config: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def refs(self) -> list[tuple[str, str, str]]:
        """Every ref as the store itself has it: what a refused request must not change."""
        return [(r.name, r.type.value, r.head) for r in self.server.store.list_refs()]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}
