"""The web UI in a real browser (Debian's Chromium through Playwright), signed in with the
API's tokens: browse, create a branch, read a table, a commit's and a compare's row diff,
review a merge request through a failing check, approvals and a merge; a conflicting merge
refused with its conflicts; grants shown and enforced; sessions and CSRF."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.helpers import CHECK, Site, changed_cells, csrf_of, sign_in, table_texts

ROUTES = ["/ui/refs", "/ui/ref/main", "/ui/ref/main/table/db.t", "/ui/ref/main/log",
          "/ui/commit/0123456789abcdef", "/ui/compare/main...ann-dev", "/ui/mr", "/ui/mr/1",
          "/ui/checks", "/ui/audit"]


@pytest.fixture(scope="module", autouse=True)
def branches(site: Site) -> None:
    """ann-dev: row 2 updated, row 3 deleted, row 61 inserted (three commits)."""
    site.branch("ann-dev")
    site.update("ann-dev", 2, "two")
    site.table("ann-dev").delete("id == 3")
    site.table("ann-dev").append(site.rows([61]))


def test_without_a_session_every_route_goes_to_the_login_page(browser: Any, site: Site
                                                              ) -> None:
    context = browser.new_context(base_url=site.url)
    page = context.new_page()
    for route in ["/", *ROUTES]:
        page.goto(route)
        assert re.search(r"/ui/login\?next=", page.url), (route, page.url)
        expect(page.locator("h1")).to_have_text("Sign in")
    assert page.locator("input:visible").evaluate_all(
        "xs => xs.map(x => x.name)") == ["token"]
    # the login itself needs its CSRF token
    forged = context.request.post("/ui/login", form={"token": site.tokens["root"]})
    assert forged.status == 403 and "CSRF" in forged.text()
    bad = page.goto("/ui/login")
    assert bad is not None
    page.fill("input[name=token]", "not-a-token")
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("unknown token")
    context.close()


def test_sign_in_browse_refs_and_create_a_branch(browser: Any, site: Site) -> None:
    page = sign_in(browser, site, "ann")
    cookie = next(c for c in page.context.cookies() if c["name"] == "lv_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    expect(page.locator(".principal")).to_have_text("ann")
    refs = {row[0].split()[0]: row for row in table_texts(page, "table.grid")}
    assert {"main", "ann-dev"} <= set(refs)
    assert "protected" in refs["main"][5] and CHECK in refs["main"][5]
    assert "1 approval" in refs["main"][5]
    assert "↑3" in refs["ann-dev"][4] and "↓0" in refs["ann-dev"][4]
    assert page.locator("a[href='/ui/audit']").count() == 0  # not an admin
    page.fill("form[action='/ui/refs/create'] input[name=name]", "ann-new")
    page.fill("form[action='/ui/refs/create'] input[name=from]", "ann-dev")
    page.click("form[action='/ui/refs/create'] button")
    expect(page.locator("h1")).to_have_text("Catalog at ann-new")
    assert table_texts(page, "table.grid") == [["db", "–", "namespace"],
                                               ["db.t", "db", "Iceberg"]]
    assert site.server.store.get_ref("ann-new").head == \
        site.server.store.get_ref("ann-dev").head
    # delete it, after a confirmation
    page.goto("/ui/refs")
    row = page.locator("table.grid tr", has=page.locator("td:first-child a:text-is('ann-new')"))
    row.locator("button:has-text('delete')").click()
    expect(page.locator("h1")).to_have_text("Delete branch ann-new?")
    assert site.server.store.get_ref("ann-new")  # nothing deleted yet
    page.click("button:has-text('Delete ann-new')")
    expect(page.locator("h1")).to_have_text("Refs")
    assert "ann-new" not in [r.name for r in site.server.store.list_refs()]
    # main is not hers to delete: the button is disabled
    main_row = page.locator("table.grid tr", has=page.locator("td:first-child a:text-is('main')"))
    assert main_row.locator("button:has-text('delete')").is_disabled()
    # a name main may not have: ann creates only ann-*
    page.goto("/ui/refs")
    page.fill("form[action='/ui/refs/create'] input[name=name]", "not-hers")
    page.click("form[action='/ui/refs/create'] button")
    expect(page.locator("h1")).to_have_text("Forbidden")
    expect(page.locator(".message")).to_contain_text("lacks 'create'")
    page.context.close()


def test_table_schema_and_paged_preview(browser: Any, site: Site) -> None:
    page = sign_in(browser, site, "dan")
    page.goto("/ui/ref/main/table/db.t")
    expect(page.locator("h1")).to_contain_text("db.t at main")
    assert table_texts(page, "#schema") == [["1", "id", "long", "yes", "identifier"],
                                            ["2", "v", "string", "", ""]]
    first = table_texts(page, "#preview")
    assert len(first) == 50 and first[0] == ["1", "v1"]
    page.click("a:has-text('Next rows')")
    expect(page.locator(".meta", has_text="rows 51")).to_have_text("rows 51–60")
    assert table_texts(page, "#preview")[-1] == ["60", "v60"]
    # on a protected branch only published states may be restored: none here but the head
    assert page.locator("button:has-text('Roll back to here'):enabled").count() == 0
    page.context.close()


def test_a_commit_and_its_row_diff(browser: Any, site: Site) -> None:
    page = sign_in(browser, site, "dan")
    page.goto("/ui/ref/ann-dev/log")
    expect(page.locator("h1")).to_have_text("Log of ann-dev")
    # newest first: the insert, the delete, the update
    page.locator("#log tbody tr").nth(2).locator("a").first.click()
    expect(page.locator("h1")).to_contain_text("Commit")
    assert table_texts(page, ".rowdiff") == [["update_before", "2", "v2"],
                                             ["update_after", "2", "two"]]
    assert changed_cells(page, ".rowdiff") == ["v2", "two"]
    # main needs an approval: a revert is not offered there, the page says how instead
    options = page.locator("select[name=branch] option").all_inner_texts()
    assert "main" not in options
    expect(page.locator(".review-note")).to_have_text(
        "main needs 1 approval: revert on a branch of it, then open a merge request into main.")
    page.context.close()


def test_compare_shows_row_diff_cells_and_a_clean_dry_run(browser: Any, site: Site) -> None:
    page = sign_in(browser, site, "bob")
    page.goto("/ui/compare/main...ann-dev")
    expect(page.locator("h1")).to_contain_text("Compare main ... ann-dev")
    rows = table_texts(page, ".rowdiff")
    assert sorted(rows) == sorted([["delete", "3", "v3"], ["insert", "61", "v61"],
                                   ["update_before", "2", "v2"],
                                   ["update_after", "2", "two"]])
    colours = page.eval_on_selector_all(
        ".rowdiff tbody tr", "rs => rs.map(r => [r.className, "
        "getComputedStyle(r.cells[1]).backgroundColor])")
    by_change = dict(colours)
    assert by_change["insert"] == "rgb(227, 246, 232)"  # green
    assert by_change["delete"] == "rgb(253, 232, 231)"  # red
    expect(page.locator(".dryrun")).to_contain_text("Clean")
    # main needs an approval: no direct merge, even for bob
    assert page.locator("#merge").is_disabled()
    page.click("button:has-text('Run checks')")
    expect(page.locator("table.reports")).to_contain_text(CHECK)
    assert table_texts(page, "table.reports")[0][:2] == [CHECK, "passed"]
    page.context.close()


def test_merge_request_blocked_by_a_check_then_fixed_approved_and_merged(
        browser: Any, site: Site) -> None:
    site.branch("ann-neg")
    site.table("ann-neg").append(site.rows([-1, 100], "n"))
    ann = sign_in(browser, site, "ann")
    ann.goto("/ui/compare/main...ann-neg")
    ann.fill("input[name=title]", "add row 100")
    ann.fill("textarea[name=description]", "one new row")
    ann.click("button:has-text('Open merge request')")
    expect(ann.locator("#mr-status")).to_have_text("open")
    number = int(re.search(r"/ui/mr/(\d+)", ann.url).group(1))  # type: ignore[union-attr]
    assert ann.locator("#approve").is_disabled()  # ann may not merge into main
    assert ann.locator("#merge").is_disabled()

    bob = sign_in(browser, site, "bob")
    bob.goto(f"/ui/mr/{number}")
    expect(bob.locator("h1")).to_contain_text("add row 100")
    bob.click("#approve")
    expect(bob.locator("#approvals")).to_contain_text("bob approved")
    expect(bob.locator("h2", has_text="Approvals")).to_have_text("Approvals 1/1")
    # viewing runs no check; running them on the preview fails one: blocked, with the
    # report, merge disabled
    expect(bob.locator("#checks-not-run")).to_be_visible()
    bob.click("#run-checks")
    expect(bob.locator(".blocked h3")).to_have_text("Blocked by checks on the merge preview")
    report = table_texts(bob, ".blocked table.reports")[0]
    assert report[:3] == [CHECK, "failed", "1"] and '"id":-1' in report[4].replace(" ", "")
    assert bob.locator("#merge").is_disabled()
    # posted anyway: refused by the gate (412), the reports shown, nothing merged
    head = site.server.store.get_ref("main").head
    forced = bob.context.request.post(f"/ui/mr/{number}/merge", form={"csrf": csrf_of(bob)})
    assert forced.status == 412 and "Merge blocked by checks" in forced.text()
    assert site.server.store.get_ref("main").head == head
    bob.goto(f"/ui/mr/{number}")
    expect(bob.locator("#mr-status")).to_have_text("open")
    expect(bob.locator("#runs")).to_contain_text("failed")  # the refused merge's run

    # the fix moves the source: bob's approval no longer counts
    site.table("ann-neg").delete("id < 0")
    bob.goto(f"/ui/mr/{number}")
    expect(bob.locator("#approvals")).to_contain_text("outdated")
    assert bob.locator("#merge").is_disabled()
    cy = sign_in(browser, site, "cy")
    cy.goto(f"/ui/mr/{number}")
    cy.click("#approve")
    expect(cy.locator("h2", has_text="Approvals")).to_have_text("Approvals 1/1")
    cy.click("#merge")
    expect(cy.locator("#mr-status")).to_have_text("merged")
    expect(cy.locator("#runs")).to_contain_text("passed")
    shown = []
    for offset in (0, 50):
        cy.goto(f"/ui/ref/main/table/db.t?row={offset}")
        shown += table_texts(cy, "#preview")
    assert ["100", "n100"] in shown and len(shown) == 61 and ["-1", "n-1"] not in shown
    for page in (ann, bob, cy):
        page.context.close()


def test_a_conflicting_merge_is_refused_with_its_conflicts(browser: Any, site: Site) -> None:
    site.branch("ann-base")
    site.branch("ann-c", "ann-base")
    site.update("ann-base", 5, "base-side")
    site.update("ann-c", 5, "c-side")
    page = sign_in(browser, site, "ann")
    page.goto("/ui/compare/ann-base...ann-c")
    expect(page.locator(".dryrun")).to_contain_text("Conflicts: 1")
    conflict = page.locator("section.conflict")
    expect(conflict.locator("h3")).to_have_text("ROW_CONFLICT db.t")
    [row] = table_texts(page, ".rowconflicts")
    key, _, columns, base, source, target = row
    assert (key, columns) == ('{"id": 5}', "v")
    assert ('"v": "v5"' in base, '"v": "c-side"' in source, '"v": "base-side"' in target) \
        == (True, True, True)
    assert page.locator("#merge").is_disabled()
    forged = page.context.request.post("/ui/compare/ann-base...ann-c/merge",
                                       form={"csrf": csrf_of(page)})
    assert forged.status == 409 and "ConflictError" in forged.text()
    assert site.table("ann-base").scan(row_filter="id == 5").to_arrow()["v"].to_pylist() == \
        ["base-side"]
    page.context.close()


def test_without_merge_the_button_is_disabled_and_a_forged_post_is_403(
        browser: Any, site: Site) -> None:
    site.branch("ann-dan")
    site.table("ann-dan").append(site.rows([70]))
    page = sign_in(browser, site, "dan")
    page.goto("/ui/compare/ann-base...ann-dan")
    expect(page.locator("h1")).to_contain_text("Compare")
    assert page.locator("#merge").is_disabled()
    assert page.locator("#merge").get_attribute("title") == "you lack 'merge' on ann-base"
    head = site.server.store.get_ref("ann-base").head
    forged = page.context.request.post("/ui/compare/ann-base...ann-dan/merge",
                                       form={"csrf": csrf_of(page)})
    assert forged.status == 403 and "lacks &#39;merge&#39;" in forged.text()
    assert site.server.store.get_ref("ann-base").head == head
    # and without the CSRF token: 403 before anything is tried
    bare = page.context.request.post("/ui/refs/create", form={"name": "x", "from": "main"})
    assert bare.status == 403 and "CSRF" in bare.text()
    page.goto("/ui/audit")
    expect(page.locator("h1")).to_have_text("Forbidden")
    page.context.close()


def test_viewing_a_compare_or_a_merge_request_records_nothing(browser: Any, site: Site
                                                             ) -> None:
    """A page view plans the merge only: the audit trail, the check runs and the previews,
    read through the API, are the same after five views of each page; "Run checks" is an
    action, recorded."""
    site.branch("ann-view")
    site.table("ann-view").append(site.rows([-5]))  # the check fails on its merge
    request = site.server.store.open_merge_request("ann-view", "main", title="view only")
    api = browser.new_context(base_url=site.url, extra_http_headers={
        "Authorization": f"Bearer {site.tokens['root']}"}).request

    def recorded() -> tuple[list[Any], list[Any], list[Any]]:
        audit = api.get("/api/v1/audit?since=2000-01-01T00:00:00Z")
        runs = api.get("/api/v1/check-runs?limit=1000")
        previews = api.get("/api/v1/previews?since=2000-01-01T00:00:00Z")
        assert (audit.status, runs.status, previews.status) == (200, 200, 200)
        return audit.json()["records"], runs.json()["runs"], previews.json()["commits"]

    before = recorded()
    page = sign_in(browser, site, "bob")
    signed_in = recorded()  # signing in is not audited either
    assert signed_in == before
    for _ in range(5):
        page.goto("/ui/compare/main...ann-view")
        expect(page.locator(".dryrun")).to_contain_text("Clean")
        expect(page.locator("#checks-not-run")).to_be_visible()
        page.goto(f"/ui/mr/{request.number}")
        expect(page.locator("#checks-not-run")).to_be_visible()
    assert recorded() == before
    page.click("#run-checks")  # an action: its runs and its dry-run merge are recorded
    expect(page.locator(".blocked h3")).to_have_text("Blocked by checks on the merge preview")
    audit, runs, _ = recorded()
    assert len(runs) == len(before[1]) + 1 and runs[0]["status"] == "failed"
    assert [(r["principal"], r["operation"], r["ref"]) for r in audit[len(before[0]):]] == \
        [("bob", "merge", "main")]
    page.context.close()
