"""Post-commit and post-merge notifications (checks of kind `notify`): webhooks told in
the background after a table commit or an ungated merge landed, never blocking it. The
`CommitListener` that `commits.Commits` is given by the wiring in `control.py`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from spark_lakeversion.model import (
    CheckKind,
    CheckSpec,
    Commit,
    Content,
    DiffEntry,
    DiffKind,
    Key,
)
from spark_lakeversion.store.spi import StorageWriter
from spark_lakeversion.versioning.gates.context import CheckEngines, GateContext
from spark_lakeversion.versioning.gates.policy import CheckPolicy
from spark_lakeversion.versioning.interface import VersionStore
from spark_lakeversion.versioning.objects import Objects

#: how stale the commit path's view of notification webhooks may be, in seconds
NOTIFY_REFRESH_S = 1.0


def preview_diff(objects: Objects, target_head: str, preview: str) -> list[DiffEntry]:
    """Table-level changes from `target_head` to `preview` (what a check is told)."""
    before = objects.root_of(target_head)
    after = objects.root_of(preview)
    out = []
    for key, (old, new) in sorted(objects.changes(before, after).items()):
        kind = DiffKind.ADDED if old is None else \
            DiffKind.REMOVED if new is None else DiffKind.CHANGED
        out.append(DiffEntry(key, kind, old, new))
    return out


class Notifications:
    """Whom to tell of a commit (a cached snapshot of every branch's notify checks), and
    the telling. `store` is what the webhook's context names (`GateContext.store`)."""

    def __init__(self, objects: Objects, store: VersionStore, policy: CheckPolicy,
                 engines: CheckEngines) -> None:
        self.objects = objects
        self.store = store
        self.policy = policy
        self.engines = engines
        self._notifiers: tuple[float, dict[str, list[CheckSpec]]] | None = None

    def forget(self) -> None:
        """Drop the snapshot: this process hears its own check changes at once."""
        self._notifiers = None

    def to_tell(self, tx: StorageWriter, branch: str) -> list[Any]:
        """The branch's notification webhooks, from a snapshot of every branch's checks
        re-read at most every `NOTIFY_REFRESH_S` (a commit pays no extra query; a new
        notification is heard by other processes within that time)."""
        now = time.monotonic()
        cached = self._notifiers
        if cached is None or now - cached[0] > NOTIFY_REFRESH_S:
            by_branch: dict[str, list[CheckSpec]] = {}
            for spec in tx.branch_checks(None):
                if spec.kind is CheckKind.NOTIFY:
                    by_branch.setdefault(spec.branch, []).append(spec)
            cached = (now, by_branch)
            self._notifiers = cached
        return list(cached[1].get(branch, ()))

    def committed(self, told: list[Any], branch: str, parent: str, commit: Commit,
                  changes: Mapping[Key, Content | None]) -> None:
        specs: list[CheckSpec] = told
        if specs:
            before = self.objects.values(self.objects.root_of(parent), changes)
            diff = tuple(DiffEntry(k, DiffKind.REMOVED if after is None else
                                   DiffKind.ADDED if k not in before else DiffKind.CHANGED,
                                   before.get(k), after)
                         for k, after in sorted(changes.items()))
            self.notify(GateContext(uuid.uuid4().hex, commit.id, branch, commit.id, branch,
                                    parent, diff, self.store, policy=self.policy),
                        specs, commit.id, "committed")

    def merged(self, checks: list[Any], source: str, target: str, source_head: str,
               target_head: str, new_head: str) -> None:
        specs: list[CheckSpec] = checks
        if specs:
            self.notify(GateContext(uuid.uuid4().hex, new_head, source, source_head,
                                    target, target_head,
                                    tuple(preview_diff(self.objects, target_head, new_head)),
                                    self.store, policy=self.policy),
                        specs, new_head)

    def notify(self, context: GateContext, specs: Sequence[CheckSpec], new_head: str,
               event: str = "merged") -> None:
        """Post-commit and post-merge notifications: in the background, never blocking."""
        notifiers = [s for s in specs if s.kind is CheckKind.NOTIFY]
        if notifiers:
            self.engines.notify(context, notifiers, new_head, event)


__all__ = ["NOTIFY_REFRESH_S", "Notifications", "preview_diff"]
