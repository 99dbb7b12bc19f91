"""The `lakeversion` CLI: outputs, JSON shapes, exit codes, and that failures write nothing.

Commands run through click's CliRunner against a SQLite file and PostgreSQL (the store
must outlive one invocation), and a few through the installed `.venv/bin/lakeversion`.
Tables are seeded with the Python API: the CLI itself only moves refs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import spark_lakeversion as lv
from spark_lakeversion.cli.main import LakeVersionGroup, cli
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.model import Content, ContentType, Key, Put
from tests.cli.helpers import run, run_json
from tests.helpers import make_store_url

LAKEVERSION = Path(sys.executable).parent / "lakeversion"


def table(table_id: str, version: int) -> Content:
    return Content(DELTA_TABLE, table_id,
                   {"location": f"file:///lake/{table_id}", "version": version})


@pytest.fixture(params=["sqlite-file", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store with main holding db (namespace), db.orders v1 and db.customers v1."""
    store_url = make_store_url(request.param, tmp_path)
    with lv.connect(store_url) as catalog, catalog.branch("main").transaction("seed") as tx:
        tx.put("db", Content(ContentType.NAMESPACE, "ns-db", {"properties": {}}))
        tx.put("db.orders", table("orders", 1))
        tx.put("db.customers", table("customers", 1))
    return store_url


def snapshot(url: str) -> tuple[list[tuple[str, str, str]], dict[str, list[str]]]:
    """Every ref and every ref's log: equal snapshots mean nothing was written."""
    with lv.connect(url) as catalog:
        refs = sorted((r.name, r.type.value, r.head) for r in catalog.store.list_refs())
        return refs, {name: [c.id for c in catalog.ref(name).log()] for name, _, _ in refs}


def commit(url: str, branch: str, key: str, content: Content, message: str) -> str:
    with lv.connect(url) as catalog:
        return catalog.branch(branch).commit([Put(Key.of(key), content)], message=message).id


def assert_error(data: Any, type_: str, code: str) -> dict[str, Any]:
    assert set(data) == {"error"}
    error = data["error"]
    assert (error["type"], error["code"]) == (type_, code)
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


# ---- refs ------------------------------------------------------------------------------


def test_branch_create_list_delete(url: str) -> None:
    main_head = snapshot(url)[0][0][2]
    created = run(url, "branch", "create", "dev")
    assert created.stdout.strip() == f"created branch dev at {main_head[:12]} (from main)"
    assert run_json(url, "branch", "create", "feature/x", "--from", "dev") == {
        "name": "feature/x", "type": "BRANCH", "head": main_head}
    listed = run_json(url, "branch", "list")
    assert listed == {"refs": [{"name": n, "type": "BRANCH", "head": main_head,
                                "protected": False}
                               for n in ("dev", "feature/x", "main")]}
    text = run(url, "branch", "list").stdout.splitlines()
    assert [line.split()[0] for line in text] == ["dev", "feature/x", "main"]
    assert run_json(url, "branch", "delete", "dev") == {
        "deleted": True, "name": "dev", "type": "BRANCH", "head": main_head}
    assert "deleted branch feature/x" in run(url, "branch", "delete", "feature/x").stdout
    assert [r[0] for r in snapshot(url)[0]] == ["main"]


def test_tag_create_list_delete(url: str) -> None:
    first = snapshot(url)[0][0][2]
    commit(url, "main", "db.orders", table("orders", 2), "v2")
    assert run_json(url, "tag", "create", "v1", "--from", "main~1")["head"] == first
    assert run_json(url, "tag", "list") == {"refs": [{"name": "v1", "type": "TAG",
                                                      "head": first}]}
    # a tag is not a branch: deleting it as one is "not found" and keeps it
    assert_error(run_json(url, "branch", "delete", "v1", code=2), "RefNotFound",
                 "REF_NOT_FOUND")
    assert run_json(url, "tag", "delete", "v1")["deleted"] is True
    assert run_json(url, "tag", "list") == {"refs": []}


