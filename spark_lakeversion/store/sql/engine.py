"""SQLAlchemy engines for the storage: SQLite pragmas and locks, PostgreSQL pooling, and
the read/write transactions every storage call runs in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from spark_lakeversion.errors import InvalidInput


def create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False,
                                                    "timeout": 60}}
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA busy_timeout=60000")
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # writers take the lock up front: no deadlock on read->write upgrade
            immediate = conn.get_execution_options().get("lv_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except Exception as exc:
        raise InvalidInput(f"cannot open store {url!r}: {exc}") from exc


class Database:
    """An engine with the transactions the storage needs, and insert-if-absent."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.dialect = self.engine.dialect.name
        # SQLite takes one writer at a time; serialising in-process writers avoids
        # busy-retry storms between threads (other processes wait on busy_timeout)
        self._write_lock = threading.RLock() if self.dialect == "sqlite" else None
        # an in-memory database is one shared connection: reads must take turns too
        self._read_lock = self._write_lock if self.engine.pool.__class__ is StaticPool \
            else None
        self._insert_ignore_statements: dict[str, Any] = {}
        self._insert_if_absent_statements: dict[str, Any] = {}

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite)."""
        lock = self._write_lock
        if lock is not None:
            lock.acquire()
        try:
            with self.engine.connect().execution_options(lv_write=True) as conn, \
                    conn.begin():
                yield conn
        finally:
            if lock is not None:
                lock.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        lock = self._read_lock
        if lock is not None:
            lock.acquire()
        try:
            with self.engine.connect() as conn:
                yield conn
        finally:
            if lock is not None:
                lock.release()

    def insert_ignore(self, table: sa.Table, rows: list[dict[str, Any]],
                      conn: Connection) -> None:
        """Insert immutable, content-addressed rows; a row already there is the same row."""
        if not rows:
            return
        statement = self._insert_ignore_statements.get(table.name)
        if statement is None:
            if self.dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                statement = pg_insert(table).on_conflict_do_nothing()
            else:
                statement = table.insert().prefix_with("OR IGNORE")
            self._insert_ignore_statements[table.name] = statement
        conn.execute(statement, rows)

    def insert_if_absent(self, table: sa.Table, row: dict[str, Any], conn: Connection) -> bool:
        """Insert one row unless its key is taken: whether it was inserted (one statement,
        where a lookup and an insert would be two)."""
        statement = self._insert_if_absent_statements.get(table.name)
        if statement is None:
            if self.dialect == "postgresql":  # psycopg reports no row count for this insert
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                statement = pg_insert(table).on_conflict_do_nothing() \
                    .returning(*table.primary_key.columns)
            else:
                statement = table.insert().prefix_with("OR IGNORE")
            self._insert_if_absent_statements[table.name] = statement
        result = conn.execute(statement, row)
        return result.first() is not None if self.dialect == "postgresql" \
            else bool(result.rowcount)

    def close(self) -> None:
        self.engine.dispose()
