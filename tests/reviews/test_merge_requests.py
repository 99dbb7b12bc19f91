"""Merge requests over a real server with principals: open, approve (by others with
`merge`), approvals voided when the source moves, merges through the gates, the approval
requirement on every merge path, and the same over the REST client and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from click.testing import CliRunner

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import ChecksFailed, Forbidden, InvalidInput, ProtectedBranch
from spark_lakeversion.model import CheckKind, CheckSpec, MrStatus
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from spark_lakeversion.versioning.http import RestVersionStore
from tests.lake import ROWS_SCHEMA
from tests.server.access_helpers import write_auth_config

#: ann writes feature branches; bob and cy may merge into main; dan only reads
GRANTS = {
    "root": '[{ refs = "*", allow = ["admin"] }]',
    "ann": '[{ refs = "*", allow = ["read"] }, { refs = "ann-*", allow = ["admin"] }]',
    "bob": '[{ refs = "*", allow = ["read", "merge"] }]',
    "cy": '[{ refs = "*", allow = ["read", "merge"] }]',
    "dan": '[{ refs = "*", allow = ["read"] }]',
}


class Site:
    def __init__(self, server: EmbeddedServer, tokens: dict[str, str]) -> None:
        self.server = server
        self.tokens = tokens

    def api(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.api_url,
                            headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def rest(self, who: str) -> RestVersionStore:
        return RestVersionStore(self.server.url, token=self.tokens[who])

    def append(self, ref: str, ids: list[int]) -> None:
        from pyiceberg.catalog.rest import RestCatalog

        catalog = RestCatalog(f"c-{ref}", uri=self.server.iceberg_uri, warehouse=ref,
                              token=self.tokens["root"])
        catalog.load_table("db.t").append(
            pa.table({"id": ids, "v": [f"v{i}" for i in ids]}, schema=ROWS_SCHEMA))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    from pyiceberg.catalog.rest import RestCatalog

    tokens = write_auth_config(tmp_path / "auth.toml", GRANTS)
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               auth=load_auth_config(tmp_path / "auth.toml")) as server:
        main = RestCatalog("m", uri=server.iceberg_uri, warehouse="main",
                           token=tokens["root"])
        main.create_namespace("db")
        main.create_table("db.t", schema=ROWS_SCHEMA).append(
            pa.table({"id": [1], "v": ["v1"]}, schema=ROWS_SCHEMA))
        server.store.create_ref("ann-1")
        site = Site(server, tokens)
        site.append("ann-1", [2])
        site.rest("root").protect_branch("main", require_approvals=2)
        yield site


def test_two_approvals_from_others_then_merge(site: Site) -> None:
    ann, bob, cy = site.rest("ann"), site.rest("bob"), site.rest("cy")
    request = ann.open_merge_request("ann-1", "main", title="add 2", description="why")
    assert (request.number, request.author, request.status) == (1, "ann", MrStatus.OPEN)
    assert request.required_approvals == 2 and not request.approved
    # the principal approves, whatever name the client sends
    assert [a.principal for a in site.rest("root").approve_merge_request(1, "ann")
            .approvals] == ["root"]
    own = bob.open_merge_request("ann-1", title="bob's own").number
    with pytest.raises(InvalidInput, match="author cannot approve"):
        bob.approve_merge_request(own)
    with pytest.raises(Forbidden, match="lacks 'merge'"):
        site.rest("dan").approve_merge_request(1)
    with pytest.raises(Forbidden, match="lacks 'merge'"):
        ann.approve_merge_request(1)  # ann may not merge into main
    bob.approve_merge_request(1)
    # the source moves: every approval so far is void
    site.append("ann-1", [3])
    moved = cy.approve_merge_request(1)
    assert [a.principal for a in moved.valid_approvals] == ["cy"]
    with pytest.raises(ProtectedBranch, match="needs 2 approval"):
        bob.merge_merge_request(1)
    bob.approve_merge_request(1)
    result = bob.merge_merge_request(1)
    assert result.successful and result.new_head == site.server.store.get_ref("main").head
    merged = bob.get_merge_request(1)
    assert (merged.status, merged.merged_commit) == (MrStatus.MERGED, result.new_head)
    commit = site.server.store.get_commit(result.new_head)
    assert commit.properties["lakeversion.merge-request"] == "1" and commit.author == "bob"


def test_direct_merge_into_a_branch_needing_approvals_is_refused(site: Site) -> None:
    with pytest.raises(ProtectedBranch, match="open a merge request"):
        site.rest("root").merge("ann-1", "main")
    assert site.rest("root").merge("ann-1", "main", dry_run=True).successful
    site.rest("root").protect_branch("main", require_approvals=0)
    assert site.rest("root").merge("ann-1", "main").successful


def test_merge_request_merge_goes_through_checks(site: Site) -> None:
    root = site.rest("root")
    root.protect_branch("main", require_approvals=1)
    root.add_check(CheckSpec("main", "few", CheckKind.SQL,
                             "SELECT * FROM preview.db.t WHERE id > 2"))
    site.append("ann-1", [3])
    number = site.rest("ann").open_merge_request("ann-1", title="t").number
    site.rest("bob").approve_merge_request(number)
    head = site.server.store.get_ref("main").head
    with pytest.raises(ChecksFailed) as failed:
        site.rest("bob").merge_merge_request(number)
    assert [(r["name"], r["status"]) for r in failed.value.reports] == [("few", "failed")]
    assert site.server.store.get_ref("main").head == head
    assert site.rest("bob").get_merge_request(number).status is MrStatus.OPEN


def test_rest_shapes_paging_and_bad_input(site: Site) -> None:
    api = site.api("ann")
    for i in range(3):
        assert api.post("/merge-requests", json={"source": "ann-1",
                                                 "title": f"t{i}"}).status_code == 201
    page = api.get("/merge-requests", params={"limit": 2}).json()
    assert [r["number"] for r in page["merge_requests"]] == [3, 2]
    assert page["next_before"] == 2
    rest = api.get("/merge-requests", params={"before": 2, "limit": 2}).json()
    assert [r["number"] for r in rest["merge_requests"]] == [1]
    assert rest["next_before"] is None
    bad = [api.post("/merge-requests", json={"source": "nope", "title": "x"}),
           api.post("/merge-requests", json={"source": "ann-1", "title": "  "}),
           api.post("/merge-requests", json={"source": "main", "title": "x"}),
           api.get("/merge-requests", params={"status": "weird"}),
           api.get("/merge-requests/0"), api.get("/merge-requests/99"),
           api.get(f"/merge-requests/{2**80}"),
           api.post("/merge-requests", json={"source": "ann-1", "title": "t" * 501}),
           api.post("/merge-requests", headers={"content-type": "application/json"},
                    content=b'{"source": "ann-1", "title": "x", "description": "\\ud800"}')]
    assert [r.status_code for r in bad] == [404, 400, 400, 400, 400, 404, 400, 413, 400]
    assert [r["number"] for r in api.get("/merge-requests").json()["merge_requests"]] == \
        [3, 2, 1]  # nothing stored by a refusal
    assert site.api("bob").post("/merge-requests/1/close").json()["status"] == "closed"
    again = site.api("bob").post("/merge-requests/1/close")
    assert (again.status_code, again.json()["error"]["type"]) == (409, "ConflictError")
    protected = site.api("dan").get("/protected-branches").json()
    assert protected == {"branches": ["main"], "required_approvals": {"main": 2}}
    assert site.api("ann").post("/branches/protect", json={
        "name": "main", "require_approvals": 1}).status_code == 403


def test_cli(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(who: str, *args: str) -> tuple[int, Any]:
        monkeypatch.setenv("LAKEVERSION_TOKEN", site.tokens[who])
        out = CliRunner().invoke(cli, ["--store", site.server.url, "-o", "json", *args])
        return out.exit_code, json.loads(out.output) if out.output.strip() else None

    assert run("root", "branch", "protect", "main", "--require-approvals", "1")[1][
        "require_approvals"] == 1
    code, opened = run("ann", "mr", "open", "ann-1", "--title", "add two")
    assert (code, opened["number"], opened["status"]) == (0, 1, "open")
    assert run("ann", "mr", "list")[1]["merge_requests"][0]["title"] == "add two"
    code, refused = run("bob", "mr", "merge", "1")
    assert (code, refused["error"]["type"]) == (1, "ProtectedBranch")
    assert run("bob", "mr", "approve", "1")[1]["approved"] is True
    code, merged = run("bob", "mr", "merge", "1")
    assert code == 0 and merged["new_head"]
    assert run("dan", "mr", "show", "1")[1]["status"] == "merged"
    assert run("dan", "mr", "close", "1")[0] == 6  # Forbidden


def test_a_revert_on_a_branch_needing_approvals_takes_a_merge_request(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A revert publishes a state nobody approved: refused on REST and the CLI (a dry run
    still answers), pointing to the merge request, which then lands it."""
    store = site.server.store
    head = store.get_ref("main").head
    with pytest.raises(ProtectedBranch, match="a revert publishes one.*mr open"):
        site.rest("root").revert(head, "main")
    dry = site.rest("bob").revert(head, "main", dry_run=True)
    assert dry.dry_run and dry.successful and dry.new_head is None
    monkeypatch.setenv("LAKEVERSION_TOKEN", site.tokens["root"])
    out = CliRunner().invoke(cli, ["--store", site.server.url, "-o", "json", "revert", head,
                                   "--on", "main"])
    assert (out.exit_code, json.loads(out.output)["error"]["type"]) == (1, "ProtectedBranch")
    assert "lakeversion mr open NAME --into main" in json.loads(out.output)["error"]["message"]
    assert store.get_ref("main").head == head and [r.operation for r in store.audit(
        None, "root", 100)][-1:] == ["revert"]
    # the road it points to: revert on a branch, a merge request, two approvals, the merge
    ann = site.rest("ann")
    ann.create_ref("ann-undo", from_ref="main")
    ann.revert(head, "ann-undo")
    number = ann.open_merge_request("ann-undo", title="undo v1").number
    site.rest("bob").approve_merge_request(number)
    site.rest("cy").approve_merge_request(number)
    merged = site.rest("cy").merge_merge_request(number)
    assert merged.new_head == store.get_ref("main").head != head
    assert store.list_keys("main") and store.diff(f"{head}~1", "main") == []
    # without the requirement, the revert goes through the gate directly
    site.rest("root").protect_branch("main", require_approvals=0)
    site.append("ann-undo", [5])
    assert site.rest("root").revert(merged.new_head, "main").new_head


