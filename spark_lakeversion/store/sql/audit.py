"""The SQL of the audit trail (table ``lv_audit``); the value is
`spark_lakeversion.model.audit.AuditRecord`."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from spark_lakeversion.model import AuditRecord, Outcome
from spark_lakeversion.store.objects import from_us, to_us

audit_metadata = sa.MetaData()
audit_table = sa.Table(
    "lv_audit", audit_metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("principal", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("ref", sa.Text, nullable=True),
    sa.Column("outcome", sa.String(8), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("lv_audit_by_time", "ts_us"),
)
INSERT_AUDIT = audit_table.insert()
#: longest ref text and detail kept (a refused request may name anything)
_MAX_TEXT = 1024


def create(conn: Connection) -> None:
    """Create the table (existing stores get it on their next open)."""
    audit_metadata.create_all(conn, checkfirst=True)


def append(conn: Connection, record: AuditRecord) -> None:
    conn.execute(INSERT_AUDIT, {
        "ts_us": to_us(record.timestamp), "principal": record.principal[:64],
        "operation": record.operation[:32],
        "ref": None if record.ref is None else record.ref[:_MAX_TEXT],
        "outcome": record.outcome.value, "detail": record.detail[:_MAX_TEXT]})


def read(conn: Connection, since: datetime | None, principal: str | None,
         limit: int) -> list[AuditRecord]:
    """The newest `limit` records from `since` on, oldest first."""
    t = audit_table
    query = sa.select(t.c.ts_us, t.c.principal, t.c.operation, t.c.ref, t.c.outcome,
                      t.c.detail).order_by(t.c.ts_us.desc(), t.c.seq.desc()).limit(limit)
    if since is not None:
        query = query.where(t.c.ts_us >= to_us(since))
    if principal is not None:
        query = query.where(t.c.principal == principal)
    rows = conn.execute(query).all()
    return [AuditRecord(from_us(ts), p, op, ref, Outcome(outcome), detail)
            for ts, p, op, ref, outcome, detail in reversed(rows)]
