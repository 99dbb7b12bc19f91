"""The examples in README run as users run them (own process, own SparkSession), under
the network guard of tests/examples (no call outside loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.examples.helpers import run_example as _run


@pytest.mark.slow
def test_quickstart_tells_the_whole_story(tmp_path: Path) -> None:
    home = tmp_path / "elsewhere"
    out = _run("quickstart.py", tmp_path, env={"LAKEVERSION_HOME": str(home)})
    for expected in ("== 1. Create db.orders on main", "== 2. CREATE BRANCH dev",
                     "2   lamp  33.0    cancelled", "ROW_CONFLICT",
                     "a real merge is refused: ConflictError", "REPLAYED",
                     "3   desk  165.0   shipped",
                     "ROLLBACK TABLE", "== 8. SHOW LOG", "Roll back db.orders"):
        assert expected in out, expected
    assert (home / "quickstart" / "store.db").is_file()  # it honours LAKEVERSION_HOME
    assert not (tmp_path / "lakehouse").exists()


@pytest.mark.slow
def test_write_audit_publish(tmp_path: Path) -> None:
    out = _run("write_audit_publish.py", tmp_path)
    assert "published db.payments" in out and "audit failed on" in out
    assert "payments_valid: 2 violation(s)" in out
    main_rows = out.split("main now:")[1].split()
    assert main_rows[:6] == ["1", "ada", "10.0", "2", "bob", "25.5"] and len(main_rows) == 6


def test_store_walkthrough(tmp_path: Path) -> None:
    out = _run("store_walkthrough.py", tmp_path)
    assert "ROW_CONFLICT on sales.orders" in out  # a real Delta conflict, by rows


def test_views_on_branches(tmp_path: Path) -> None:
    out = _run("views_on_branches.py", tmp_path)
    assert "dev: [('db', 'v')]  main: []" in out
    assert "main: [('db', 'v')] -> SELECT 1 AS id" in out
    assert "merge refused: VALUE_DIFFERS view db.v was changed on both sides" in out
    assert "'SELECT 3 AS id'" in out and "'SELECT 2 AS id'" in out
    assert "with FORCE, main has dev's version: SELECT 2 AS id" in out
    assert "views of db: ['page0', 'page1', 'page2', 'page3', 'page4', 'v']" in out
