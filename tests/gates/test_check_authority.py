"""Checks run with least authority (issue 20, reproduction 3 and the check-runs leak).

A principal with `admin` on `team-*` only may add checks to `team-1`; its checks read only
the merge's preview, target and source (never another ref, a server file, a URL or the
engine's settings), call only Python the operator installed or allowed, post only to
allowed hosts; and check runs are shown only to who may read both target and source.
Each refusal is typed and changes nothing: refs, checks, the warehouse's bytes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from spark_lakeversion.checks import sql
from spark_lakeversion.checks.sql_rules import check_sql
from spark_lakeversion.cli.main import cli
from spark_lakeversion.model import CheckKind, CheckSpec, ContentType
from spark_lakeversion.versioning.http import RestVersionStore
from tests.gates.helpers import TeamLake

SECRET = "s3cr3t-row"

#: a check's SQL reaching past its three relations: {placeholders} are the site's paths
REACHING = {
    "other ref, spelled out": 'SELECT * FROM preview."db@secret".secret_t',
    "other ref, short": 'SELECT * FROM "db@secret".secret_t',
    "time travel": "SELECT * FROM db.t AT (VERSION => 1)",
    "another catalog": "SELECT * FROM memory.main.t",
    "engine settings": "SELECT * FROM duckdb_settings()",
    "current_setting": "SELECT current_setting('allowed_directories') AS s",
    "read_text file": "SELECT * FROM read_text('/etc/hostname')",
    "glob warehouse": "SELECT * FROM glob('{warehouse}/**/*.metadata.json')",
    "read_blob store": "SELECT * FROM read_blob('{store}')",
    "iceberg_scan": "SELECT * FROM iceberg_scan('{secret_metadata}')",
    "replacement scan": "SELECT * FROM '{secret_metadata}'",
    "read_text http": "SELECT * FROM read_text('{http}/leak')",
    "ATTACH": "ATTACH '{tmp}/x.duckdb' AS x",
    "INSTALL": "INSTALL spatial",
    "LOAD": "LOAD delta",
    "SET": "SET threads = 1",
    "PRAGMA": "PRAGMA threads = 1",
    "COPY": "COPY (SELECT * FROM db.t) TO '{tmp}/out.csv'",
}


def spec_of(site: TeamLake, template: str) -> str:
    return template.format(warehouse=site.warehouse, store=site.store_file,
                           secret_metadata=site.secret_metadata(), http=site.http.url[:-5],
                           tmp=site.root)


def nothing_escaped(site: TeamLake, answer: httpx.Response) -> None:
    """Nothing of the secret ref, the host or a URL reached the answer, and no file was
    written outside the store."""
    assert SECRET not in answer.text
    assert Path("/etc/hostname").read_text().strip() not in answer.text
    assert "LEAKED" not in answer.text
    assert site.http.hits == []
    assert not (site.root / "out.csv").exists() and not (site.root / "x.duckdb").exists()


@pytest.mark.parametrize("what", list(REACHING))
def test_reaching_check_is_refused_when_added(team_lake: TeamLake, what: str) -> None:
    site = team_lake
    refs, files = site.refs(), site.listing()
    answer = site.api("team").post("/checks", json={
        "branch": "team-1", "name": "reach", "kind": "sql", "spec": spec_of(site, REACHING[what])})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "INVALID_INPUT"
    assert site.server.store.list_checks("team-1") == []
    assert site.refs() == refs and site.listing() == files
    nothing_escaped(site, answer)


@pytest.mark.parametrize("what", list(REACHING))
def test_reaching_check_stored_earlier_never_reads_when_run(team_lake: TeamLake,
                                                           what: str) -> None:
    site = team_lake
    site.server.store.storage.add_check(
        CheckSpec("team-1", "reach", CheckKind.SQL, spec_of(site, REACHING[what])))
    refs = site.refs()
    answer = site.api("team").post("/merge", json={"source": "team-1-dev", "target": "team-1",
                                                   "dry_run": True})
    assert answer.status_code == 412, answer.text
    [report] = answer.json()["error"]["reports"]
    assert report["status"] == "error" and report["samples"] == []
    assert report["violations"] is None
    assert site.refs() == refs
    nothing_escaped(site, answer)


#: what DuckDB itself refuses once confined, the check rules aside
CONFINED = [t for k, t in REACHING.items() if k in {
    "read_text file", "glob warehouse", "read_blob store", "iceberg_scan", "replacement scan",
    "read_text http", "ATTACH", "INSTALL", "LOAD", "SET", "PRAGMA", "COPY"}] + [
    "SET lock_configuration = false", "RESET enable_external_access",
    "SET allowed_directories = ['/']", "SELECT * FROM glob('{warehouse}/db/t_*/**')"]


@pytest.mark.parametrize("statement", CONFINED)
def test_duckdb_is_confined_to_the_three_states(team_lake: TeamLake, statement: str) -> None:
    """The wall behind the rules: a database set up for a check cannot read a file, a URL
    or another table, nor change its settings, whatever SQL reaches it."""
    import duckdb

    site = team_lake
    tables = {k: c for k, c in site.server.store.list_keys("team-1")
              if c.type is not ContentType.NAMESPACE}
    con = sql.connect()
    try:
        sql.confine(con, {"preview": tables, "target": tables, "source": tables}, {}, "db")
        assert con.execute("SELECT count(*) FROM t").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM target.db.t").fetchone() == (3,)
        with pytest.raises(duckdb.Error, match="disabled (by|through) configuration|"
                                               "configuration has been locked"):
            con.execute(spec_of(site, statement)).fetchall()
    finally:
        con.close()
    assert site.http.hits == []
    assert not (site.root / "out.csv").exists() and not (site.root / "x.duckdb").exists()


#: what a `changes.`-only check's bare database answers each reaching statement with
CHANGES_ONLY = {**{t.replace("FROM db.t", "FROM changes.db.t"):
                   "disabled (by|through) configuration|configuration has been locked"
                   for t in CONFINED if t != REACHING["iceberg_scan"]},
                REACHING["iceberg_scan"]: 'Function with name "?iceberg_scan"? is not in '
                                          "the catalog",
                **{t: "does not exist" for t in (
                    "SELECT * FROM t", "SELECT * FROM preview.db.t",
                    "SELECT * FROM target.db.t", "SELECT * FROM source.db.t",
                    REACHING["other ref, spelled out"], REACHING["other ref, short"])}}


@pytest.mark.parametrize("statement", list(CHANGES_ONLY))
def test_a_changes_only_check_database_is_as_confined(team_lake: TeamLake,
                                                      statement: str) -> None:
    """A check that reads only `changes.` gets a bare database (no extension, no view of a
    state): it reads its row diff, and still no file, URL, table function, table of a
    state or another ref, nor a setting, whatever SQL reaches it."""
    import duckdb

    site = team_lake
    store = site.server.store
    target, dev = store.get_ref("team-1").head, store.get_ref("team-1-dev").head
    context = store.check_context(dev, "team-1-dev", dev, "team-1", target,
                                  tuple(store.diff("team-1", "team-1-dev")))
    names = check_sql("SELECT * FROM changes.db.t WHERE v IS NULL")
    assert sql.reads_only_changes(names)
    con = sql.open_check_database(context, names)
    try:
        assert con.execute("SELECT change, id, v FROM changes.db.t").fetchall() == [
            ("insert", 4, "d")]
        with pytest.raises(duckdb.Error, match=CHANGES_ONLY[statement]):
            con.execute(spec_of(site, statement)).fetchall()
    finally:
        con.close()
    assert site.http.hits == []
    assert not (site.root / "out.csv").exists() and not (site.root / "x.duckdb").exists()


@pytest.mark.parametrize("target", ["sys:exit", "os:system", "builtins.exec",
                                    "tests.gates.conftest:team_lake"])
def test_python_check_must_be_installed_or_allowed(team_lake: TeamLake, target: str) -> None:
    site = team_lake
    answer = site.api("team").post("/checks", json={
        "branch": "team-1", "name": "py", "kind": "python", "spec": target})
    assert answer.status_code == 400, answer.text
    assert "is not allowed" in answer.json()["error"]["message"]
    assert site.server.store.list_checks("team-1") == []
    # stored before the rule: refused again when it runs, the merge answering 412
    site.server.store.storage.add_check(CheckSpec("team-1", "py", CheckKind.PYTHON, target))
    answer = site.api("team").post("/merge", json={"source": "team-1-dev", "target": "team-1",
                                                   "dry_run": True})
    assert answer.status_code == 412, answer.text
    [report] = answer.json()["error"]["reports"]
    assert report["status"] == "error" and "is not allowed" in report["message"]


@pytest.mark.parametrize(("function", "message"), [
    ("exits", "SystemExit: 3"), ("interrupts", "KeyboardInterrupt"),
    ("raises_base", "BaseException: a check raising BaseException")])
def test_a_check_raising_anything_is_its_error_report(team_lake: TeamLake, function: str,
                                                      message: str) -> None:
    site = team_lake
    api = site.api("team")
    assert api.post("/checks", json={"branch": "team-1", "name": "py", "kind": "python",
                                     "spec": f"tests.gates.helpers:{function}"}
                    ).status_code == 201
    head = site.server.store.get_ref("team-1").head
    answer = api.post("/merge", json={"source": "team-1-dev", "target": "team-1"})
    assert answer.status_code == 412, answer.text
    [report] = answer.json()["error"]["reports"]
    assert report["status"] == "error" and report["message"] == message
    assert site.server.store.get_ref("team-1").head == head
    assert api.get("/refs").status_code == 200  # the server lives on


@pytest.mark.parametrize("kind", ["webhook", "notify"])
@pytest.mark.parametrize("url", ["{http}/hook", "http://localhost:{port}/hook",
                                 "http://169.254.169.254/latest/meta-data/",
                                 "http://10.1.2.3/hook", "http://[::1]:{port}/hook",
                                 "http://0.0.0.0:{port}/hook",
                                 "http://[::ffff:127.0.0.1]:{port}/hook"])
def test_webhook_to_a_private_host_is_refused(team_lake: TeamLake, kind: str,
                                              url: str) -> None:
    site = team_lake
    target = url.format(http=site.http.url[:-5], port=site.http.url.rsplit(":", 1)[1][:-5])
    answer = site.api("team").post("/checks", json={
        "branch": "team-1", "name": "hook", "kind": kind, "spec": target})
    assert answer.status_code == 400, answer.text
    assert "--webhook-allow" in answer.json()["error"]["message"]
    assert site.server.store.list_checks("team-1") == []
    if kind == "webhook":  # stored before the rule: an error report, nothing posted
        site.server.store.storage.add_check(CheckSpec("team-1", "hook", CheckKind.WEBHOOK,
                                                      target))
        answer = site.api("team").post("/merge", json={
            "source": "team-1-dev", "target": "team-1", "dry_run": True})
        assert answer.status_code == 412, answer.text
        [report] = answer.json()["error"]["reports"]
        assert report["status"] == "error" and "--webhook-allow" in report["message"]
    assert site.http.hits == []


# ---- check runs: shown only to who may read the target and the source ---------------
def test_check_runs_need_read_on_target_and_source(team_lake: TeamLake) -> None:
    site = team_lake
    root = site.api("root")
    assert root.post("/checks", json={"branch": "team-1", "name": "sample", "kind": "sql",
                                      "spec": "SELECT id, v FROM db.secret_t UNION ALL "
                                              "SELECT id, v FROM db.t WHERE id > 3"}
                     ).status_code == 201
    for source in ("secret", "team-1-dev"):  # root may merge both: two runs, both sampled
        answer = root.post("/merge", json={"source": source, "target": "team-1",
                                           "dry_run": True})
        assert answer.status_code == 412, answer.text
    assert SECRET in root.get("/check-runs", params={"branch": "team-1"}).text
    for who in ("viewer", "team"):  # read on team-*, not on secret
        for params in ({"branch": "team-1"}, {}):
            answer = site.api(who).get("/check-runs", params=params)
            assert answer.status_code == 200
            runs = answer.json()["runs"]
            assert [r["source"] for r in runs] == ["team-1-dev"], runs
            assert SECRET not in answer.text
    # the Python client and the CLI over HTTP see the same
    client = RestVersionStore(site.server.url, token=site.tokens["viewer"])
    try:
        assert [r.source for r in client.check_runs("team-1")] == ["team-1-dev"]
    finally:
        client.close()
    result = CliRunner().invoke(cli, ["--store", site.server.url, "--output", "json", "check",
                                      "runs", "--on", "team-1"],
                                env={"LAKEVERSION_TOKEN": site.tokens["viewer"]})
    assert result.exit_code == 0, result.output
    assert [r["source"] for r in json.loads(result.stdout)["runs"]] == ["team-1-dev"]
    assert SECRET not in result.output


def test_sys_exit_allowed_by_the_operator_is_an_error_report(tmp_path: Path) -> None:
    """Even `sys:exit`, on a server whose operator allowed module `sys`: the check's report,
    a 412, and the server answers on."""
    from spark_lakeversion.server.embedded import start_embedded_server
    from tests.lake import ServerLake

    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"), check_modules=["sys"]) as srv:
        lake = ServerLake(srv, tmp_path / "wh")
        lake.create("db.t", [1])
        api = httpx.Client(base_url=srv.api_url)
        assert api.post("/checks", json={"branch": "main", "name": "bye", "kind": "python",
                                         "spec": "sys:exit"}).status_code == 201
        srv.store.create_ref("dev")
        lake.append("dev", "db.t", [2])
        head = lake.head()
        answer = api.post("/merge", json={"source": "dev", "target": "main"})
        assert answer.status_code == 412, answer.text
        [report] = answer.json()["error"]["reports"]
        assert report["status"] == "error" and report["message"].startswith("SystemExit: ")
        assert lake.head() == head and api.get("/refs").status_code == 200
