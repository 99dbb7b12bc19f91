"""Commits: immutable, content-addressed points of history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Commit:
    """An immutable commit; its id is the hash of everything below."""

    id: str
    parents: tuple[str, ...]
    author: str
    message: str
    timestamp: datetime
    properties: dict[str, str] = field(default_factory=dict, hash=False)
    root: str | None = None  # content tree root; internal, but handy for diagnostics

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parents": list(self.parents),
            "author": self.author,
            "message": self.message,
            "timestamp": self.timestamp.isoformat(),
            "properties": dict(self.properties),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Commit:
        return cls(data["id"], tuple(data["parents"]), data["author"], data["message"],
                   datetime.fromisoformat(data["timestamp"]), dict(data["properties"]))
