"""Diffs: how one key differs between two commits."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from spark_lakeversion.model.contents import Content
from spark_lakeversion.model.keys import Key


class DiffKind(str, enum.Enum):
    ADDED = "ADDED"
    REMOVED = "REMOVED"
    CHANGED = "CHANGED"


@dataclass(frozen=True)
class DiffEntry:
    key: Key
    kind: DiffKind
    from_content: Content | None
    to_content: Content | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": str(self.key),
            "elements": list(self.key.elements),
            "kind": self.kind.value,
            "from": self.from_content.to_dict() if self.from_content else None,
            "to": self.to_content.to_dict() if self.to_content else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffEntry:
        return cls(Key(tuple(data["elements"])), DiffKind(data["kind"]),
                   Content.from_dict(data["from"]) if data.get("from") else None,
                   Content.from_dict(data["to"]) if data.get("to") else None)
