"""What an engine outside the server (Spark) hands back for a row merge is a client's word
(issue 23, "Scale"; `rows.merge_plan`): every guard holds against it. The plan issues a
staging directory; results naming files elsewhere, files outside the merge's region, an
issued-looking directory the server never issued the shape of, stale commits, or files gc
may already have collected are refused with a typed error, nothing is written and no file
is deleted. The happy path and the same-results proof run on Spark
(tests/spark/test_row_merge_spark_engine.py). The lake: `db.k` keyed, ids 0..19 in 4 files.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.io.pyarrow import schema_to_pyarrow

from tests.lake import ServerLake
from tests.rows.helpers import KEYED_ICEBERG, team_reader_server, update


def merging(lake: ServerLake) -> dict[str, Any]:
    """main and dev updated different ids of one data file; the row merge's plan."""
    lake.store.create_ref("dev")
    update(lake, "main", "db.k", 1, "main")
    update(lake, "dev", "db.k", 2, "dev")
    answer = httpx.post(f"{lake.server.url}/api/v1/merge", json={
        "source": "dev", "target": "main", "dry_run": True, "plan_only": True,
        "plan_rows": True})
    assert answer.status_code == 200, answer.text
    [detail] = answer.json()["details"]
    plan = detail["statistics"]["row_merge"]["plan"]
    assert plan["dialect"] == "spark" and plan["table"] == "db.k"
    return dict(plan)


def local(location: str) -> Path:
    return Path(location.removeprefix("file://"))


def staged_file(plan: dict[str, Any], name: str = "part-0.parquet") -> str:
    """A well-formed data file (field ids, the table's schema) under the plan's staging."""
    directory = local(plan["write"]["staging"])
    directory.mkdir(parents=True, exist_ok=True)
    rows = pa.table({"id": [2], "v": ["dev"]},
                    schema=schema_to_pyarrow(KEYED_ICEBERG, include_field_ids=True))
    pq.write_table(rows, directory / name)
    return f"{plan['write']['staging']}/{name}"


def results(plan: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"db.k": {"commits": plan["commits"], "staging": plan["write"]["staging"],
                     "removed": [], "written": [], **fields}}


def merge_with(lake: ServerLake, row_results: dict[str, Any], **body: Any) -> httpx.Response:
    return httpx.post(f"{lake.server.url}/api/v1/merge", json={
        "source": "dev", "target": "main", "row_results": row_results, **body})


def files(lake: ServerLake) -> set[Path]:
    return {p for p in Path(lake.warehouse).rglob("*") if p.is_file()}


def refused(lake: ServerLake, answer: httpx.Response, status: int, code: str,
            message: str, head: str, before: set[Path]) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and message in error["message"], error
    assert lake.head() == head  # nothing merged
    assert files(lake) == before  # nothing written, nothing deleted


def test_the_plan_names_files_and_a_fresh_staging_directory(lake: ServerLake) -> None:
    before = files(lake)
    plan = merging(lake)
    again = httpx.post(f"{lake.server.url}/api/v1/merge", json={
        "source": "dev", "target": "main", "dry_run": True, "plan_only": True,
        "plan_rows": True}).json()["details"][0]["statistics"]["row_merge"]["plan"]
    assert plan["write"]["staging"] != again["write"]["staging"]
    assert os.path.basename(plan["write"]["staging"]).startswith("lv-rowmerge-")
    assert {s["view"].rsplit("_", 2)[-2] for s in plan["scans"]} == {"base", "tnew", "snew"}
    assert all(s["namespace"][0].startswith("db@") for s in plan["scans"])
    # planning wrote nothing but the two sides' own commits
    assert not local(plan["write"]["staging"]).exists()
    assert before <= files(lake)


def test_a_file_outside_the_staging_directory_is_refused(lake: ServerLake) -> None:
    plan = merging(lake)
    outside = local(plan["write"]["staging"]).parent / "elsewhere.parquet"
    shutil.copy(local(staged_file(plan)), outside)
    head, before = lake.head(), files(lake)
    answer = merge_with(lake, results(plan, written=[f"file://{outside}"]))
    refused(lake, answer, 400, "LOCATION_NOT_ALLOWED", "elsewhere.parquet", head, before)


@pytest.mark.parametrize("staging", ["lv-rowmerge-xyz", "../lv-rowmerge-" + "a" * 32,
                                     "lv-rowmerge-" + "a" * 32 + "/deeper"])
def test_a_staging_directory_the_server_never_issues_is_refused(lake: ServerLake,
                                                               staging: str) -> None:
    plan = merging(lake)
    staged = staged_file(plan)
    root = plan["write"]["staging"].rsplit("/", 1)[0]
    head, before = lake.head(), files(lake)
    answer = merge_with(lake, results(plan, staging=f"{root}/{staging}", written=[staged]))
    refused(lake, answer, 400, "INVALID_INPUT", "not the one the plan issued", head, before)


