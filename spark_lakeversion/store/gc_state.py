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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from spark_lakeversion.errors import ConflictError

gc_metadata = sa.MetaData()
gc_state_table = sa.Table(
    "lv_gc_state", gc_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("cutoff_us", sa.BigInteger, nullable=True),  # files older may be gone
    sa.Column("retained_since_us", sa.BigInteger, nullable=True),  # history older may be gone
    sa.Column("started_us", sa.BigInteger, nullable=True),  # start of the last real run
)
_ROW = 1


def _dt(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc)


def _us(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


class GcEpochChanged(ConflictError):
    """A commit checked in one gc epoch would land in another: refused, nothing written.
    (Over HTTP it arrives as a plain `ConflictError`.)"""


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

    def collected(self, commit_time: datetime) -> bool:
        """True when a commit this old is past gc's retained-history cutoff *and* older than
        the last run (a commit made after a run began cannot have lost files to it)."""
        if self.retained_since is None or commit_time >= self.retained_since:
            return False
        return self.started is None or commit_time < self.started


def create(conn: Connection) -> None:
    """Create the table and its one row (existing stores get them on their next open)."""
    gc_metadata.create_all(conn, checkfirst=True)
    if conn.execute(sa.select(gc_state_table.c.id)
                    .where(gc_state_table.c.id == _ROW)).first() is None:
        conn.execute(gc_state_table.insert().values(id=_ROW, epoch=0))


def _from_row(row: Any) -> GcState:
    if row is None:
        return GcState()
    return GcState(int(row.epoch), _dt(row.cutoff_us), _dt(row.retained_since_us),
                   _dt(row.started_us))


def read(conn: Connection) -> GcState:
    return _from_row(conn.execute(sa.select(gc_state_table)
                                  .where(gc_state_table.c.id == _ROW)).first())


def hold(conn: Connection) -> GcState:
    """The state, locked against a new gc run until `conn`'s transaction ends."""
    return _from_row(conn.execute(sa.select(gc_state_table)
                                  .where(gc_state_table.c.id == _ROW)
                                  .with_for_update(read=True)).first())


def begin(conn: Connection, cutoff: datetime, retained_since: datetime) -> GcState:
    """A new real gc run: bump the epoch, raise both cutoffs (never lower them)."""
    old = _from_row(conn.execute(sa.select(gc_state_table)
                                 .where(gc_state_table.c.id == _ROW)
                                 .with_for_update()).first())
    new = GcState(old.epoch + 1,
                  max(cutoff, old.cutoff) if old.cutoff else cutoff,
                  max(retained_since, old.retained_since) if old.retained_since
                  else retained_since,
                  datetime.fromtimestamp(time.time(), tz=timezone.utc))
    assert new.cutoff is not None and new.retained_since is not None and new.started
    values = {"epoch": new.epoch, "cutoff_us": _us(new.cutoff),
              "retained_since_us": _us(new.retained_since), "started_us": _us(new.started)}
    if conn.execute(gc_state_table.update().where(gc_state_table.c.id == _ROW)
                    .values(**values)).rowcount == 0:
        conn.execute(gc_state_table.insert().values(id=_ROW, **values))
    return new


__all__ = ["GcEpochChanged", "GcState", "begin", "create", "gc_state_table", "hold", "read"]
