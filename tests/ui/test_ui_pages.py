"""Every page of the web UI in a real browser: a screenshot of each at 1280 px and 390 px
(saved under the test's output directory) with its text asserted, no page wider than the
window (a long row diff scrolls inside its table), and no page request answering a 5xx:
every route, crawled and with odd ref names."""

from __future__ import annotations

import re
from collections import deque
from typing import Any
from urllib.parse import urljoin, urlparse

import pyarrow as pa
import pytest
from playwright.sync_api import expect
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType

from spark_lakeversion.api import Catalog
from spark_lakeversion.versioning.http import RestVersionStore
from tests.ui.helpers import Site, sign_in

WIDE_COLUMNS = [f"column_{i:02d}" for i in range(12)]
#: refs whose names look like the UI's own path words, or hold a `/`
ODD_BRANCHES = ["feature/x.y", "log", "table", "a/table/b", "x/log"]
ODD_REFS = ["%00", "..", "%2e%2e", "main~999", "main@%7B99%7D", "main%23not-a-time",
            "main%232020-01-01T00:00:00Z", "%C3%BC", "a" * 300, "%ff", "%3Cscript%3E", "'",
            "%22", "main...", "...", "%2F", "main%2F..%2F..", "0000000000",
            "feature%2Fx.y", "feature/x.y", "a%2Ftable%2Fb", "x%2Flog", "log", "table"]
TEMPLATES = ["/ui/ref/{r}", "/ui/ref/{r}/log", "/ui/ref/{r}/table/db.t",
             "/ui/ref/main/table/{r}", "/ui/commit/{r}", "/ui/compare/{r}...main",
             "/ui/compare/main...{r}", "/ui/compare/{r}", "/ui/mr/{r}", "/ui/go?ref={r}",
             "/ui/ref/main/log?table={r}", "/ui/ref/main/log?page_token={r}",
             "/ui/ref/main/table/db.t?row={r}", "/ui/mr?status={r}", "/ui/mr?before={r}",
             "/ui/checks?branch={r}", "/ui/checks?page={r}", "/ui/audit?since={r}",
             "/ui/audit?principal={r}", "/ui/refs?page={r}", "/ui/{r}",
             "/ui/compare/main...ann-dev?table=db.t&rows={r}"]


@pytest.fixture(scope="module", autouse=True)
def lake(site: Site) -> None:
    """ann-dev changes db.t; db.wide, a wide table, has one row updated on ann-dev; a merge
    request; branches with odd names."""
    site.server.store.unprotect_branch("main")  # this module writes to main directly
    main = site.catalog("main")
    wide = main.create_table("db.wide", schema=Schema(
        *(NestedField(i + 1, c, StringType(), required=False)
          for i, c in enumerate(WIDE_COLUMNS))))
    wide.append(pa.table({c: [f"{c}-value-that-is-long-{n}" for n in range(3)]
                          for c in WIDE_COLUMNS}))
    site.branch("ann-dev")
    site.update("ann-dev", 2, "two")
    dev_wide = site.catalog("ann-dev").load_table("db.wide")
    dev_wide.delete("column_00 == 'column_00-value-that-is-long-0'")
    catalog = Catalog(RestVersionStore(site.url, token=site.tokens["root"]),
                      warehouse=str(site.root / "wh"))
    delta = catalog.branch("main").delta("db.d")
    delta.create(pa.schema([("id", pa.int64()), ("amount", pa.float64())]))
    delta.append(pa.table({"id": [1, 2], "amount": [1.5, 2.5]}))
    for name in ODD_BRANCHES:
        site.branch(name)
    site.server.store.open_merge_request("ann-dev", "main", title="review ann-dev",
                                         author="ann")