def test_a_file_to_replace_outside_the_region_is_refused(lake: ServerLake) -> None:
    plan = merging(lake)
    region = {f for s in plan["scans"] for f in s["files"]}
    table = lake.catalog("main").load_table("db.k")
    others = sorted(t.file.file_path for t in table.scan().plan_files()
                    if t.file.file_path not in region)
    assert others  # files of ids neither side touched
    head, before = lake.head(), files(lake)
    answer = merge_with(lake, results(plan, removed=[others[0]], written=[]))
    refused(lake, answer, 400, "INVALID_INPUT", "not the target's files of this merge's region",
            head, before)


def test_results_of_an_older_plan_are_not_merged(lake: ServerLake) -> None:
    plan = merging(lake)
    staged = staged_file(plan)
    update(lake, "main", "db.k", 9, "later")  # the target moved after the plan
    head, before = lake.head(), files(lake)
    answer = merge_with(lake, results(plan, written=[staged]))
    refused(lake, answer, 409, "CONFLICT", "conflict", head, before)
    conflict = answer.json()["error"]["result"]["details"][0]["statistics"]["row_merge"]
    assert "plan the row merge again" in conflict["not_merged"]
    # pinned to the planned head, the same results are a reference conflict
    answer = merge_with(lake, results(plan, written=[staged]),
                        expected_target_head=plan["commits"]["target"])
    refused(lake, answer, 409, "REFERENCE_CONFLICT", "expected head", head, before)


def test_files_gc_may_have_collected_are_refused(lake: ServerLake) -> None:
    plan = merging(lake)
    staged = staged_file(plan)
    hour_ago = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(local(staged), (hour_ago, hour_ago))
    now = datetime.now(UTC)
    lake.store.begin_gc(now - timedelta(hours=1), now - timedelta(days=7))
    head, before = lake.head(), files(lake)
    answer = merge_with(lake, results(plan, written=[staged]))
    refused(lake, answer, 409, "CONFLICT", "gc may already have collected", head, before)


@pytest.mark.parametrize(("body", "message"), [
    ({"row_results": {"db.k": {"commits": {}}}}, "commits must name"),
    ({"row_results": {"db.k": {"commits": {"base": "a", "target": "b", "source": "c"},
                               "written": ["x.parquet"]}}}, "need the plan's staging"),
    ({"row_results": {"db.k": {"commits": {"base": "a", "target": "b", "source": "c"},
                               "conflict_count": -1}}}, "conflict_count"),
    ({"row_results": {"db.k": []}}, "must be an object"),
    ({"row_results": {"db.k": {"commits": {"base": "a", "target": "b", "source": "c"}}},
      "dry_run": True}, "not a dry run"),
    ({"plan_rows": True, "dry_run": True}, "set dry_run and plan_only"),
], ids=["commits", "staging", "count", "shape", "dry-run", "plan-rows"])
def test_bad_row_results_are_typed_400s(lake: ServerLake, body: dict[str, Any],
                                        message: str) -> None:
    lake.store.create_ref("dev")
    update(lake, "dev", "db.k", 2, "dev")
    head, before = lake.head(), files(lake)
    answer = httpx.post(f"{lake.server.url}/api/v1/merge",
                        json={"source": "dev", "target": "main", **body})
    refused(lake, answer, 400, "INVALID_INPUT", message, head, before)


def test_planning_reads_both_refs_and_taking_results_back_is_a_merge(tmp_path: Path) -> None:
    """The plan names files of both refs: `read` on both; results are a merge: `merge` on
    the target. Refusals name no file."""
    from spark_lakeversion.versioning.http import RestVersionStore

    with team_reader_server(tmp_path) as (server, tokens):
        root = RestVersionStore(server.url, tokens["root"])
        root.create_ref("team-2", from_ref="main")
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        plan_body = {"dry_run": True, "plan_only": True, "plan_rows": True}
        answer = httpx.post(f"{server.api_url}/merge", headers=viewer, json={
            "source": "team-1", "target": "main", **plan_body})
        assert answer.status_code == 403 and ".parquet" not in answer.text
        answer = httpx.post(f"{server.api_url}/merge", headers=viewer, json={
            "source": "team-1", "target": "team-2", **plan_body})
        assert answer.status_code == 200, answer.text
        head = root.get_ref("team-2").head
        answer = httpx.post(f"{server.api_url}/merge", headers=viewer, json={
            "source": "team-1", "target": "team-2", "row_results": {"db.k": {
                "commits": {"base": "a", "target": "b", "source": "c"}}}})
        assert answer.status_code == 403 and ".parquet" not in answer.text
        assert root.get_ref("team-2").head == head
