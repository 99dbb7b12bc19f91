"""Refs: branches and tags, their movements (reflog) and what an expression resolves to."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class RefType(str, enum.Enum):
    BRANCH = "BRANCH"
    TAG = "TAG"


@dataclass(frozen=True)
class Ref:
    name: str
    type: RefType
    head: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type.value, "head": self.head}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ref:
        return cls(data["name"], RefType(data["type"]), data["head"])


@dataclass(frozen=True)
class ReflogEntry:
    """One movement of a ref: its new head (None: the ref was deleted) and when."""

    name: str
    head: str | None
    timestamp: datetime
    operation: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "head": self.head, "timestamp": self.timestamp.isoformat(),
                "operation": self.operation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReflogEntry:
        return cls(data["name"], data["head"], datetime.fromisoformat(data["timestamp"]),
                   data["operation"])


@dataclass(frozen=True)
class ResolvedRef:
    """What a ref expression points at right now, and whether writes may go there."""

    expression: str
    commit_id: str
    branch: str | None  # set only when the expression is a plain branch name (writable)
    ref: Ref | None = None

    @property
    def writable(self) -> bool:
        return self.branch is not None
