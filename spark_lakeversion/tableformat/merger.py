"""The content-merger interface a table format implements (`TableFormat.merger()`): how a
table changed on *both* sides of a merge can still be merged.

A plan is computed without writing anything (dry runs stop there); `apply()` writes
whatever the format needs (new manifests, metadata file) and returns the new content.
The merge engine re-plans if the target moved between planning and its compare-and-swap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.model import Conflict, Content, ContentType, GcState, Key


@dataclass(frozen=True)
class MergeContext:
    """What a content merger may need to know about the merge it is part of."""

    source: str  # ref expression as given
    source_commit: str
    target: str  # target branch
    target_commit: str
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"isolation_level": ...}
    #: how table files are opened: the store's `io_properties` (the server's FileIO
    #: configuration, `spark_lakeversion.fileio`), never anything a client sent
    io_properties: Mapping[str, str] = field(default_factory=dict)
    #: the most row data (Arrow bytes) one table's row merge takes on in the server
    #: (`Limits.max_row_merge_bytes`); past it the file-level conflict stands (Spark merges)
    row_merge_bytes: int = 4 * 1024 * 1024 * 1024
    #: the memory budget of row work (`Limits.max_row_memory_bytes`): DuckDB spills past it
    row_memory_bytes: int = 512 * 1024 * 1024
    #: the merge base's commit (None: the sides share no history)
    base_commit: str | None = None
    #: plan the row merges for an engine outside the server instead of running them
    #: (`rows.merge_plan`: a format records each table's plan in its statistics)
    plan_rows: bool = False
    #: what such an engine handed back, per table (`rows.merge_plan.EngineRows`, checked
    #: by the format before it writes anything)
    row_results: Mapping[Key, Any] = field(default_factory=dict)

    def row_commits(self) -> dict[str, str]:
        """The merge's three commits as a row plan names them (`base`, `target`,
        `source`); `CannotMergeRows` when the sides share no history."""
        from spark_lakeversion.rows.merge_rows import CannotMergeRows

        if self.base_commit is None:
            raise CannotMergeRows("the sides have no common ancestor")
        return {"base": self.base_commit, "target": self.target_commit,
                "source": self.source_commit}


class ContentMergePlan(ABC):
    key: Key
    conflicts: list[Conflict]
    statistics: dict[str, Any]

    @abstractmethod
    def apply(self, *, preview: bool = False) -> Content:
        """Write the merged table state and return its new content value. A `preview`
        (a gated merge's, on no ref until its checks pass) must leave what plain readers
        of the table read unchanged: a format whose readers read the table's own log
        writes it beside that (Delta: a side log); the gate publishes it through
        `TableFormat.publish_preview`."""

    def discard(self) -> None:  # noqa: B027 - optional hook
        """Remove what `apply()` wrote, when its commit lost the race to the target."""

    def fence(self, state: GcState) -> None:  # noqa: B027 - optional hook
        """Refuse (a `ConflictError`) when files this plan adds that a client wrote (an
        engine's row merge) may be collected by gc's run at `state`; the merge checks it
        just before it commits in `state`'s epoch. Files `apply()` writes are younger
        than any cutoff and need no check."""


class ContentMerger(ABC):
    content_type: ContentType

    @abstractmethod
    def plan(self, key: Key, base: Content, target: Content, source: Content,
             context: MergeContext) -> ContentMergePlan:
        """Plan the merge of `source`'s net change since `base` onto `target`; write nothing."""

    def check_options(self, options: Mapping[str, Any]) -> None:  # noqa: B027 - optional
        """Refuse (`InvalidInput`) merge options this format reads but cannot honour."""
