"""The web UI's sessions (table ``lv_ui_sessions``), kept in the store's database so every
server over one store shares them and a restart keeps them (`server/ui/session.py` decides
what a session means; this module only keeps rows).

A row is found by the SHA-256 of its session id (the cookie's value), so the database
never holds what a browser presents; it names its principal by the SHA-256 of the bearer
token signed in with (NULL without authentication, where the principal is its name),
never by the token itself. Rows end at `expires_us`: an expired row is never answered and
is deleted when the next session is opened; at most `max_rows` are kept, the soonest to
expire going first.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from spark_lakeversion.store.sql.engine import Database

sessions_metadata = sa.MetaData()
sessions_table = sa.Table(
    "lv_ui_sessions", sessions_metadata,
    sa.Column("id_sha256", sa.String(64), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=True),
    sa.Column("principal", sa.String(256), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=False),
    sa.Index("lv_ui_sessions_by_expiry", "expires_us"),
)


def create(conn: Connection) -> None:
    """Create the table (existing stores get it on their next open)."""
    sessions_metadata.create_all(conn, checkfirst=True)


@dataclass(frozen=True)
class SessionRow:
    """One stored session: whose (`token_sha256`, or `principal` by name without
    authentication), its CSRF token and when it ends (microseconds since the epoch)."""

    token_sha256: str | None
    principal: str
    csrf: str
    expires_us: int


class SqlSessions:
    """The session rows of one store's database."""

    def __init__(self, db: Database, max_rows: int) -> None:
        self.db = db
        self.max_rows = max_rows

    def put(self, id_sha256: str, row: SessionRow, now_us: int) -> None:
        """Store a new session; expired rows, and the soonest to expire beyond `max_rows`,
        are deleted in the same transaction."""
        t = sessions_table
        with self.db.write() as conn:
            conn.execute(t.delete().where(t.c.expires_us < now_us))
            conn.execute(t.insert().values(
                id_sha256=id_sha256, token_sha256=row.token_sha256,
                principal=row.principal[:256], csrf=row.csrf, expires_us=row.expires_us))
            count = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            if count > self.max_rows:
                oldest = sa.select(t.c.id_sha256).order_by(t.c.expires_us) \
                    .limit(count - self.max_rows).scalar_subquery()
                conn.execute(t.delete().where(t.c.id_sha256.in_(oldest)))

    def get(self, id_sha256: str, now_us: int) -> SessionRow | None:
        """The session, unless it is unknown or has expired."""
        t = sessions_table
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.c.token_sha256, t.c.principal, t.c.csrf,
                                         t.c.expires_us).where(
                t.c.id_sha256 == id_sha256, t.c.expires_us >= now_us)).first()
        return None if row is None else SessionRow(*row)

    def delete(self, id_sha256: str) -> None:
        with self.db.write() as conn:
            conn.execute(sessions_table.delete().where(
                sessions_table.c.id_sha256 == id_sha256))