def test_a_plan_only_dry_run_records_nothing_and_needs_dry_run(site: Site) -> None:
    """What a UI page view asks for: the plan (over REST too), with no audit record, no
    check run and no preview; `plan_only` alone (a merge skipping its checks) is 400."""
    root = site.rest("root")
    root.add_check(CheckSpec("main", "few", CheckKind.SQL,
                             "SELECT * FROM preview.db.t WHERE id > 1"))
    store = site.server.store
    before = (store.audit(None, None, 1000), store.check_runs(None, 1000))
    planned = site.rest("dan").merge("ann-1", "main", dry_run=True, plan_only=True)
    assert planned.dry_run and planned.successful and planned.checks == ()
    assert [str(d.key) for d in planned.details] == ["db.t"] and planned.preview is None
    assert (store.audit(None, None, 1000), store.check_runs(None, 1000)) == before
    refused = site.api("root").post("/merge", json={"source": "ann-1", "plan_only": True})
    assert refused.status_code == 400 and "set dry_run too" in refused.json()["error"][
        "message"]
    with pytest.raises(ChecksFailed):  # the full dry run runs the check, recorded
        site.rest("dan").merge("ann-1", "main", dry_run=True)
    assert len(store.check_runs(None, 1000)) == len(before[1]) + 1
    assert [(r.principal, r.operation) for r in store.audit(None, None, 1000)][-1] == \
        ("dan", "merge")