def pages(site: Site) -> list[tuple[str, str, str]]:
    """(name, route, the text its heading shows)."""
    head = site.server.store.get_ref("ann-dev").head
    return [("refs", "/ui/refs", "Refs"),
            ("catalog", "/ui/ref/main", "Catalog at main"),
            ("table", "/ui/ref/main/table/db.t", "db.t at main Iceberg"),
            ("delta-table", "/ui/ref/main/table/db.d", "db.d at main Delta"),
            ("log", "/ui/ref/ann-dev/log", "Log of ann-dev"),
            ("commit", f"/ui/commit/{head}", f"Commit {head[:12]}"),
            ("compare", "/ui/compare/main...ann-dev", "Compare main ... ann-dev"),
            ("mr-list", "/ui/mr", "Merge requests"),
            ("mr", "/ui/mr/1", "#1 review ann-dev open"),
            ("checks", "/ui/checks", "Check runs"),
            ("audit", "/ui/audit", "Audit trail")]


def test_screenshots_of_every_page_at_1280_and_390(browser: Any, site: Site) -> None:
    shots = site.shots()
    context = browser.new_context(base_url=site.url)
    login = context.new_page()
    for width in (1280, 390):
        login.set_viewport_size({"width": width, "height": 800})
        login.goto("/ui/login")
        assert login.locator("h1").inner_text() == "Sign in"
        login.screenshot(path=str(shots / f"login-{width}.png"), full_page=True)
    page = sign_in(browser, site, "root")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 800})
        for name, route, heading in pages(site):
            response = page.goto(route)
            assert response is not None and response.status == 200, (route, response)
            assert page.locator("h1").inner_text().strip() == heading, route
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, (route, width, overflow)
            path = shots / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 5_000
    # the wide row diff scrolls inside its own box at 390 px
    page.goto("/ui/compare/main...ann-dev")
    box = page.locator("section[data-table='db.wide'] .scroll.rows")
    assert box.evaluate("b => b.scrollWidth > b.clientWidth + 100")
    assert page.locator("section[data-table='db.wide'] .rowdiff tbody tr").count() == 1
    assert len(list(shots.glob("*.png"))) == 2 * (len(pages(site)) + 1)
    context.close()
    page.context.close()


def test_no_page_request_gets_a_5xx(browser: Any, site: Site) -> None:
    page = sign_in(browser, site, "root")
    request = page.context.request
    checked = 0
    for template in TEMPLATES:
        for ref in ODD_REFS:
            url = template.format(r=ref)
            response = request.get(url, max_redirects=0)
            assert response.status < 500, (url, response.status, response.text()[:300])
            assert "Traceback" not in response.text()
            checked += 1
    # the odd names the UI's own links encode: each page works
    for name in ODD_BRANCHES:
        page.goto("/ui/refs")
        page.locator(f"table.grid td:first-child a:text-is('{name}')").click()
        expect(page.locator("h1")).to_have_text(f"Catalog at {name}")
        page.locator("p.meta a:text-is('log')").click()
        expect(page.locator("h1")).to_have_text(f"Log of {name}")
    # crawl every link the pages show, from the refs page
    seen: set[str] = set()
    queue = deque(["/ui/refs"])
    while queue and len(seen) < 300:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = request.get(url)
        assert response.status < 500, (url, response.status)
        for href in re.findall(r'href="([^"]+)"', response.text()):
            target = urlparse(urljoin(url, href.replace("&amp;", "&")))
            path = target.path + (f"?{target.query}" if target.query else "")
            if target.path.startswith("/ui/") and not target.path.startswith("/ui/static"):
                queue.append(path)
    assert checked == len(TEMPLATES) * len(ODD_REFS) and len(seen) > 40
    # odd form values are typed errors too
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    for form in ({"name": "../x", "from": "main"}, {"name": "ok-name", "from": "nope~~"},
                 {"name": "x" * 500}, {"name": "y", "type": "nonsense"}):
        response = request.post("/ui/refs/create", form={"csrf": csrf or "", **form})
        assert 400 <= response.status < 500, (form, response.status)
    page.context.close()
