"""Check authoring (issue 25): a check is validated when it is added, on every surface (the
CLI, `/api/v1/checks`, Python): its SQL parses, names only the three relations and runs
once on the branch as it is (a table no ref has only with `--allow-missing`), a Python
check imports; `check test` runs one check on a merge preview without merging. Errors
show the user's SQL and DuckDB's message, never our wrapper."""

from __future__ import annotations

import json

import httpx
import pytest

import spark_lakeversion as lv
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import CheckKind, CheckSpec
from tests.cli.helpers import run
from tests.gates.helpers import TeamLake
from tests.lake import ServerLake

BROKEN = "SELEC * FRM t WHERE"


def cli(lake: ServerLake, *args: str, code: int = 0) -> dict[str, object]:
    return json.loads(run(lake.server.url, "--output", "json", *args, code=code).stdout)


def test_broken_sql_is_refused_on_every_surface(lake: ServerLake) -> None:
    head = lake.head()
    error = cli(lake, "check", "add", "broken", "--on", "main", "--sql", BROKEN,
                code=1)["error"]
    assert isinstance(error, dict) and error["code"] == "INVALID_INPUT"
    assert "syntax error" in str(error["message"]) and BROKEN in str(error["message"])
    answer = httpx.post(f"{lake.server.api_url}/checks", json={
        "branch": "main", "name": "broken", "kind": "sql", "spec": BROKEN})
    assert answer.status_code == 400 and BROKEN in answer.json()["error"]["message"]
    with lv.connect(lake.server.url) as catalog, pytest.raises(InvalidInput, match="syntax"):
        catalog.branch("main").add_check("broken", sql=BROKEN)
    for message in (str(error["message"]), answer.text):
        assert "__lakeversion" not in message
    assert lake.store.list_checks() == [] and lake.head() == head


def test_a_table_no_ref_has_needs_allow_missing(lake: ServerLake) -> None:
    typo = "SELECT id FROM db.tt WHERE id < 0"
    error = cli(lake, "check", "add", "typo", "--on", "main", "--sql", typo, code=1)["error"]
    assert isinstance(error, dict) and error["code"] == "INVALID_INPUT"
    assert "reads db.tt, which no ref has" in str(error["message"])
    assert "--allow-missing" in str(error["message"])
    assert lake.store.list_checks() == []
    added = cli(lake, "check", "add", "typo", "--on", "main", "--sql", typo,
                "--allow-missing")
    assert added["spec"] == typo


def test_a_table_on_another_ref_is_accepted(lake: ServerLake) -> None:
    """A check for a table a merge will bring: it exists on dev, not yet on main."""
    lake.store.create_ref("dev")
    dev = lake.catalog("dev")
    from tests.lake import ROWS_SCHEMA

    dev.create_table("db.fresh", schema=ROWS_SCHEMA)
    spec = lake.store.add_check(CheckSpec("main", "fresh", CheckKind.SQL,
                                          "SELECT id FROM db.fresh WHERE id < 0"))
    assert spec.name == "fresh"


def test_python_check_must_import(lake: ServerLake) -> None:
    with lv.connect(lake.server.url) as catalog:
        with pytest.raises(InvalidInput, match="has no function nope"):
            catalog.branch("main").add_check("py", python="tests.gates.helpers:nope")
        with pytest.raises(InvalidInput, match="cannot import tests.gates.helpers.gone"):
            catalog.branch("main").add_check("py", python="tests.gates.helpers.gone:f")
    assert lake.store.list_checks() == []


def test_check_test_runs_one_check_on_a_preview_without_merging(lake: ServerLake) -> None:
    lake.store.add_check(CheckSpec("main", "small_ids", CheckKind.SQL,
                                   "SELECT id FROM db.t WHERE id > 4"))
    lake.store.add_check(CheckSpec("main", "other", CheckKind.SQL,
                                   "SELECT id FROM db.t WHERE id IS NULL"))
    lake.store.create_ref("dev")
    lake.append("dev", "db.t", [5, 6])
    head, dev_head = lake.head(), lake.head("dev")
    passed = run(lake.server.url, "check", "test", "small_ids", "--on", "main")
    assert "PASSED   small_ids" in passed.stdout
    failed = run(lake.server.url, "check", "test", "small_ids", "--on", "main", "--source",
                 "dev", code=5)
    assert "FAILED   small_ids  violations=2" in failed.stdout
    assert '{"id": 5}' in failed.stdout and '{"id": 6}' in failed.stdout
    assert "other" not in failed.stdout  # one check only
    report = cli(lake, "check", "test", "small_ids", "--on", "main", "--source", "dev",
                 code=5)
    assert report["status"] == "failed" and report["violations"] == 2
    assert lake.head() == head and lake.head("dev") == dev_head  # nothing merged
    assert lake.store.check_runs("main") == []  # nor recorded
    assert lake.ids("main") == [1, 2, 3]
    error = cli(lake, "check", "test", "nope", "--on", "main", code=2)["error"]
    assert isinstance(error, dict) and error["code"] == "NOT_FOUND"


def test_check_test_needs_read_on_target_and_source(team_lake: TeamLake) -> None:
    site = team_lake
    site.server.store.add_check(CheckSpec("team-1", "peek", CheckKind.SQL,
                                          "SELECT id, v FROM db.secret_t"))
    viewer = site.api("viewer")
    denied = viewer.post("/checks/test", json={"branch": "team-1", "name": "peek",
                                               "source": "secret"})
    assert denied.status_code == 403 and "s3cr3t" not in denied.text
    answer = viewer.post("/checks/test", json={"branch": "team-1", "name": "peek",
                                               "source": "team-1-dev"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "error" and "secret_t" in answer.json()["message"]
