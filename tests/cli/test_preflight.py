"""Pre-flight of `lakeversion spark-submit` and `lakeversion run`: an unreachable server, a
missing branch or a refused token is one line with a typed exit code, and Spark is never
started (a fake `$SPARK_HOME/bin/spark-submit` records whether it was)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from spark_lakeversion.api import connect
from spark_lakeversion.cli.main import cli
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.helpers import fake_spark_home

UNREACHABLE = "http://127.0.0.1:1"


@pytest.fixture
def spark_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = fake_spark_home(tmp_path)
    monkeypatch.setenv("SPARK_HOME", str(home))
    monkeypatch.delenv("LAKEVERSION_TOKEN", raising=False)
    return home


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    srv = start_embedded_server(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "wh"))
    yield srv
    srv.stop()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A server that checks a token."""
    srv = start_embedded_server(f"sqlite:///{tmp_path / 'g.db'}", str(tmp_path / "gwh"),
                                token="right-token")
    yield srv
    srv.stop()


def lv(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def started(home: Path) -> list[str] | None:
    """spark-submit's arguments, or None if it never ran."""
    file = home / "started"
    return file.read_text().splitlines() if file.exists() else None


def one_error_line(result: Result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_unreachable_server_is_one_line_and_spark_never_starts(spark_home: Path) -> None:
    result = lv("spark-submit", "--server", UNREACHABLE, "--branch", "dev", "--", "job.py")
    assert result.exit_code == 4  # server errors
    line = one_error_line(result)
    assert line.startswith(f"error: cannot reach the lakeversion server at {UNREACHABLE}")
    assert started(spark_home) is None
    # the same through the root --store, and for `lakeversion run`
    via_store = lv("--store", UNREACHABLE, "spark-submit", "--", "job.py")
    assert via_store.exit_code == 4 and UNREACHABLE in one_error_line(via_store)
    run = lv("--store", UNREACHABLE, "run", "--", "spark-submit", "job.py")
    assert run.exit_code == 4 and UNREACHABLE in one_error_line(run)
    assert started(spark_home) is None


def test_missing_branch_is_refused_or_created(spark_home: Path,
                                             server: EmbeddedServer) -> None:
    catalog = connect(server.url)
    result = lv("spark-submit", "--server", server.url, "--branch", "dev", "--", "job.py")
    assert result.exit_code == 2  # not found
    assert one_error_line(result) == (
        f"error: branch 'dev' does not exist in {server.url}: create it first "
        f"(lakeversion --store {server.url} branch create dev) or pass --create-branch")
    assert started(spark_home) is None
    assert [b.name for b in catalog.branches()] == ["main"]

    catalog.branch("base").create()
    created = lv("spark-submit", "--server", server.url, "--branch", "dev",
                 "--create-branch", "--from", "base", "--", "job.py", "7")
    assert created.exit_code == 0, created.output
    assert catalog.branch("dev").head.id == catalog.branch("base").head.id
    args = started(spark_home)
    assert args is not None and args[-2:] == ["job.py", "7"]
    assert "spark.log.level=WARN" in args  # Spark's log is WARN unless asked
    assert "spark.sql.catalog.lv.ref=dev" in args
    progress = created.stderr.splitlines()
    assert progress[0] == (f"lakeversion: branch dev at {catalog.branch('dev').head.id[:12]}"
                           f" in {server.url}")
    assert progress[1] == "lakeversion: job started: spark-submit job.py 7"
    assert progress[2].startswith("lakeversion: job finished: exit code 0 after ")


def test_spark_log_level_reaches_the_job(spark_home: Path, server: EmbeddedServer) -> None:
    result = lv("spark-submit", "--server", server.url, "--spark-log-level", "error",
                "--", "job.py")
    assert result.exit_code == 0, result.output
    assert "spark.log.level=ERROR" in (started(spark_home) or [])
    bad = lv("spark-submit", "--server", server.url, "--spark-log-level", "LOUD", "--",
             "job.py")
    assert bad.exit_code == 1 and "--spark-log-level" in bad.stderr


def test_refused_token_is_one_line_and_creates_nothing(spark_home: Path,
                                                     guarded: EmbeddedServer) -> None:
    result = lv("spark-submit", "--server", guarded.url, "--token", "wrong-token",
                "--branch", "dev", "--create-branch", "--", "job.py")
    assert result.exit_code == 1
    assert one_error_line(result) == (f"error: the lakeversion server at {guarded.url} "
                                      "refused the token (--token / LAKEVERSION_TOKEN)")
    assert started(spark_home) is None
    assert [r.name for r in guarded.store.list_refs()] == ["main"]
    run = lv("--store", guarded.url, "run", "--token", "wrong-token", "--",
             sys.executable, "-c", "pass")
    assert run.exit_code == 1 and "refused the token" in one_error_line(run)
    assert [r.name for r in guarded.store.list_refs()] == ["main"]
    # the right token passes
    ok = lv("spark-submit", "--server", guarded.url, "--token", "right-token", "--",
            "job.py")
    assert ok.exit_code == 0, ok.output
    assert started(spark_home) is not None


def test_run_on_a_missing_branch_creates_nothing(tmp_path: Path,
                                                 server: EmbeddedServer) -> None:
    marker = tmp_path / "job-ran"
    result = lv("--store", server.url, "run", "--on", "nosuch", "--",
                sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line == (f"error: branch 'nosuch' does not exist in {server.url}: create it "
                    f"first (lakeversion --store {server.url} branch create nosuch)")
    assert "kept" not in result.output
    assert not marker.exists()
    assert [r.name for r in server.store.list_refs()] == ["main"]


def test_the_docstring_command_on_a_fresh_local_store(spark_home: Path, tmp_path: Path) -> None:
    """`lakeversion spark-submit --branch dev -- job.py` on a fresh store (the embedded
    server): the branch is named, with the store the user gave, not a 'warehouse'."""
    store = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = lv("--store", store, "spark-submit", "--warehouse", str(tmp_path / "wh"),
                "--branch", "dev", "--", "job.py", "5")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        f"error: branch 'dev' does not exist in {store}: create it first "
        f"(lakeversion --store {store} branch create dev) or pass --create-branch")
    assert "warehouse" not in result.output
    assert started(spark_home) is None


def test_grants_hold_before_spark_starts(spark_home: Path, tmp_path: Path) -> None:
    """Pre-flight meets the grants: a principal that may read main but not create the
    branch is refused (exit 6) before Spark or the job starts, and nothing is created."""
    from spark_lakeversion.auth import load_auth_config
    from tests.server.access_helpers import write_auth_config

    config = tmp_path / "auth.toml"
    tokens = write_auth_config(config)
    srv = start_embedded_server(f"sqlite:///{tmp_path / 'a.db'}", str(tmp_path / "awh"),
                                auth=load_auth_config(config))
    try:
        analyst = tokens["analyst"]  # reads everything, creates only user/ann/*
        submit = lv("spark-submit", "--server", srv.url, "--token", analyst, "--branch",
                    "dev", "--create-branch", "--", "job.py")
        assert submit.exit_code == 6
        assert one_error_line(submit).startswith("error: access denied: ")
        marker = tmp_path / "job-ran"
        run = lv("--store", srv.url, "run", "--token", analyst, "--", sys.executable, "-c",
                 f"open({str(marker)!r}, 'w')")
        assert run.exit_code == 6
        assert one_error_line(run).startswith("error: access denied: ")
        assert not marker.exists() and started(spark_home) is None
        assert [r.name for r in srv.store.list_refs()] == ["main"]
        allowed = lv("spark-submit", "--server", srv.url, "--token", analyst, "--branch",
                     "user/ann/dev", "--create-branch", "--", "job.py")
        assert allowed.exit_code == 0, allowed.output
        assert started(spark_home) is not None
    finally:
        srv.stop()
