"""Merges: strategies, conflicts and what a merge, cherry-pick or revert did per key."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model.codes import Code
from spark_lakeversion.model.keys import Key


class MergeBehavior(str, enum.Enum):
    """How a merge treats one table; on the wire each has a strategy name (`STRATEGY_NAMES`)."""

    NORMAL = "NORMAL"  # three-way; both sides changed -> content merge or conflict
    FORCE = "FORCE"  # source wins
    DROP = "DROP"  # target wins (source change dropped)

    @property
    def strategy_name(self) -> str:
        """The documented spelling: ``normal``, ``source-wins``, ``target-wins``."""
        return STRATEGY_NAMES[self]

    @classmethod
    def parse(cls, value: str | MergeBehavior) -> MergeBehavior:
        """A strategy name (``source-wins``; SQL's ``source_wins``) or a behaviour's own
        name (``FORCE``), in any case: every surface accepts both spellings."""
        if isinstance(value, MergeBehavior):
            return value
        if not isinstance(value, str):
            raise InvalidInput(f"a merge strategy must be a string, not {value!r}")
        normalized = value.strip().lower().replace("_", "-")
        for behavior, name in STRATEGY_NAMES.items():
            if normalized in (name, behavior.value.lower()):
                return behavior
        raise InvalidInput(f"unknown merge strategy {value!r}: use "
                           f"{', '.join(STRATEGY_NAMES.values())}")


#: THE list of merge strategies and how they are spelled in JSON, the CLI, Python and SQL
#: (SQL writes ``_`` for ``-``: ``USING STRATEGY source_wins``); the Java shim's copy in
#: `BranchSql.java` is held to it by `tests/spark/test_parser.py`
STRATEGY_NAMES: dict[MergeBehavior, str] = {
    MergeBehavior.NORMAL: "normal", MergeBehavior.FORCE: "source-wins",
    MergeBehavior.DROP: "target-wins"}


class ConflictType(Code):
    """Why a merge cannot combine a key: an open registry of codes (`model.codes`). The
    model registers the key-level conflicts every merge can meet; content-aware mergers
    register their own (Iceberg: `formats/iceberg/codes.py`; Delta, named after Delta's own
    exceptions: `formats/delta/codes.py`)."""

    KEY_EXISTS: ClassVar[ConflictType]  # both sides added the key, with different tables
    KEY_DOES_NOT_EXIST: ClassVar[ConflictType]  # one side changed what the other removed
    VALUE_DIFFERS: ClassVar[ConflictType]  # both sides changed the same table differently
    CONTENT_ID_DIFFERS: ClassVar[ConflictType]  # a side dropped and re-created the table
    UNSUPPORTED: ClassVar[ConflictType]  # no merger can combine the two changes
    #: rows both sides changed differently, found by a format's row-level merge; its
    #: details list the keys (`ROW_CONFLICT_KEYS_LISTED` at most) with their base, source and
    #: target values, and their count. The per-merge option ``row_conflicts`` settles them
    ROW_CONFLICT: ClassVar[ConflictType]


ConflictType.KEY_EXISTS = ConflictType.register("KEY_EXISTS")
ConflictType.KEY_DOES_NOT_EXIST = ConflictType.register("KEY_DOES_NOT_EXIST")
ConflictType.VALUE_DIFFERS = ConflictType.register("VALUE_DIFFERS")
ConflictType.CONTENT_ID_DIFFERS = ConflictType.register("CONTENT_ID_DIFFERS")
ConflictType.UNSUPPORTED = ConflictType.register("UNSUPPORTED")
ConflictType.ROW_CONFLICT = ConflictType.register("ROW_CONFLICT")

#: a ROW_CONFLICT lists at most this many keys (and counts them all)
ROW_CONFLICT_KEYS_LISTED = 100


@dataclass(frozen=True)
class Conflict:
    type: ConflictType
    key: Key
    message: str
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": str(self.key), "type": self.type.value,
                                "message": self.message}
        if self.details:
            data["details"] = self.details
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conflict:
        return cls(ConflictType(data["type"]), Key.of(data["key"]), data["message"],
                   dict(data.get("details") or {}))


class MergeAction(str, enum.Enum):
    """What a merge did (or would do) with one key."""

    FAST_FORWARDED = "FAST_FORWARDED"  # the whole ref moved; key came along
    APPLIED = "APPLIED"  # source's value taken (only the source changed it, or FORCE)
    KEPT = "KEPT"  # target's value kept (DROP, or both sides made the same change)
    REPLAYED = "REPLAYED"  # both sides changed it; a content merger combined them
    CONFLICT = "CONFLICT"


@dataclass(frozen=True)
class KeyMergeDetail:
    key: Key
    action: MergeAction
    behavior: MergeBehavior
    conflict: Conflict | None = None
    statistics: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key": str(self.key),
            "action": self.action.value,
            "behavior": self.behavior.value,
            "conflict": self.conflict.to_dict() if self.conflict else None,
        }
        if self.statistics:
            data["statistics"] = self.statistics
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyMergeDetail:
        conflict = data.get("conflict")
        return cls(Key.of(data["key"]), MergeAction(data["action"]),
                   MergeBehavior(data["behavior"]),
                   Conflict.from_dict(conflict) if conflict else None,
                   dict(data.get("statistics") or {}))


#: where a key's statistics hold what its row-level merge did (`ROW_MERGE_STATS` counts)
ROW_MERGE = "row_merge"
#: what a merge rewrote below the file level, summed over its tables (`MergeResult.stats`):
#: data files of the target replaced, rows written into new files, and their bytes (a dry
#: run writes nothing: its bytes are 0, its files and rows what the merge would rewrite)
ROW_MERGE_STATS = ("files_rewritten", "rows_rewritten", "bytes_written")


@dataclass(frozen=True)
class MergeResult:
    """Outcome of a merge, cherry-pick or revert; also what a dry run reports."""

    source: str
    target: str
    common_ancestor: str | None
    target_head_before: str
    new_head: str | None  # None for a dry run or a refused merge
    fast_forward: bool
    dry_run: bool
    details: tuple[KeyMergeDetail, ...]
    #: a gated merge's check reports (`model.gates.CheckReport.to_dict()`) and its preview
    checks: tuple[dict[str, Any], ...] = ()
    preview: str | None = None
    #: why no fast-forward happened although one was asked for: the target is protected
    #: (a merge into a protected branch always makes a merge commit), or a table's own
    #: storage the target owns takes the change (a Delta table's root log on main)
    no_ff_reason: str | None = None

    @property
    def conflicts(self) -> list[Conflict]:
        return [d.conflict for d in self.details if d.conflict is not None]

    @property
    def successful(self) -> bool:
        return not self.conflicts

    @property
    def stats(self) -> dict[str, int]:
        """Files and rows rewritten and bytes written by row-level merges, all tables."""
        totals = dict.fromkeys(ROW_MERGE_STATS, 0)
        for detail in self.details:
            rows = detail.statistics.get(ROW_MERGE)
            if isinstance(rows, dict):
                for name in ROW_MERGE_STATS:
                    totals[name] += int(rows.get(name) or 0)
        return totals

    def to_dict(self) -> dict[str, Any]:
        data = {
            "source": self.source,
            "target": self.target,
            "common_ancestor": self.common_ancestor,
            "target_head_before": self.target_head_before,
            "new_head": self.new_head,
            "fast_forward": self.fast_forward,
            "dry_run": self.dry_run,
            "successful": self.successful,
            "details": [d.to_dict() for d in self.details],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "stats": self.stats,
        }
        if self.preview is not None:  # a gated merge: its checks' reports and preview
            data["checks"] = list(self.checks)
            data["preview"] = self.preview
        if self.no_ff_reason is not None:
            data["no_ff_reason"] = self.no_ff_reason
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MergeResult:
        return cls(data["source"], data["target"], data.get("common_ancestor"),
                   data["target_head_before"], data.get("new_head"),
                   bool(data["fast_forward"]), bool(data["dry_run"]),
                   tuple(KeyMergeDetail.from_dict(d) for d in data["details"]),
                   tuple(c for c in data.get("checks") or () if isinstance(c, dict)),
                   data.get("preview"), data.get("no_ff_reason"))
