"""The row-level merge meets every guard (issue 23, section 2): bad input on REST and the
CLI, grants, protection and the gates' preview (checks see the row-merged state), gc's
fence for the files it rewrites, and the memory budget (tests/formats/*/test_row_merge.py).
The lake: a real server with keyed `db.k` (identifier field `id`, ids 0..19 in 4 files)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from click.testing import CliRunner

from spark_lakeversion.auth.config import parse_auth_config
from spark_lakeversion.cli.main import cli as cli_main
from spark_lakeversion.errors import ChecksFailed, Forbidden, GcEpochChanged
from spark_lakeversion.model import CheckKind, CheckSpec
from spark_lakeversion.versioning.access import AccessControlledStore
from tests.lake import ServerLake
from tests.rows.helpers import KEYED_ARROW, scan


def update(lake: ServerLake, ref: str, key: int, value: str) -> None:
    """A copy-on-write UPDATE of one row of `db.k` on `ref`, through pyiceberg."""
    table = lake.catalog(ref).load_table("db.k")
    table.delete(f"id = {key}")
    table.append(pa.table({"id": [key], "v": [value]}, schema=KEYED_ARROW))


def k_rows(lake: ServerLake, ref: str = "main") -> dict[int, str]:
    return {r["id"]: r["v"] for r in scan(lake, ref, "db.k")}


def clashing(lake: ServerLake) -> None:
    """main and dev changed the same cell of id 1 differently (and dev also id 2)."""
    lake.store.create_ref("dev")
    update(lake, "main", 1, "main")
    update(lake, "dev", 1, "dev")
    update(lake, "dev", 2, "dev")


def merging(lake: ServerLake) -> None:
    """main and dev updated different ids of one data file."""
    lake.store.create_ref("dev")
    update(lake, "main", 1, "main")
    update(lake, "dev", 2, "dev")


def expected(**changes: str) -> dict[int, str]:
    rows = {i: f"v{i}" for i in range(20)}
    rows.update({int(k[1:]): v for k, v in changes.items()})
    return rows


def test_rest_row_conflict_is_409_with_keys_and_values(lake: ServerLake) -> None:
    clashing(lake)
    head = lake.head()
    answer = httpx.post(f"{lake.server.url}/api/v1/merge",
                        json={"source": "dev", "target": "main"})
    assert answer.status_code == 409
    error = answer.json()["error"]
    [conflict] = error["conflicts"]
    assert conflict["type"] == "ROW_CONFLICT" and conflict["key"] == "db.k"
    assert conflict["details"]["count"] == 1
    assert conflict["details"]["keys"] == [{
        "key": {"id": 1}, "reason": "update/update", "columns": ["v"],
        "base": {"id": 1, "v": "v1"}, "target": {"id": 1, "v": "main"},
        "source": {"id": 1, "v": "dev"}}]
    assert lake.head() == head
    answer = httpx.post(f"{lake.server.url}/api/v1/merge", json={
        "source": "dev", "target": "main", "row_conflicts": "source-wins"})
    assert answer.status_code == 200, answer.text
    # main's file holding its id 1 and the rewritten file holding id 2
    assert answer.json()["stats"]["files_rewritten"] == 2
    assert k_rows(lake) == expected(k1="dev", k2="dev")


@pytest.mark.parametrize("value", ["ours", "", 7, ["source-wins"]])
def test_rest_bad_row_conflicts_is_400_and_writes_nothing(lake: ServerLake,
                                                          value: Any) -> None:
    clashing(lake)
    head, files = lake.head(), lake.metadata_files()
    answer = httpx.post(f"{lake.server.url}/api/v1/merge", json={
        "source": "dev", "target": "main", "row_conflicts": value})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "InvalidInput"
    assert lake.head() == head and lake.metadata_files() == files


def test_cli_reports_row_conflicts_and_settles_them(lake: ServerLake) -> None:
    clashing(lake)
    run = CliRunner()
    args = ["--store", lake.server.url, "merge", "dev"]
    bad = run.invoke(cli_main, [*args, "--row-conflicts", "mine"])
    assert bad.exit_code == 1 and "unknown row_conflicts 'mine'" in bad.output
    conflict = run.invoke(cli_main, args)
    assert conflict.exit_code == 3, conflict.output
    assert "ROW_CONFLICT" in conflict.output
    assert 'update/update {"id": 1}: base {"id": 1, "v": "v1"} target {"id": 1, "v": ' \
           '"main"} source {"id": 1, "v": "dev"}' in conflict.output
    as_json = run.invoke(cli_main, ["--store", lake.server.url, "-o", "json", "merge", "dev",
                                    "--row-conflicts", "target-wins", "--dry-run"])
    assert as_json.exit_code == 0, as_json.output
    # main's file of ids 0, 2, 3, 4 is written again, with dev's id 2
    assert json.loads(as_json.output)["stats"] == {"files_rewritten": 1, "rows_rewritten": 4,
                                                   "bytes_written": 0}
    done = run.invoke(cli_main, [*args, "--row-conflicts", "target-wins"])
    assert done.exit_code == 0, done.output
    assert "rows: 1 file(s) rewritten, 4 row(s) written" in done.output
    assert k_rows(lake) == expected(k1="main", k2="dev")


def test_grants_are_checked_before_anything_is_read_or_written(lake: ServerLake) -> None:
    merging(lake)
    config = parse_auth_config({"principal": [
        {"name": "analyst", "token_sha256": "2" * 64,
         "grants": [{"refs": "*", "allow": ["read"]}]}]})
    analyst = AccessControlledStore(lake.store, config.principals[0])
    head, files = lake.head(), lake.metadata_files()
    with pytest.raises(Forbidden):
        analyst.merge("dev", "main", row_conflicts="source-wins")
    assert lake.head() == head and lake.metadata_files() == files


def test_protected_target_merges_through_the_gate_and_checks_see_merged_rows(
        lake: ServerLake) -> None:
    merging(lake)
    lake.store.protect_branch("main")
    lake.store.add_check(CheckSpec("main", "no_dev_rows", CheckKind.SQL,
                                   "SELECT id FROM db.k WHERE v = 'dev'", (), 60.0))
    head = lake.head()
    with pytest.raises(ChecksFailed) as caught:
        lake.store.merge("dev", "main")
    [report] = caught.value.reports
    # the check read the preview, where the row merge put dev's id 2 beside main's id 1
    assert report["status"] == "failed" and report["samples"] == [{"id": 2}]
    assert lake.head() == head
    preview = caught.value.preview
    assert preview is not None
    assert {r["id"]: r["v"] for r in scan(lake, preview, "db.k")} == expected(
        k1="main", k2="dev")
    lake.store.remove_check("main", "no_dev_rows")
    result = lake.store.merge("dev", "main")
    assert result.preview is not None and result.stats["files_rewritten"] == 1
    assert k_rows(lake) == expected(k1="main", k2="dev")


def test_a_gc_run_begun_while_the_merge_wrote_refuses_it_and_its_files_go(
        lake: ServerLake, monkeypatch: pytest.MonkeyPatch) -> None:
    """gc's fence: a merge reads gc's epoch before its mergers write, and commits only
    under that epoch; a run begun in between refuses the merge, whose files are removed."""
    from spark_lakeversion.formats.iceberg.merge import plan

    merging(lake)
    head = lake.head()
    data = {p for p in Path(lake.warehouse).rglob("*.parquet")}
    metadata = lake.metadata_files()
    apply = plan.IcebergMergePlan.apply

    def apply_then_gc_begins(self: Any) -> Any:
        content = apply(self)
        now = datetime.now(UTC)
        lake.store.begin_gc(now - timedelta(hours=1), now - timedelta(days=7))
        return content

    monkeypatch.setattr(plan.IcebergMergePlan, "apply", apply_then_gc_begins)
    with pytest.raises(GcEpochChanged):
        lake.store.merge("dev", "main")
    assert lake.head() == head
    assert {p for p in Path(lake.warehouse).rglob("*.parquet")} == data
    assert lake.metadata_files() == metadata
    monkeypatch.undo()
    lake.store.merge("dev", "main")  # the next attempt, under the new epoch
    assert k_rows(lake) == expected(k1="main", k2="dev")


def test_gc_keeps_the_rewritten_files_and_the_ones_they_replaced(lake: ServerLake) -> None:
    from spark_lakeversion.gc.collect import collect_garbage

    merging(lake)
    lake.store.merge("dev", "main")
    before = {p for p in Path(lake.warehouse).rglob("*.parquet")}
    # two hours from now every file is past the grace period: only reachability keeps them
    collect_garbage(lake.store, roots=[str(lake.warehouse)], older_than=timedelta(hours=1),
                    now=datetime.now(UTC) + timedelta(hours=2))
    assert {p for p in Path(lake.warehouse).rglob("*.parquet")} == before
    assert k_rows(lake) == expected(k1="main", k2="dev")
    assert k_rows(lake, "main~1") == expected(k1="main")  # the replaced files still read