@pytest.mark.parametrize("command", [
    ["branch", "create", "bad name"],
    ["branch", "create", "HEAD"],
    ["branch", "create", "x..y"],
    ["branch", "create", "-x"],
    ["tag", "create", "v1~2"],
    ["tag", "create", "a:b"],
])
def test_bad_names_exit_1_and_write_nothing(url: str, command: list[str]) -> None:
    before = snapshot(url)
    # `--` keeps click from reading a leading '-' as an option
    error = assert_error(run_json(url, *command[:2], "--", *command[2:], code=1),
                         "InvalidName", "INVALID_NAME")
    assert "invalid ref name" in error["message"]
    assert snapshot(url) == before
    text = run(url, *command[:2], "--", *command[2:], code=1)
    assert text.stdout == "" and text.stderr.startswith("error: invalid ref name")


@pytest.mark.parametrize("command", [
    ["branch", "create", "dev", "--from", "main~x"],
    ["tag", "create", "v1", "--from", "main#yesterday"],
    ["show", "main~"],
    ["log", "a b"],
    ["diff", "main", "~1"],
    ["merge", "main#", "--into", "main"],
    ["rollback", "db.orders", "--to", "main~-1"],
])
def test_bad_ref_expressions_exit_1_and_write_nothing(url: str, command: list[str]) -> None:
    before = snapshot(url)
    assert_error(run_json(url, *command, code=1), "InvalidRefExpression",
                 "INVALID_REF_EXPRESSION")
    assert snapshot(url) == before


@pytest.mark.parametrize("command, type_, code", [
    (["branch", "create", "dev", "--from", "nope"], "RefNotFound", "REF_NOT_FOUND"),
    (["branch", "delete", "nope"], "RefNotFound", "REF_NOT_FOUND"),
    (["show", "nope"], "RefNotFound", "REF_NOT_FOUND"),
    (["log", "main~50"], "RefNotFound", "REF_NOT_FOUND"),
    (["diff", "main", "nope"], "RefNotFound", "REF_NOT_FOUND"),
    (["merge", "nope"], "RefNotFound", "REF_NOT_FOUND"),
    (["revert", "deadbeefdeadbeef"], "CommitNotFound", "COMMIT_NOT_FOUND"),
    (["reset", "nope", "--to", "main"], "RefNotFound", "REF_NOT_FOUND"),
    (["rollback", "db.never", "--to", "main"], "KeyNotFound", "KEY_NOT_FOUND"),
    (["rollback", "db.orders", "--to", "main", "--on", "nope"], "RefNotFound",
     "REF_NOT_FOUND"),
])
def test_unknown_things_exit_2_and_write_nothing(url: str, command: list[str], type_: str,
                                                 code: str) -> None:
    before = snapshot(url)
    assert_error(run_json(url, *command, code=2), type_, code)
    assert snapshot(url) == before


def test_existing_names_and_writes_to_tags_exit_1(url: str) -> None:
    run(url, "branch", "create", "dev")
    run(url, "tag", "create", "v1")
    before = snapshot(url)
    assert_error(run_json(url, "branch", "create", "dev", code=1), "AlreadyExists",
                 "ALREADY_EXISTS")
    assert_error(run_json(url, "tag", "create", "dev", code=1), "AlreadyExists",
                 "ALREADY_EXISTS")
    assert_error(run_json(url, "merge", "dev", "--into", "v1", code=1), "ReadOnlyRef",
                 "READ_ONLY_REF")
    assert_error(run_json(url, "reset", "v1", "--to", "main", code=1), "ReadOnlyRef",
                 "READ_ONLY_REF")
    assert_error(run_json(url, "rollback", "db.orders", "--to", "main", "--on", "v1",
                          code=1), "ReadOnlyRef", "READ_ONLY_REF")
    assert_error(run_json(url, "branch", "delete", "main", code=1), "InvalidInput",
                 "INVALID_INPUT")
    assert snapshot(url) == before


