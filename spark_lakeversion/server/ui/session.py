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

Sessions live in this process's memory: a restart signs everyone out, and several server
processes do not share them (sign in on each).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from spark_lakeversion.auth.grants import Principal

SESSION_COOKIE = "lv_session"
LOGIN_CSRF_COOKIE = "lv_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
#: a session ends this long after sign-in
SESSION_SECONDS = 8 * 3600
#: the most sessions kept; the oldest go first
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


class Sessions:
    """Session id -> `Session`, bounded, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def open(self, principal: Principal) -> tuple[str, Session]:
        sid = new_secret()
        session = Session(principal, new_secret(), time.time() + SESSION_SECONDS)
        with self._lock:
            self._sessions[sid] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires < time.time():
                del self._sessions[sid]
                return None
            return session

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)
