"""`lakeversion branch protect|unprotect`, `check add|list|remove|runs`, and a refused
merge exiting 5 with its reports (SQLite file and PostgreSQL stores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import spark_lakeversion as lv
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.model import Content
from tests.cli import helpers
from tests.cli.helpers import run
from tests.helpers import make_store_url

PASS = "tests.cli.test_gates_cli:passes"
FAIL = "tests.cli.test_gates_cli:fails"


def passes(ctx: Any) -> bool:
    return True


def fails(ctx: Any) -> tuple[bool, str]:
    return False, f"preview {ctx.preview[:8]} rejected"


def table(version: int) -> Content:
    return Content(DELTA_TABLE, "orders",
                   {"location": "file:///lake/orders", "version": version})


@pytest.fixture(params=["sqlite-file", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> str:
    # the CLI over a database runs checks itself: this module is its allowed check module
    monkeypatch.setenv("LAKEVERSION_CHECK_MODULES", "tests.cli.test_gates_cli")
    store_url = make_store_url(request.param, tmp_path)
    with lv.connect(store_url) as catalog:
        with catalog.branch("main").transaction("seed") as tx:
            tx.put("db.orders", table(1))
        catalog.branch("dev").create()
        with catalog.branch("dev").transaction("change") as tx:
            tx.put("db.orders", table(2))
    return store_url


def run_json(url: str, *args: str, code: int = 0) -> Any:
    return helpers.run_json(url, *args, code=code, quiet=False)


def test_protect_list_and_refuse(url: str) -> None:
    assert run_json(url, "branch", "protect", "main")["changed"] is True
    listed = {r["name"]: r["protected"] for r in run_json(url, "branch", "list")["refs"]}
    assert listed == {"main": True, "dev": False}
    assert "[protected]" in run(url, "branch", "list").stdout
    head = run_json(url, "branch", "list")["refs"]
    error = run_json(url, "reset", "main", "--to", "dev", code=1)["error"]
    assert error["code"] == "PROTECTED_BRANCH"
    assert run_json(url, "branch", "list")["refs"] == head
    # forced, it rolls main back, but only to a state published on it (first parents)
    error = run_json(url, "reset", "main", "--to", "dev", "--force", code=1)["error"]
    assert error["code"] == "PROTECTED_BRANCH" and "first-parent history" in error["message"]
    assert run_json(url, "branch", "list")["refs"] == head
    run(url, "reset", "main", "--to", "main~1", "--force")
    run(url, "branch", "unprotect", "main")
    assert "[protected]" not in run(url, "branch", "list").stdout
    assert {r["name"]: r["protected"] for r in run_json(url, "branch", "list")["refs"]} \
        == {"main": False, "dev": False}


def test_check_lifecycle_and_failed_merge_exits_5(url: str) -> None:
    added = run_json(url, "check", "add", "gate", "--on", "main", "--python", FAIL,
                     "--tables", "db.orders", "--timeout", "30s")
    assert added == {"branch": "main", "name": "gate", "kind": "python", "spec": FAIL,
                     "tables": ["db.orders"], "timeout_s": 30.0}
    assert run_json(url, "check", "list", "--on", "main")["checks"] == [added]
    with lv.connect(url) as catalog:
        head = catalog.branch("main").get_ref().head
    result = run(url, "merge", "dev", code=5)
    assert "FAILED   gate" in result.stderr and "rejected" in result.stderr
    error = run_json(url, "merge", "dev", code=5)["error"]
    assert error["code"] == "CHECKS_FAILED" and error["reports"][0]["status"] == "failed"
    with lv.connect(url) as catalog:
        assert catalog.branch("main").get_ref().head == head
    runs = run_json(url, "check", "runs", "--on", "main", "-n", "1")["runs"]
    assert len(runs) == 1 and runs[0]["name"] == "gate" and runs[0]["status"] == "failed"
    run(url, "check", "remove", "gate", "--on", "main")
    assert run_json(url, "check", "remove", "gate", "--on", "main", code=2)["error"]["code"] \
        == "NOT_FOUND"
    run(url, "check", "add", "gate", "--on", "main", "--python", PASS)
    merged = run(url, "merge", "dev")
    assert "PASSED   gate" in merged.stdout


def test_check_add_needs_exactly_one_kind(url: str) -> None:
    assert run_json(url, "check", "add", "x", "--on", "main", code=1)["error"]["code"] \
        == "INVALID_INPUT"
    run_json(url, "check", "add", "x", "--on", "main", "--sql", "SELECT 1", "--python", PASS,
             code=1)
    run_json(url, "check", "add", "x", "--on", "main", "--sql", "SELECT 1", "--timeout",
             "soon", code=1)
    assert run_json(url, "check", "list")["checks"] == []


def test_protected_merge_commit_and_previous_heads(url: str) -> None:
    """A merge into protected main is a merge commit (it says so); `main@{1}` names the
    head before it, for a table rollback and a forced (admin) reset."""
    run(url, "branch", "protect", "main")
    with lv.connect(url) as catalog:
        before = catalog.branch("main").get_ref().head
        dev = catalog.branch("dev").get_ref().head
    merged = run_json(url, "merge", "dev")
    assert merged["fast_forward"] is False
    assert merged["no_ff_reason"].startswith("'main' is protected: a merge into it always")
    with lv.connect(url) as catalog:
        merge = catalog.branch("main").head
        assert merge.parents == (before, dev)
        assert merge.properties["lakeversion.checks"] == "none"
        with catalog.branch("dev").transaction("again") as tx:
            tx.put("db.orders", table(3))
    assert "merge commit: 'main' is protected" in run(url, "merge", "dev").stdout
    shown = run_json(url, "show", "main@{1}")["ref"]
    assert shown == {"expression": "main@{1}", "commit_id": merge.id, "branch": None,
                     "writable": False}
    assert run_json(url, "show", "main@{9}", code=2)["error"]["code"] == "REF_NOT_FOUND"
    assert run_json(url, "show", "main@{x}", code=1)["error"]["code"] \
        == "INVALID_REF_EXPRESSION"
    rolled = run_json(url, "rollback", "db.orders", "--to", "main@{1}")
    assert rolled["properties"]["lakeversion.recovery"] == "rollback"
    assert rolled["properties"]["lakeversion.rollback.to-commit"] == merge.id
    with lv.connect(url) as catalog:
        assert catalog.ref("main").table("db.orders").fields["version"] == 2
        head = catalog.branch("main").get_ref().head
    error = run_json(url, "reset", "main", "--to", "main@{2}", code=1)["error"]
    assert error["code"] == "PROTECTED_BRANCH"  # without --force
    reset = run_json(url, "reset", "main", "--to", "main@{2}", "--force")
    assert reset["previous_head"] == head and reset["head"] == merge.id