# ---- reading ---------------------------------------------------------------------------


def test_show_lists_tables_and_their_states(url: str) -> None:
    data = run_json(url, "show", "main")
    head = snapshot(url)[0][0][2]
    assert data["ref"] == {"expression": "main", "commit_id": head, "branch": "main",
                           "writable": True}
    assert data["commit"]["id"] == head and data["commit"]["message"] == "seed"
    assert data["entries"] == [
        {"key": "db", "elements": ["db"],
         "content": {"type": "NAMESPACE", "id": "ns-db", "properties": {}}},
        {"key": "db.customers", "elements": ["db", "customers"],
         "content": {"type": "DELTA_TABLE", "id": "customers",
                     "location": "file:///lake/customers", "version": 1}},
        {"key": "db.orders", "elements": ["db", "orders"],
         "content": {"type": "DELTA_TABLE", "id": "orders",
                     "location": "file:///lake/orders", "version": 1}},
    ]
    text = run(url, "show").stdout.splitlines()
    assert text[0] == f"main -> {head[:12]} (branch main): seed"
    assert text[2].split()[:2] == ["db.customers", "DELTA_TABLE"]
    assert "version=1" in text[3]
    commit(url, "main", "db.orders", table("orders", 2), "v2")
    old = run_json(url, "show", "main~1", "--prefix", "db")
    assert old["ref"]["branch"] is None and old["ref"]["writable"] is False
    assert [e["content"]["version"] for e in old["entries"]] == [1, 1]
    assert "(read-only)" in run(url, "show", "main~1").stdout


def test_log_filters_and_limits(url: str) -> None:
    for version in (2, 3):
        commit(url, "main", "db.orders", table("orders", version), f"orders v{version}")
    commit(url, "main", "db.customers", table("customers", 2), "customers v2")
    data = run_json(url, "log")
    assert data["ref"] == "main"
    assert [c["message"] for c in data["commits"]] == [
        "customers v2", "orders v3", "orders v2", "seed", "initial commit"]
    assert set(data["commits"][0]) == {"id", "parents", "author", "message", "timestamp",
                                       "properties"}
    assert data["commits"][0]["parents"] == [data["commits"][1]["id"]]
    assert [c["message"] for c in run_json(url, "log", "-n", "2")["commits"]] == [
        "customers v2", "orders v3"]
    assert [c["message"] for c in run_json(url, "log", "main", "--table", "db.orders")[
        "commits"]] == ["orders v3", "orders v2", "seed"]
    lines = run(url, "log", "main~1", "-n", "1").stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith("orders v3")
    assert lines[0].split()[0] == data["commits"][1]["id"][:12]


def test_diff_shows_added_removed_changed(url: str) -> None:
    run(url, "branch", "create", "dev")
    with lv.connect(url) as catalog:
        catalog.branch("dev").commit([
            Put(Key.of("db.orders"), table("orders", 2)),
            Put(Key.of("db.returns"), table("returns", 1)),
        ], message="dev")
    data = run_json(url, "diff", "main", "dev")
    assert data["from"] == "main" and data["to"] == "dev"
    by_key = {d["key"]: d for d in data["diffs"]}
    assert by_key["db.returns"]["kind"] == "ADDED" and by_key["db.returns"]["from"] is None
    assert by_key["db.orders"]["kind"] == "CHANGED"
    assert by_key["db.orders"]["from"]["version"] == 1
    assert by_key["db.orders"]["to"]["version"] == 2
    assert by_key["db.orders"]["elements"] == ["db", "orders"]
    text = run(url, "diff", "main", "dev").stdout.splitlines()
    assert "~ db.orders  version: 1 -> 2" in text
    assert any(line.startswith("+ db.returns  DELTA_TABLE") for line in text)
    assert run(url, "diff", "dev", "main").stdout.splitlines()[-1].startswith("- db.returns")
    assert run(url, "diff", "main", "main").stdout.strip() == "no differences"


