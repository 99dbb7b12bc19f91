"""What a check is handed (`GateContext`), and how the gate reaches the check engines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spark_lakeversion.model import CheckReport, CheckSpec, DiffEntry

if TYPE_CHECKING:
    from spark_lakeversion.versioning.interface import VersionStore


@dataclass(frozen=True)
class GateContext:
    """One gated merge attempt. `preview` is a commit id, readable as a ref expression on
    every surface (`db@<preview>.orders` in Spark, `/iceberg` prefix `<preview>`)."""

    attempt: str
    preview: str
    source: str
    source_head: str
    target: str
    target_head: str
    changes: tuple[DiffEntry, ...]  # target head -> preview, table level
    store: VersionStore

    @property
    def changed_tables(self) -> list[str]:
        return [str(d.key) for d in self.changes]

    def to_dict(self) -> dict[str, Any]:
        """The JSON a webhook receives."""
        return {"attempt": self.attempt, "preview": self.preview, "source": self.source,
                "source_head": self.source_head, "target": self.target,
                "target_head": self.target_head,
                "changes": [d.to_dict() for d in self.changes]}


#: runs `specs` on a context, each within its timeout (in parallel where it can), and
#: answers one report per spec in the same order
CheckRunner = Callable[[GateContext, Sequence[CheckSpec]], list[CheckReport]]
#: fires post-commit/post-merge notifications (context, specs, new head, event); never
#: blocks the write, records its own outcome
Notifier = Callable[[GateContext, Sequence[CheckSpec], str, str], None]


def default_runner() -> tuple[CheckRunner, Notifier]:
    """The engines of `spark_lakeversion.checks` (imported only when a gated merge runs:
    they sit above this layer, as they read the preview through the Iceberg catalog)."""
    from spark_lakeversion.checks.runner import notify, run_checks

    return run_checks, notify
