"""Sign-in for the web UI: the API's tokens, a server-side session, CSRF tokens.

The login form takes one of the API's bearer tokens (`AuthConfig.authenticate`); the
browser then holds only a random session id in a cookie (HttpOnly, SameSite=Strict, Secure
when served over HTTPS), never the token. Every state-changing request carries a CSRF
token: a form field `csrf` (or the `X-CSRF-Token` header) equal to the session's, compared
in constant time; the login form's own token is a cookie of its own, submitted back
(double submit), since no session exists yet.

Without authentication (no tokens configured) the UI needs no login: a session is opened on
the first visit for the unrestricted principal the API would use (`client_author`:
`anonymous`), as every API client there is.

Sessions live in the store's database (`store/sql/sessions.py`, table `lv_ui_sessions`), so
a restart keeps them and every server over one store shares them. The database holds the
SHA-256 of each session id, never the id a browser presents, and names the principal by
the SHA-256 of the token signed in with, never the token: each request finds the principal
anew in the server's auth config, so a token taken out of it ends its sessions. A session
ends `SESSION_SECONDS` after sign-in; signing out deletes it. A store without a SQL
database (a server over another server) keeps them in memory, as before.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from spark_lakeversion.auth.config import AuthConfig
from spark_lakeversion.auth.grants import Principal
from spark_lakeversion.auth.tokens import token_sha256
from spark_lakeversion.store.sql.sessions import SessionRow, SqlSessions
from spark_lakeversion.store.sql.storage import SqlStorage
from spark_lakeversion.versioning import VersionStore

SESSION_COOKIE = "lv_session"
LOGIN_CSRF_COOKIE = "lv_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
#: a session ends this long after sign-in
SESSION_SECONDS = 8 * 3600
#: the most sessions kept; the soonest to expire go first
MAX_SESSIONS = 10_000


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def same_secret(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(
        str(given).encode("utf-8", "replace"), str(expected).encode("utf-8", "replace"))


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    expires: float


class SessionTable(Protocol):
    """Where session rows are kept, by the SHA-256 of their id (`SqlSessions`)."""

    def put(self, id_sha256: str, row: SessionRow, now_us: int) -> None: ...

    def get(self, id_sha256: str, now_us: int) -> SessionRow | None: ...

    def delete(self, id_sha256: str) -> None: ...


class MemorySessions:
    """Session rows in this process, for a store without a SQL database: bounded,
    thread-safe."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._rows: OrderedDict[str, SessionRow] = OrderedDict()

    def put(self, id_sha256: str, row: SessionRow, now_us: int) -> None:
        with self._lock:
            self._rows[id_sha256] = row
            while len(self._rows) > self.max_rows:
                self._rows.popitem(last=False)

    def get(self, id_sha256: str, now_us: int) -> SessionRow | None:
        with self._lock:
            row = self._rows.get(id_sha256)
        return row if row is not None and row.expires_us >= now_us else None

    def delete(self, id_sha256: str) -> None:
        with self._lock:
            self._rows.pop(id_sha256, None)


def session_table(store: VersionStore) -> SessionTable:
    """The store's own database (`lv_ui_sessions`), else this process's memory."""
    storage = getattr(store, "storage", None)
    if isinstance(storage, SqlStorage):
        return SqlSessions(storage.db, MAX_SESSIONS)
    return MemorySessions(MAX_SESSIONS)


def _now_us() -> int:
    return int(time.time() * 1_000_000)


class Sessions:
    """Session id -> `Session`, over a `SessionTable` fixed at construction. With `auth`,
    a session is a token's: its principal is the one `auth` holds for that token's SHA-256
    now; without, it is the unrestricted principal it was opened for, by name."""

    def __init__(self, table: SessionTable, auth: AuthConfig | None) -> None:
        self.table = table
        self.auth = auth

    def open(self, principal: Principal, token: str | None = None) -> tuple[str, Session]:
        """A new session for `principal`, signed in with `token` (None: no
        authentication)."""
        sid = new_secret()
        now = time.time()
        session = Session(principal, new_secret(), now + SESSION_SECONDS)
        row = SessionRow(None if token is None else token_sha256(token), principal.name,
                         session.csrf, int(session.expires * 1_000_000))
        self.table.put(token_sha256(sid), row, int(now * 1_000_000))
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        row = self.table.get(token_sha256(sid), _now_us())
        if row is None:
            return None
        principal = self._principal(row)
        if principal is None:
            return None
        return Session(principal, row.csrf, row.expires_us / 1_000_000)

    def _principal(self, row: SessionRow) -> Principal | None:
        """Who a row's session acts as now; None when its kind does not match the server
        (a session opened without authentication on a server that has it, or the other way
        round) or its token is no longer in the auth config."""
        if self.auth is None:
            return None if row.token_sha256 is not None else \
                Principal(row.principal, unrestricted=True)
        if row.token_sha256 is None:
            return None
        return self.auth.by_hash.get(row.token_sha256)

    def close(self, sid: str | None) -> None:
        if sid:
            self.table.delete(token_sha256(sid))