# ---- merging and friends ---------------------------------------------------------------


def diverge(url: str) -> None:
    """dev and main both change db.orders; dev also adds db.returns."""
    run(url, "branch", "create", "dev")
    with lv.connect(url) as catalog:
        catalog.branch("dev").commit([Put(Key.of("db.orders"), table("orders", 2)),
                                      Put(Key.of("db.returns"), table("returns", 1))],
                                     message="dev")
        catalog.branch("main").commit([Put(Key.of("db.orders"), table("orders", 3))],
                                      message="main")


def test_merge_conflict_exits_3_with_conflicts_and_writes_nothing(url: str) -> None:
    diverge(url)
    before = snapshot(url)
    error = assert_error(run_json(url, "merge", "dev", code=3), "ConflictError", "CONFLICT")
    assert error["conflicts"] == [{"key": "db.orders", "type": "VALUE_DIFFERS",
                                   "message": error["conflicts"][0]["message"]}]
    assert error["result"]["new_head"] is None and error["result"]["successful"] is False
    assert error["result"]["target"] == "main"
    text = run(url, "merge", "dev", "--into", "main", code=3)
    assert text.stdout == ""
    assert "1 conflict(s):" in text.stderr
    assert "VALUE_DIFFERS" in text.stderr and "db.orders" in text.stderr
    dry = assert_error(run_json(url, "merge", "dev", "--dry-run", code=3), "ConflictError",
                       "CONFLICT")
    assert dry["result"]["dry_run"] is True and dry["conflicts"][0]["key"] == "db.orders"
    assert snapshot(url) == before


def test_merge_dry_run_then_resolved_by_strategy(url: str) -> None:
    diverge(url)
    before = snapshot(url)
    preview = run_json(url, "merge", "dev", "--dry-run", "--strategy", "source-wins")
    assert preview["dry_run"] is True and preview["successful"] is True
    assert preview["new_head"] is None and preview["conflicts"] == []
    assert snapshot(url) == before
    assert "nothing was written" in run(url, "merge", "dev", "--dry-run", "--table-strategy",
                                        "db.orders=target-wins").stdout
    merged = run_json(url, "merge", "dev", "--table-strategy", "db.orders=source-wins",
                      "-m", "take dev's orders")
    assert set(merged) == {"source", "target", "common_ancestor", "target_head_before",
                           "new_head", "fast_forward", "dry_run", "successful", "details",
                           "conflicts", "stats"}
    assert merged["stats"] == {"files_rewritten": 0, "rows_rewritten": 0, "bytes_written": 0}
    assert merged["successful"] is True and merged["fast_forward"] is False
    assert {d["key"]: (d["action"], d["behavior"]) for d in merged["details"]} == {
        "db.orders": ("APPLIED", "FORCE"), "db.returns": ("APPLIED", "NORMAL")}
    head = run_json(url, "show")
    assert head["commit"]["message"] == "take dev's orders"
    assert head["commit"]["id"] == merged["new_head"]
    assert [e["content"].get("version") for e in head["entries"]] == [None, 1, 2, 1]


def test_merge_fast_forward_and_no_ff(url: str) -> None:
    run(url, "branch", "create", "a")
    run(url, "branch", "create", "b")
    a_head = commit(url, "a", "db.a", table("a", 1), "a")
    b_head = commit(url, "b", "db.b", table("b", 1), "b")
    ff = run(url, "merge", "a")
    assert "(fast-forward)" in ff.stdout and a_head[:12] in ff.stdout
    merged = run_json(url, "merge", "b", "--no-ff")
    assert merged["fast_forward"] is False
    assert run_json(url, "log", "-n", "1")["commits"][0]["parents"] == [a_head, b_head]
    assert "already up to date" in run(url, "merge", "b").stdout


