"""The web UI on a server without authentication: no sign-in (the principal is the one
every API client there is: `anonymous`, unrestricted), and still a CSRF token on every
state-changing request; the session cookie is HttpOnly and SameSite=Strict."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    root = tmp_path_factory.mktemp("open")
    with start_embedded_server(f"sqlite:///{root / 'store.db'}",
                               warehouse=str(root / "wh")) as server:
        yield server


def test_no_login_but_csrf_on_every_post(server: EmbeddedServer) -> None:
    with httpx.Client(base_url=server.url) as browser:
        assert browser.get("/ui/login").headers["location"] == "/ui/refs"
        page = browser.get("/ui/refs")
        assert page.status_code == 200 and 'class="principal">anonymous<' in page.text
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        refused = browser.post("/ui/refs/create", data={"name": "dev", "from": "main"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        wrong = browser.post("/ui/refs/create", data={"name": "dev", "csrf": csrf + "x"})
        assert wrong.status_code == 403
        assert [r.name for r in server.store.list_refs()] == ["main"]
        made = browser.post("/ui/refs/create", data={"name": "dev", "from": "main",
                                                     "csrf": csrf})
        assert (made.status_code, made.headers["location"]) == (303, "/ui/ref/dev")
        assert server.store.get_ref("dev").head == server.store.get_ref("main").head
    with httpx.Client(base_url=server.url) as other:  # another browser: its own session
        page = other.get("/ui/refs")
        assert other.post("/ui/refs/create", data={"name": "x", "csrf": csrf}).status_code \
            == 403


def test_the_api_is_unchanged_beside_the_ui(server: EmbeddedServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").headers["location"] == "/ui/refs"
        assert [r["name"] for r in client.get("/api/v1/refs").json()["refs"]] == ["dev", "main"]
        assert client.get("/ui/static/htmx.min.js").status_code == 200
        assert client.get("/ui/static/style.css").headers["content-type"].startswith(
            "text/css")
