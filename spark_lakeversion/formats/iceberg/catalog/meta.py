"""Commit metadata a client hands the catalog (and `/api/v1`): who commits and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CommitMeta:
    """Who commits and why, as a client said it (the server reads it from request headers:
    `server.headers.commit_meta`); the catalog's defaults fill in the rest."""

    author: str | None
    message: str | None
    properties: dict[str, str] = field(default_factory=dict)

    def message_or(self, default: str) -> str:
        return self.message or default

    def properties_with(self, defaults: Mapping[str, object]) -> dict[str, str]:
        """Defaults (operation, table...) overridden by what the client sent."""
        merged = {k: str(v) for k, v in defaults.items() if v is not None}
        merged.update(self.properties)
        return merged
