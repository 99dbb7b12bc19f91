"""The SQL of gc's state (table ``lv_gc_state``, one row); see
`spark_lakeversion.model.gc` for what it means."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from spark_lakeversion.model import GcState

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


# built once: every ref move reads or holds the state, and building the statement cost
# more than running it
_READ = sa.select(gc_state_table).where(gc_state_table.c.id == _ROW)
_HOLD = _READ.with_for_update(read=True)


def read(conn: Connection) -> GcState:
    return _from_row(conn.execute(_READ).first())


def hold(conn: Connection) -> GcState:
    """The state, locked against a new gc run until `conn`'s transaction ends."""
    return _from_row(conn.execute(_HOLD).first())


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


__all__ = ["begin", "create", "gc_state_table", "hold", "read"]
