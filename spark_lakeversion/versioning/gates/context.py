"""What a check is handed (`GateContext`), and how the gate reaches the check engines."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spark_lakeversion.errors import UnsafeOperation
from spark_lakeversion.fileio import NO_FILE_IO
from spark_lakeversion.model import CheckReport, CheckSpec, Content, DiffEntry, Key
from spark_lakeversion.versioning.gates.policy import DEFAULT_CHECK_POLICY, CheckPolicy

if TYPE_CHECKING:
    from spark_lakeversion.versioning.interface import VersionStore

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateContext:
    """One gated merge attempt. `preview` is a commit id, readable as a ref expression on
    every surface (`db@<preview>.orders` in Spark, `/iceberg` prefix `<preview>`).

    `relations` is all a check may read: for each of `RELATIONS` (the preview, the target
    at the head the merge was planned on, the source's head) its table contents, handed
    over by the gate so the engines never reach the store for another ref. `io` opens
    their files (the server's FileIO properties); `policy` is the server's `CheckPolicy`."""

    attempt: str
    preview: str
    source: str
    source_head: str
    target: str
    target_head: str
    changes: tuple[DiffEntry, ...]  # target head -> preview, table level
    store: VersionStore
    relations: Mapping[str, Mapping[Key, Content]] = field(default_factory=dict)
    io: Mapping[str, str] = NO_FILE_IO
    policy: CheckPolicy = DEFAULT_CHECK_POLICY

    @property
    def changed_tables(self) -> list[str]:
        return [str(d.key) for d in self.changes]

    def to_dict(self) -> dict[str, Any]:
        """The JSON a webhook receives."""
        return {"attempt": self.attempt, "preview": self.preview, "source": self.source,
                "source_head": self.source_head, "target": self.target,
                "target_head": self.target_head,
                "changes": [d.to_dict() for d in self.changes]}


#: the names a check reads its three states by (`preview.db.t`, `target.db.t`, `source.db.t`)
RELATIONS = ("preview", "target", "source")

#: runs `specs` on a context, each within its timeout (in parallel where it can), and
#: answers one report per spec in the same order
CheckRunner = Callable[[GateContext, Sequence[CheckSpec]], list[CheckReport]]
#: fires post-commit/post-merge notifications (context, specs, new head, event); never
#: blocks the write, records its own outcome
Notifier = Callable[[GateContext, Sequence[CheckSpec], str, str], None]
#: checks a spec as it is added (SQL names only the three relations, a Python target is
#: installed, a webhook host allowed; given a context, a SQL check runs once on it, and may
#: name a table no ref has only when allowed): `InvalidInput` saying why not
Validator = Callable[[CheckSpec, CheckPolicy, "GateContext | None", bool], None]


@dataclass(frozen=True)
class CheckEngines:
    """The check engines a store's gate runs (`spark_lakeversion.checks`), injected when
    the store is wired (`spark_lakeversion.wiring.open_store`): they sit above this layer
    (DuckDB, pyiceberg, httpx), so this layer never imports them."""

    run: CheckRunner
    notify: Notifier
    validate: Validator


def _unwired(*_: object) -> Any:
    raise UnsafeOperation("this store was opened without check engines, so it cannot run "
                          "or add checks: open it with spark_lakeversion.wiring.open_store")


def _unwired_notify(*_: object) -> None:
    _LOG.warning("a notification was not sent: this store was opened without check engines "
                 "(open it with spark_lakeversion.wiring.open_store)")


#: a store opened below the composition root: no check can run or be added (fail closed);
#: merges into branches without checks work as ever
NO_ENGINES = CheckEngines(_unwired, _unwired_notify, _unwired)