def test_bad_strategies_and_table_strategies_exit_1(url: str) -> None:
    diverge(url)
    before = snapshot(url)
    assert_error(run_json(url, "merge", "dev", "--strategy", "ours", code=1), "UsageError",
                 "USAGE")
    assert_error(run_json(url, "merge", "dev", "--table-strategy", "db.orders", code=1),
                 "InvalidInput", "INVALID_INPUT")
    assert_error(run_json(url, "merge", "dev", "--table-strategy", "db.orders=ours", code=1),
                 "InvalidInput", "INVALID_INPUT")
    assert snapshot(url) == before


def test_revert_reset_rollback(url: str) -> None:
    run(url, "tag", "create", "v1")
    bad = commit(url, "main", "db.orders", table("orders", 9), "bad")
    commit(url, "main", "db.customers", table("customers", 2), "good")
    before = snapshot(url)
    preview = run_json(url, "revert", bad[:12], "--dry-run")
    assert preview["dry_run"] is True and snapshot(url) == before
    reverted = run_json(url, "revert", bad, "--on", "main")
    assert reverted["successful"] is True and reverted["new_head"] is not None
    assert [e["content"].get("version") for e in run_json(url, "show")["entries"]] == [
        None, 2, 1]

    run(url, "branch", "create", "dev")
    dev_before = snapshot(url)[0][0][2]
    reset = run_json(url, "reset", "dev", "--to", "v1")
    assert reset == {"name": "dev", "type": "BRANCH", "head": snapshot(url)[0][2][2],
                     "previous_head": dev_before}
    assert run(url, "reset", "dev", "--to", "main").stdout.startswith("reset dev: ")

    commit(url, "main", "db.orders", table("orders", 10), "another bad write")
    rolled = run_json(url, "rollback", "db.orders", "--to", "v1", "-m", "restore orders")
    assert rolled["message"] == "restore orders"
    shown = run_json(url, "show")
    assert shown["commit"]["id"] == rolled["id"]
    assert [e["content"].get("version") for e in shown["entries"]] == [None, 2, 1]
    text = run(url, "rollback", "db.customers", "--to", "v1", "--on", "dev").stdout
    assert text.startswith("rolled back db.customers on dev to its state at v1: commit ")


# ---- usage, lazy commands, demo, real processes ----------------------------------------


