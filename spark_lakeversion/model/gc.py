"""What gc has done to the store, kept by the store: the gc epoch, its file cutoff and its
retained-history cutoff (table ``lv_gc_state``, one row).

It closes the two windows between gc and writers (see `spark_lakeversion.gc`):

- gc *begins* a real run by bumping `epoch` and raising `cutoff` (files with an older
  modification time may be deleted by it) before it reads the store. A commit that adds
  files reads the state, checks that each new file exists and is not older than `cutoff`,
  and commits only if `epoch` is unchanged, in the same transaction as the ref
  compare-and-swap, holding the row with ``FOR SHARE`` (PostgreSQL; SQLite serialises
  writers anyway). So a commit either lands before gc read the store (gc sees it) or was
  checked against gc's own cutoff (gc never deletes its files).
- `retained_since` is the history cutoff of the real runs: a commit outside the history
  gc retains may have lost files, so the store refuses to make it a ref head or to merge,
  cherry-pick, revert or roll back from it (`HistoryCollected`).

Both cutoffs only ever grow (the maximum over all runs): a later run with a longer grace
period or history window cannot bring back what an earlier one deleted.

The value lives here (no SQL imports, so the package stays light); the SQL of the table is
in `spark_lakeversion.store.sql.gc_state`, and the refusal (`GcEpochChanged`) in
`spark_lakeversion.errors` with every other error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class GcState:
    """The store's record of gc; epoch 0 and no cutoffs: gc never ran (for real)."""

    epoch: int = 0
    cutoff: datetime | None = None
    retained_since: datetime | None = None
    started: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch,
                "cutoff": self.cutoff.isoformat() if self.cutoff else None,
                "retained_since": self.retained_since.isoformat() if self.retained_since
                else None,
                "started": self.started.isoformat() if self.started else None}

    @classmethod
    def from_dict(cls, data: Any) -> GcState:
        def when(name: str) -> datetime | None:
            value = data.get(name)
            return datetime.fromisoformat(value) if value else None

        return cls(int(data.get("epoch", 0)), when("cutoff"), when("retained_since"),
                   when("started"))

    def may_have_collected(self, commit_time: datetime) -> bool:
        """False when no real gc run can have collected a commit of that time: gc never
        ran, or the commit was made after the last run began. Otherwise only gc's walk
        (`spark_lakeversion.versioning.retention`) can tell: a commit in the window that no ref
        reaches any more (a deleted branch's head) was not retained either."""
        return self.retained_since is not None and (self.started is None
                                                    or commit_time < self.started)
