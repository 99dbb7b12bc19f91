"""The settings and records of merge gates, kept by the store beside the versioned data
(not in it): which branches are protected, which checks guard a branch, and every check
run (tables ``lv_protected_branches``, ``lv_checks``, ``lv_check_runs``).

They are settings, not history: protecting a branch or adding a check is not a commit, and
time travel does not bring back an old set of checks. The SQL is in
`spark_lakeversion.store.sql.gates`; the rules that use them in
`spark_lakeversion.versioning.protection` and `spark_lakeversion.versioning.gates`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class CheckKind(str, enum.Enum):
    SQL = "sql"
    PYTHON = "python"
    WEBHOOK = "webhook"
    NOTIFY = "notify"  # a webhook told after a merge or commit lands: never blocks; recorded


class CheckStatus(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # scoped to tables the merge does not change
    ERROR = "error"  # the check could not run (bad SQL, import error, timeout): counts as failed


@dataclass(frozen=True)
class CheckSpec:
    """One check guarding merges into `branch`. `spec`: the SQL, `module:function` /
    entry-point name, or webhook URL. `tables`: the dotted table names it reads (empty:
    every merge runs it)."""

    branch: str
    name: str
    kind: CheckKind
    spec: str
    tables: tuple[str, ...] = ()
    timeout_s: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        return {"branch": self.branch, "name": self.name, "kind": self.kind.value,
                "spec": self.spec, "tables": list(self.tables), "timeout_s": self.timeout_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckSpec:
        return cls(data["branch"], data["name"], CheckKind(data["kind"]), data["spec"],
                   tuple(data.get("tables") or ()), float(data.get("timeout_s", 60.0)))


@dataclass(frozen=True)
class CheckReport:
    """What one check said about one preview."""

    name: str
    status: CheckStatus
    violations: int | None = None
    samples: tuple[dict[str, Any], ...] = ()
    duration_ms: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (CheckStatus.PASSED, CheckStatus.SKIPPED)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "violations": self.violations,
                "samples": list(self.samples), "duration_ms": self.duration_ms,
                "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckReport:
        return cls(data["name"], CheckStatus(data["status"]), data.get("violations"),
                   tuple(data.get("samples") or ()), int(data.get("duration_ms") or 0),
                   data.get("message") or "")


@dataclass(frozen=True)
class CheckRun:
    """The record of one check in one merge attempt (`attempt` groups a gate's runs)."""

    attempt: str
    branch: str
    source: str
    preview: str
    report: CheckReport
    timestamp: datetime
    kind: str = "check"  # "check", or "notify" for a post-merge webhook
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "branch": self.branch, "source": self.source,
                "preview": self.preview, "kind": self.kind,
                "timestamp": self.timestamp.isoformat(), **self.report.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckRun:
        return cls(data["attempt"], data["branch"], data["source"], data["preview"],
                   CheckReport.from_dict(data), datetime.fromisoformat(data["timestamp"]),
                   data.get("kind", "check"))
