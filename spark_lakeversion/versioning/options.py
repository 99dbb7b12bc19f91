"""`MergeOptions`: everything a merge takes besides its source and target, as one value.

Parsed once, whatever the surface: Python keywords (`MergeOptions(...)` normalises them),
JSON bodies of `/api/v1/merge` (`from_dict`, and `to_dict` for the REST client), the CLI
and Spark SQL (which go through those two). The strategy vocabulary is `MergeBehavior`,
spelled on the wire as `model.merges.STRATEGY_NAMES` (the one list).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import Key, KeyLike, MergeBehavior
from spark_lakeversion.rows.merge3 import parse_resolution
from spark_lakeversion.rows.merge_plan import EngineRows, parse_row_results


def _text(value: object, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string")
    return value


@dataclass(frozen=True)
class MergeOptions:
    """How to merge. `isolation_level` is carried opaquely to the content mergers, which
    check it (Iceberg: serializable or snapshot); `expected_head` is the target's.
    `row_conflicts` (``source-wins`` / ``target-wins``; None: report them) settles the
    ROW_CONFLICTs of row-level merges (`rows.merge3`). `plan_only` (with `dry_run` only)
    is a read-only preview: the merge is planned, no check runs and nothing is written or
    audited (what the web UI shows on a page view). `plan_rows` (with `plan_only`) plans
    each row-level merge for Spark instead of running it (`rows.merge_plan`: the plans are
    in the result's per-table statistics); `row_results` hands back what Spark computed,
    per table (`EngineRows`), for the merge to check and commit."""

    strategy: MergeBehavior = MergeBehavior.NORMAL
    behaviors: Mapping[Key, MergeBehavior] = field(default_factory=dict)
    isolation_level: str | None = None
    fast_forward: bool = True
    dry_run: bool = False
    message: str | None = None
    author: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    expected_head: str | None = None
    row_conflicts: str | None = None
    plan_only: bool = False
    plan_rows: bool = False
    row_results: Mapping[Key, EngineRows] = field(default_factory=dict)

    def __post_init__(self) -> None:
        behaviors: Mapping[KeyLike, MergeBehavior | str] = self.behaviors  # type: ignore[assignment]
        if not isinstance(behaviors, Mapping):
            raise InvalidInput("behaviors must map table keys to strategies")
        set_ = object.__setattr__
        set_(self, "strategy", MergeBehavior.parse(self.strategy))
        set_(self, "behaviors", {Key.of(k): MergeBehavior.parse(v)
                                 for k, v in behaviors.items()})
        set_(self, "properties", dict(self.properties or {}))
        set_(self, "row_conflicts", parse_resolution(self.row_conflicts))
        for name in ("isolation_level", "message", "author", "expected_head"):
            _text(getattr(self, name), name)
        if self.plan_only and not self.dry_run:  # else a merge that skips its checks
            raise InvalidInput("plan_only is a dry run's option: set dry_run too")
        if self.plan_rows and not self.plan_only:
            raise InvalidInput("plan_rows plans without merging: set dry_run and plan_only")
        set_(self, "row_results", parse_row_results(self.row_results))
        if self.row_results and self.dry_run:
            raise InvalidInput("row_results are committed by a merge, not a dry run")

    @classmethod
    def of(cls, *, default_behavior: MergeBehavior | str | None = None,
           expected_target_head: str | None = None, options: Mapping[str, Any] | None = None,
           **settings: Any) -> MergeOptions:
        """From `VersionStore.merge` keywords: the field names, plus the older spellings
        `default_behavior`, `expected_target_head` and `options={"isolation_level": ...}`."""
        unknown = set(settings) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown merge option(s): {', '.join(sorted(unknown))}")
        if default_behavior is not None:
            settings["strategy"] = default_behavior
        if expected_target_head is not None:
            settings["expected_head"] = expected_target_head
        if options and options.get("isolation_level") is not None:
            settings["isolation_level"] = options["isolation_level"]
        return cls(**{k: v for k, v in settings.items() if v is not None})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MergeOptions:
        """From an `/api/v1/merge` body (the REST shape: `strategy` and `behaviors`
        {"db.t": "source-wins"} spelled as strategy names, any case, `FORCE`-style
        behaviour names accepted too; `expected_target_head`, `options`, `row_conflicts`)."""
        behaviors = data.get("behaviors") or {}
        if not isinstance(behaviors, Mapping) or any(not k for k in behaviors):
            raise InvalidInput("behaviors must map non-empty table keys such as db.orders "
                               "to strategies")
        options = data.get("options") or {}
        if not isinstance(options, Mapping):
            raise InvalidInput("options must be an object")
        return cls(strategy=data.get("strategy") or MergeBehavior.NORMAL,
                   behaviors=behaviors, isolation_level=options.get("isolation_level"),
                   fast_forward=bool(data.get("fast_forward", True)),
                   dry_run=bool(data.get("dry_run", False)), message=data.get("message"),
                   author=data.get("author"), properties=data.get("properties") or {},
                   expected_head=data.get("expected_target_head"),
                   row_conflicts=data.get("row_conflicts"),
                   plan_only=bool(data.get("plan_only", False)),
                   plan_rows=bool(data.get("plan_rows", False)),
                   row_results=parse_row_results(data.get("row_results")))

    def to_dict(self) -> dict[str, Any]:
        """The `/api/v1/merge` body fields (without source and target)."""
        body: dict[str, Any] = {
            "dry_run": self.dry_run, "fast_forward": self.fast_forward,
            "strategy": self.strategy.strategy_name,
            "behaviors": {str(k): v.strategy_name for k, v in self.behaviors.items()},
            "message": self.message, "author": self.author,
            "properties": dict(self.properties),
            "options": {"isolation_level": self.isolation_level}
            if self.isolation_level is not None else {}}
        if self.expected_head:
            body["expected_target_head"] = self.expected_head
        if self.row_conflicts:
            body["row_conflicts"] = self.row_conflicts
        if self.plan_only:
            body["plan_only"] = True
        if self.plan_rows:
            body["plan_rows"] = True
        if self.row_results:
            body["row_results"] = {str(k): v.to_dict() for k, v in self.row_results.items()}
        return body

    def merger_options(self) -> dict[str, Any]:
        """What content mergers receive (`MergeContext.options`)."""
        options: dict[str, Any] = {}
        if self.isolation_level is not None:
            options["isolation_level"] = self.isolation_level
        if self.row_conflicts is not None:
            options["row_conflicts"] = self.row_conflicts
        return options
