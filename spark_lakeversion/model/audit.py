"""The audit trail's value: who did what to which ref, when, and how it ended.

Recorded by `spark_lakeversion.versioning.access` for every mutation (and every refusal) a
principal asks for, kept by the store (table ``lv_audit``, `spark_lakeversion.store.sql.audit`),
read with `lakeversion audit` and `GET /api/v1/audit`. It never holds a token.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Outcome(str, enum.Enum):
    DONE = "done"
    DENIED = "denied"  # a grant was missing: nothing was written
    FAILED = "failed"  # allowed, but refused by the store (conflict, bad input...)


@dataclass(frozen=True)
class AuditRecord:
    timestamp: datetime
    principal: str
    operation: str
    ref: str | None
    outcome: Outcome
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp.isoformat(), "principal": self.principal,
                "operation": self.operation, "ref": self.ref, "outcome": self.outcome.value,
                "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditRecord:
        return cls(datetime.fromisoformat(data["timestamp"]), str(data["principal"]),
                   str(data["operation"]), data.get("ref"), Outcome(data["outcome"]),
                   str(data.get("detail") or ""))


#: audit records per answer at most
MAX_AUDIT_RECORDS = 10_000
