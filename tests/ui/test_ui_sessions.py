"""The web UI's sessions live in the store's database (`lv_ui_sessions`): signed in on one
server, a browser is signed in on every server over the same store (two servers on one
PostgreSQL) and after a restart (SQLite); the database holds neither the session id nor the
token, only their SHA-256; an expired session or one whose token left the auth config is
refused (back to the login page); signing out deletes it everywhere; CSRF still holds."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.auth.tokens import token_sha256
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.helpers import fresh_postgres_url, require_postgres
from tests.server.access_helpers import write_auth_config

GRANTS = {"ann": '[{ refs = "*", allow = ["admin"] }]',
          "dan": '[{ refs = "*", allow = ["read"] }]'}


def sign_in(server: EmbeddedServer, token: str) -> str:
    """The session id a browser gets for signing in with `token` (the form, its CSRF)."""
    with httpx.Client(base_url=server.url) as browser:
        form = browser.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        answer = browser.post("/ui/login", data={"csrf": csrf.group(1), "token": token,
                                                 "next": "/ui/refs"})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/refs"
        return str(answer.cookies["lv_session"])


def page(server: EmbeddedServer, sid: str, path: str = "/ui/refs") -> httpx.Response:
    return httpx.get(server.url + path, cookies={"lv_session": sid})


def signed_in_as(server: EmbeddedServer, sid: str) -> str | None:
    """Whom the page shows as signed in; None when it sends the browser to sign in."""
    answer = page(server, sid)
    if answer.status_code == 303:
        assert answer.headers["location"].startswith("/ui/login")
        return None
    assert answer.status_code == 200, answer.text
    found = re.search(r'class="principal">([^<]+)<', answer.text)
    assert found is not None
    return found.group(1)


def csrf_of(server: EmbeddedServer, sid: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page(server, sid).text)
    assert found is not None
    return found.group(1)


def post(server: EmbeddedServer, sid: str, path: str, data: dict[str, str]) -> httpx.Response:
    return httpx.post(server.url + path, data=data, cookies={"lv_session": sid})


def session_rows(url: str) -> list[dict[str, object]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(
                "SELECT * FROM lv_ui_sessions"))]
    finally:
        engine.dispose()


def expire_all(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE lv_ui_sessions SET expires_us = :t"),
                         {"t": int((time.time() - 1) * 1_000_000)})
    finally:
        engine.dispose()


def test_a_session_works_on_a_second_server_over_one_postgresql(tmp_path: Path) -> None:
    require_postgres()
    url = fresh_postgres_url()
    tokens = write_auth_config(tmp_path / "auth.toml", GRANTS)
    auth = load_auth_config(tmp_path / "auth.toml")
    with start_embedded_server(url, str(tmp_path / "wh"), auth=auth) as one, \
            start_embedded_server(url, str(tmp_path / "wh"), auth=auth) as two:
        sid = sign_in(one, tokens["ann"])
        assert signed_in_as(two, sid) == "ann"
        # the database holds only hashes: not the session id, not the token
        [row] = session_rows(url)
        assert row["id_sha256"] == token_sha256(sid)
        assert row["token_sha256"] == token_sha256(tokens["ann"])
        assert all(sid not in str(v) and tokens["ann"] not in str(v) for v in row.values())
        # CSRF on the second server: without the session's token nothing is written
        refused = post(two, sid, "/ui/refs/create", {"name": "dev", "from": "main"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        wrong = post(two, sid, "/ui/refs/create", {"name": "dev", "from": "main",
                                                   "csrf": csrf_of(one, sid) + "x"})
        assert wrong.status_code == 403
        assert [r.name for r in two.store.list_refs()] == ["main"]
        made = post(two, sid, "/ui/refs/create", {"name": "dev", "from": "main",
                                                  "csrf": csrf_of(one, sid)})
        assert (made.status_code, made.headers["location"]) == (303, "/ui/ref/dev")
        assert [r.name for r in one.store.list_refs()] == ["dev", "main"]
        # signing out on one server signs out on both, and deletes the row
        out = post(two, sid, "/ui/logout", {"csrf": csrf_of(two, sid)})
        assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
        assert signed_in_as(one, sid) is None and signed_in_as(two, sid) is None
        assert session_rows(url) == []


def test_a_session_survives_a_restart_and_ends_when_it_expires(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    tokens = write_auth_config(tmp_path / "auth.toml", GRANTS)
    auth = load_auth_config(tmp_path / "auth.toml")
    with start_embedded_server(url, str(tmp_path / "wh"), auth=auth) as server:
        ann, dan = sign_in(server, tokens["ann"]), sign_in(server, tokens["dan"])
        assert signed_in_as(server, ann) == "ann" and signed_in_as(server, dan) == "dan"
        assert signed_in_as(server, "not-a-session") is None
    with start_embedded_server(url, str(tmp_path / "wh"), auth=auth) as server:
        assert signed_in_as(server, ann) == "ann" and signed_in_as(server, dan) == "dan"
        # dan reads only: the page refuses what the grants refuse, session or not
        refused = post(server, dan, "/ui/refs/create", {"name": "x", "from": "main",
                                                        "csrf": csrf_of(server, dan)})
        assert refused.status_code == 403
        expire_all(url)
        assert signed_in_as(server, ann) is None and signed_in_as(server, dan) is None
        # an expired session is deleted when the next one opens
        fresh = sign_in(server, tokens["ann"])
        assert [r["id_sha256"] for r in session_rows(url)] == [token_sha256(fresh)]


def test_a_token_taken_out_of_the_auth_config_ends_its_sessions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    tokens = write_auth_config(tmp_path / "auth.toml", GRANTS)
    with start_embedded_server(url, str(tmp_path / "wh"),
                               auth=load_auth_config(tmp_path / "auth.toml")) as server:
        sid = sign_in(server, tokens["ann"])
    write_auth_config(tmp_path / "other.toml", GRANTS)  # new tokens for the same names
    with start_embedded_server(url, str(tmp_path / "wh"),
                               auth=load_auth_config(tmp_path / "other.toml")) as server:
        assert signed_in_as(server, sid) is None
    # a server without authentication does not take a signed-in session either
    with start_embedded_server(url, str(tmp_path / "wh")) as server:
        answer = page(server, sid)
        assert answer.status_code == 200
        assert 'class="principal">anonymous<' in answer.text
        assert answer.cookies.get("lv_session") not in (None, sid)


def test_the_login_form_still_needs_its_csrf_token(tmp_path: Path) -> None:
    tokens = write_auth_config(tmp_path / "auth.toml", GRANTS)
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "wh"),
                               auth=load_auth_config(tmp_path / "auth.toml")) as server:
        answer = httpx.post(server.url + "/ui/login", data={"token": tokens["ann"]})
        assert answer.status_code == 403 and "lv_session" not in answer.cookies
        assert session_rows(f"sqlite:///{tmp_path / 'store.db'}") == []