@pytest.mark.parametrize("args", [
    ["merge"],
    ["no-such-command"],
    ["log", "-n", "-1"],
    ["branch", "create", "x", "--bogus"],
    ["reset", "main"],
])
def test_usage_errors_exit_1(tmp_path: Path, args: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    text = CliRunner().invoke(cli, ["--store", url, *args])
    assert text.exit_code == 1
    assert "error:" in text.stderr and "Traceback" not in text.output
    data = CliRunner().invoke(cli, ["--store", url, "--output", "json", *args])
    assert data.exit_code == 1 and data.stderr == ""
    assert_error(json.loads(data.stdout), "UsageError", "USAGE")
    assert not (tmp_path / "store.db").exists()  # usage errors never open the store


def test_help_lists_every_command_without_importing_lazy_ones() -> None:
    code = ("import sys\n"
            "from spark_lakeversion.cli.main import cli\n"
            "cli.main(['--help'], standalone_mode=False)\n"
            "print('LOADED', sorted(m for m in sys.modules if m.startswith("
            "('spark_lakeversion.cli.serve', 'spark_lakeversion.cli.submit', "
            "'spark_lakeversion.cli.gc', 'fastapi', 'pyspark'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    for name in ("branch", "tag", "show", "log", "diff", "merge", "revert", "reset",
                 "rollback", "demo", "bench", "serve", "spark-submit", "gc"):
        assert f"\n  {name} " in out
    assert out.strip().splitlines()[-1] == "LOADED []"


def test_a_missing_lazy_command_fails_only_when_used() -> None:
    @click.command()
    def hello() -> None:
        click.echo("hi")

    group = LakeVersionGroup("test", lazy_commands={
        "ghost": ("spark_lakeversion.no_such_module:command", "A command not written yet.")})
    group.add_command(hello)
    helped = CliRunner().invoke(group, ["--help"])
    assert helped.exit_code == 0 and "A command not written yet." in helped.stdout
    assert CliRunner().invoke(group, ["hello"]).stdout == "hi\n"
    used = CliRunner().invoke(group, ["ghost", "--flag", "x"])
    assert used.exit_code == 1
    assert "command 'ghost' is not available" in used.stderr
    assert "spark_lakeversion.no_such_module" in used.stderr


def test_bench_group_lists_its_benchmarks() -> None:
    out = CliRunner().invoke(cli, ["bench", "--help"])
    assert out.exit_code == 0
    for name in ("store", "rest", "spark", "gc", "merge"):
        assert f"  {name} " in out.stdout
    store_help = CliRunner().invoke(cli, ["bench", "store", "--help"]).stdout
    assert "--backend [sqlite|postgres]" in store_help and "--json" in store_help
    assert CliRunner().invoke(cli, ["bench", "store", "--backend", "mysql"]).exit_code == 1


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Kernel error" not in out and "(unexpected)" not in out
    for line in ("== 1. main starts", "== 4. two branches change the same rows",
                 "ROW_CONFLICT on sales.orders: 1 key(s) of sales.orders changed "
                 "differently on both sides, e.g. {'id': 2}", "main still at",
                 ": nothing was written",
                 "merged fix-orders into main", "rolled back to main~1",
                 "sales.orders on main: (1, 'book', 12.0), (2, 'lamp', 33.0), "
                 "(3, 'desk', 150.0)",
                 "sales.orders on v1: (1, 'book', 12.0), (2, 'lamp', 30.0)",
                 "-- only commits that changed sales.orders:"):
        assert line in out
    data = json.loads(CliRunner().invoke(cli, ["-o", "json", "demo"]).stdout)
    assert set(data) == {"store", "narrative"}
    assert "== 7. history of main, and of sales.orders alone" in data["narrative"]
    assert not Path(data["store"].removeprefix("sqlite:///")).exists()


def test_demo_keep_leaves_a_store_the_cli_can_read() -> None:
    data = json.loads(CliRunner().invoke(cli, ["-o", "json", "demo", "--keep"]).stdout)
    store = data["store"]
    try:
        assert "The demo store is kept" in data["narrative"][-1]
        names = [r["name"] for r in run_json(store, "branch", "list")["refs"]]
        assert names == ["etl", "fix-orders", "main"]
        assert run_json(store, "log", "-n", "1")["commits"][0]["message"].startswith(
            "Roll back sales.orders")
    finally:
        Path(store.removeprefix("sqlite:///")).unlink()


def test_the_installed_console_script(tmp_path: Path) -> None:
    assert LAKEVERSION.exists(), "run `make setup` to install the console script"
    env = {**os.environ, "LAKEVERSION_STORE": f"sqlite:///{tmp_path / 'store.db'}"}

    def lakeversion(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(LAKEVERSION), *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120)

    created = lakeversion("--output", "json", "branch", "create", "dev")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["name"] == "dev"
    listed = lakeversion("branch", "list")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["dev", "main"]
    missing = lakeversion("show", "nope")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("error: no branch, tag or commit named 'nope'")
    conflict_free = lakeversion("merge", "dev", "--dry-run")
    assert conflict_free.returncode == 0 and "dry run" in conflict_free.stdout
    bad_store = lakeversion("--store", "mysql://x/y", "branch", "list")
    assert bad_store.returncode == 1
    assert "unsupported store URL" in bad_store.stderr
    assert "Traceback" not in bad_store.stderr + missing.stderr
    usage = lakeversion("branch")
    assert usage.returncode == 0 and usage.stdout.startswith("Usage: lakeversion branch")
    assert "create" in usage.stdout
    assert not (tmp_path / "lakehouse").exists()  # LAKEVERSION_STORE was used
