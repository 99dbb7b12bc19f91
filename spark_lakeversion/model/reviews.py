"""Merge requests: a proposal to merge a source branch into a target, reviewed before it
lands (tables ``lv_merge_requests``, ``lv_mr_approvals``, ``lv_branch_approvals``).

Like the gates' settings they are records beside the versioned data, not in it. An
approval names the source head it approved: when the source moves, the approval no
longer counts (`MergeRequest.valid_approvals`). The SQL is in
`spark_lakeversion.store.sql.reviews`; the rules in `spark_lakeversion.versioning.reviews`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any


class MrStatus(str, enum.Enum):
    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"


@dataclass(frozen=True)
class Approval:
    """`principal` approved the request when its source was at `source_head`."""

    principal: str
    source_head: str
    timestamp: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "source_head": self.source_head,
                "timestamp": self.timestamp.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Approval:
        return cls(data["principal"], data["source_head"],
                   datetime.fromisoformat(data["timestamp"]))


@dataclass(frozen=True)
class MergeRequest:
    """One merge request. `source_head`: the source's head when read (the merged head
    once merged); `required_approvals`: what a merge into the target needs now."""

    number: int
    source: str
    target: str
    title: str
    description: str
    author: str
    status: MrStatus
    created: datetime
    updated: datetime
    merged_commit: str | None = None
    approvals: tuple[Approval, ...] = field(default=())
    source_head: str | None = None
    required_approvals: int = 0

    @property
    def valid_approvals(self) -> list[Approval]:
        """Approvals of the current source head, by principals other than the author."""
        return [a for a in self.approvals
                if a.source_head == self.source_head and a.principal != self.author]

    @property
    def approved(self) -> bool:
        return len(self.valid_approvals) >= self.required_approvals

    def with_state(self, source_head: str | None, required: int) -> MergeRequest:
        return replace(self, source_head=source_head, required_approvals=required)

    def to_dict(self) -> dict[str, Any]:
        valid = {a.principal for a in self.valid_approvals}
        return {"number": self.number, "source": self.source, "target": self.target,
                "title": self.title, "description": self.description,
                "author": self.author, "status": self.status.value,
                "created": self.created.isoformat(), "updated": self.updated.isoformat(),
                "merged_commit": self.merged_commit, "source_head": self.source_head,
                "required_approvals": self.required_approvals, "approved": self.approved,
                "approvals": [{**a.to_dict(), "valid": a.principal in valid}
                              for a in self.approvals]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MergeRequest:
        return cls(int(data["number"]), data["source"], data["target"], data["title"],
                   data.get("description") or "", data["author"], MrStatus(data["status"]),
                   datetime.fromisoformat(data["created"]),
                   datetime.fromisoformat(data["updated"]), data.get("merged_commit"),
                   tuple(Approval.from_dict(a) for a in data.get("approvals") or ()),
                   data.get("source_head"), int(data.get("required_approvals") or 0))
