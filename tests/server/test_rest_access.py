"""Who may do what, on a real server with principals: the matrix of principals x
operations x surfaces (/api/v1 through the Python client, /iceberg through pyiceberg, the
CLI over HTTP), filtered listings, the audit trail, bearer-token hygiene and a grep of
every log line the server wrote for the tokens used."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from click.testing import CliRunner

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import Forbidden
from spark_lakeversion.model import CheckKind, CheckSpec, Content, ContentType, Put, RefType
from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.versioning.http import RestVersionStore
from tests.lake import ID_ARROW
from tests.server.access_helpers import (
    AuthedServer,
    Captured,
    catalog,
    client,
    write_auth_config,
)

ROWS = pa.table({"id": pa.array([1, 2], pa.int64())})
PRINCIPALS = ("admin", "etl", "analyst", "nobody")


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthedServer]:
    """One server for the whole module; every log record of the process is captured."""
    root = tmp_path_factory.mktemp("access")
    tokens = write_auth_config(root / "auth.toml")
    captured = Captured()
    loggers = [logging.getLogger(n) for n in ("", "spark_lakeversion", "uvicorn", "httpx")]
    levels = [lg.level for lg in loggers]
    logging.getLogger().addHandler(captured)
    for lg in loggers[1:]:
        lg.setLevel(logging.DEBUG)
    try:
        with start_embedded_server(f"sqlite:///{root / 'store.db'}",
                                   warehouse=str(root / "wh"),
                                   auth=load_auth_config(root / "auth.toml")) as srv:
            site = AuthedServer(srv, tokens, captured, root / "auth.toml")
            cat = catalog(site, "admin")
            cat.create_namespace("db")
            cat.create_table("db.t", schema=ID_ARROW).append(ROWS)
            srv.store.create_ref("etl-1")
            srv.store.create_ref("secret")
            yield site
    finally:
        logging.getLogger().removeHandler(captured)
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def fresh(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def ns() -> Content:
    return Content(ContentType.NAMESPACE, "ns", {"properties": {}})


# ---- /api/v1 through the Python client: principal x operation -----------------------
def _prepared_branch(site: AuthedServer, prefix: str) -> str:
    """A branch (made by the store itself) with one commit main does not have."""
    name = fresh(prefix)
    site.server.store.create_ref(name)
    site.server.store.commit(name, [Put((fresh("n"),), ns())], message="prepared")
    return name


def _protected_branch(site: AuthedServer, prefix: str) -> str:
    name = _prepared_branch(site, prefix)
    site.server.store.protect_branch(name)
    return name


OPERATIONS: dict[str, tuple[Callable[[AuthedServer, RestVersionStore], Any], set[str]]] = {
    "read main": (lambda site, s: s.log("main"), {"admin", "etl", "analyst"}),
    "read secret": (lambda site, s: s.list_keys("secret"), {"admin", "analyst"}),
    "write main": (lambda site, s: s.commit("main", [Put((fresh("n"),), ns())], message="m"),
                   {"admin"}),
    "write etl-1": (lambda site, s: s.commit("etl-1", [Put((fresh("n"),), ns())],
                                             message="m"), {"admin", "etl"}),
    "create etl-*": (lambda site, s: s.create_ref(fresh("etl-")), {"admin", "etl"}),
    "create user/ann/*": (lambda site, s: s.create_ref(fresh("user/ann/")),
                          {"admin", "analyst"}),
    "create main-like": (lambda site, s: s.create_ref(fresh("mainx")), {"admin"}),
    "tag rel-*": (lambda site, s: s.create_ref(fresh("rel-"), RefType.TAG), {"admin", "etl"}),
    "tag v*": (lambda site, s: s.create_ref(fresh("v"), RefType.TAG), {"admin"}),
    "delete etl-*": (lambda site, s: s.delete_ref(
        site.server.store.create_ref(fresh("etl-d")).name), {"admin", "etl"}),
    # unmerged commits: `force` needs `delete` only (a protected branch needs admin, below)
    "force-delete unmerged etl-*": (lambda site, s: s.delete_ref(
        _prepared_branch(site, "etl-u"), force=True), {"admin", "etl"}),
    "delete tag rel-*": (lambda site, s: s.delete_ref(
        site.server.store.create_ref(fresh("rel-"), RefType.TAG).name), {"admin", "etl"}),
    "merge into main": (lambda site, s: s.merge(_prepared_branch(site, "etl-m"), "main"),
                        {"admin", "etl"}),
    "gc": (lambda site, s: s.gc_on_server(older_than=__import__("datetime").timedelta(days=1),
                                          keep_commits_since=__import__(
                                              "datetime").timedelta(days=7), dry_run=False),
           {"admin"}),
    "audit": (lambda site, s: s.audit(), {"admin"}),
    # merge gates' settings and forced ref changes are admin operations
    "protect etl-*": (lambda site, s: s.protect_branch(_prepared_branch(site, "etl-p")),
                      {"admin"}),
    "add check on etl-*": (lambda site, s: s.add_check(CheckSpec(
        _prepared_branch(site, "etl-c"), "c", CheckKind.SQL, "SELECT 1 WHERE false")),
        {"admin"}),
    "force-delete protected etl-*": (lambda site, s: s.delete_ref(
        _protected_branch(site, "etl-f"), force=True), {"admin"}),
}


@pytest.mark.parametrize("who", PRINCIPALS)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_api_v1_matrix(authed: AuthedServer, who: str, operation: str) -> None:
    call, allowed = OPERATIONS[operation]
    store = client(authed, who)
    try:
        if who in allowed:
            call(authed, store)
            return
        before = authed.refs()
        settings = (authed.server.store.protected_branches(),
                    authed.server.store.list_checks())
        with pytest.raises(Forbidden) as err:
            call(authed, store)
        assert f"principal {who!r} lacks" in err.value.message
        # setup of the case (a prepared, maybe protected, branch) may add refs; none that
        # existed changed
        after = {r[0]: r for r in authed.refs()}
        made = set(after) - {r[0] for r in before}
        assert (authed.server.store.protected_branches() - made,
                authed.server.store.list_checks()) == settings
        assert all(after.get(r[0]) == r for r in before)
        assert set(after) - {r[0] for r in before} <= {
            n for n in after if n.startswith(("etl-d", "etl-m", "etl-p", "etl-c", "etl-f",
                                              "etl-u", "rel-"))}
    finally:
        store.close()


def test_403_body_on_both_apis_names_principal_permission_ref(authed: AuthedServer) -> None:
    before = authed.refs()
    r = httpx.post(authed.server.api_url + "/refs", json={"name": "dev"},
                   headers=authed.headers("etl"))
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["type"] == "Forbidden" and error["code"] == "FORBIDDEN"
    assert error["message"] == ("access denied: principal 'etl' lacks 'create' on ref 'dev' "
                                "(needed for create_ref)")
    r = httpx.post(authed.server.iceberg_uri + "/v1/main/namespaces",
                   json={"namespace": [fresh("x")]}, headers=authed.headers("analyst"))
    assert r.status_code == 403
    assert r.json()["error"]["type"] == "ForbiddenException"
    assert "principal 'analyst' lacks 'write' on ref 'main'" in r.json()["error"]["message"]
    assert authed.refs() == before


# ---- /iceberg through pyiceberg ----------------------------------------------------------
def metadata_files(authed: AuthedServer) -> set[Path]:
    return set((Path(authed.server.store.url.removeprefix("sqlite:///")).parent / "wh")
               .rglob("*.metadata.json"))


@pytest.mark.parametrize("who", ["admin", "etl", "analyst"])
def test_pyiceberg_matrix(authed: AuthedServer, who: str) -> None:
    from pyiceberg.exceptions import ForbiddenError

    cat = catalog(authed, who)
    assert cat.load_table("db.t").scan().to_arrow().num_rows >= 2
    before, files = authed.refs(), metadata_files(authed)
    if who == "admin":
        cat.load_table("db.t").append(ROWS)
        cat.create_namespace(fresh("x"))
        return
    with pytest.raises(ForbiddenError, match=f"principal '{who}' lacks 'write' on ref 'main'"):
        cat.load_table("db.t").append(ROWS)
    with pytest.raises(ForbiddenError, match=f"principal '{who}' lacks 'write' on ref 'main'"):
        cat.create_namespace(fresh("x"))
    assert authed.refs() == before
    assert metadata_files(authed) == files  # the server removed what it wrote


def test_pyiceberg_without_read_on_main_cannot_even_configure(authed: AuthedServer) -> None:
    from pyiceberg.exceptions import ForbiddenError

    with pytest.raises(ForbiddenError, match="principal 'nobody' lacks 'read' on ref 'main'"):
        catalog(authed, "nobody")


def test_pyiceberg_on_branches_follows_globs(authed: AuthedServer) -> None:
    from pyiceberg.exceptions import ForbiddenError

    etl_on_branch = catalog(authed, "etl", "etl-1")
    before = etl_on_branch.load_table("db.t").scan().to_arrow().num_rows
    etl_on_branch.load_table("db.t").append(ROWS)  # etl-* gives write
    assert etl_on_branch.load_table("db.t").scan().to_arrow().num_rows == before + 2
    assert authed.server.store.log("etl-1").commits[0].author == "etl"
    with pytest.raises(ForbiddenError, match="lacks 'read' on ref 'secret'"):
        catalog(authed, "etl", "secret")
    authed.server.store.commit("secret", [Put((fresh("n"),), ns())], message="only here")
    hidden = authed.server.store.get_ref("secret").head
    with pytest.raises(ForbiddenError, match=f"lacks 'read' on commit {hidden[:12]}"):
        catalog(authed, "etl").load_table(f"db@{hidden[:12]}.t")
    assert catalog(authed, "analyst").load_table(f"db@{hidden[:12]}.t") is not None


# ---- listings --------------------------------------------------------------------------
def test_listings_show_only_readable_refs(authed: AuthedServer) -> None:
    names = {who: {r["name"] for r in httpx.get(authed.server.api_url + "/refs",
                                                 headers=authed.headers(who)).json()["refs"]}
             for who in PRINCIPALS}
    every = {r[0] for r in authed.refs()}
    assert names["admin"] == names["analyst"] == every
    assert names["nobody"] == set()
    assert names["etl"] == {n for n in every if n == "main" or n.startswith(("etl-", "rel-"))}
    assert "secret" not in names["etl"]


# ---- the CLI over HTTP -------------------------------------------------------------------
def run(authed: AuthedServer, who: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--store", authed.server.url, *args],
                              env={"LAKEVERSION_TOKEN": authed.tokens[who]})


def test_cli_over_http(authed: AuthedServer) -> None:
    name = fresh("etl-cli")
    assert run(authed, "etl", "branch", "create", name).exit_code == 0
    assert run(authed, "etl", "log", "main", "-n", "1").exit_code == 0
    before = authed.refs()
    for who, args in (("etl", ("branch", "create", "dev")),
                      ("analyst", ("branch", "delete", name)),
                      ("analyst", ("merge", name, "--into", "main")),
                      ("etl", ("gc", "--older-than", "1d")),
                      ("etl", ("audit",)),
                      ("nobody", ("log", "main"))):
        result = run(authed, who, *args)
        assert result.exit_code == 6, (args, result.output)
        assert f"access denied: principal '{who}' lacks" in result.output
        assert authed.tokens[who] not in result.output
        assert authed.refs() == before
    assert run(authed, "etl", "branch", "delete", name).exit_code == 0
    unknown = run(authed, "nobody", "log", "main")
    assert unknown.exit_code == 6
    wrong = CliRunner().invoke(cli, ["--store", authed.server.url, "log", "main"],
                               env={"LAKEVERSION_TOKEN": "not-a-token"})
    assert wrong.exit_code == 1 and "unauthorized" in wrong.output
    assert "not-a-token" not in wrong.output


# ---- the audit trail ---------------------------------------------------------------------
def test_audit_records_allowed_and_denied_requests(authed: AuthedServer) -> None:
    name = fresh("etl-audit")
    etl = client(authed, "etl")
    etl.create_ref(name)
    with pytest.raises(Forbidden):
        etl.delete_ref("secret")
    etl.close()
    records = client(authed, "admin").audit(principal="etl")
    mine = [(r.operation, r.ref, r.outcome.value) for r in records if r.ref in (name, "secret")]
    assert mine[-2:] == [("create_ref", name, "done"), ("delete_ref", "secret", "denied")]
    cli_out = run(authed, "admin", "--output", "json", "audit", "--since", "1h",
                  "--principal", "etl")
    assert cli_out.exit_code == 0, cli_out.output
    assert '"outcome": "denied"' in cli_out.output
    r = httpx.get(authed.server.api_url + "/audit", params={"since": "bogus"},
                  headers=authed.headers("admin"))
    assert r.status_code == 400 and r.json()["error"]["type"] == "InvalidInput"
    text = str([rec.to_dict() for rec in client(authed, "admin").audit()])
    assert all(token not in text for token in authed.tokens.values())


# ---- bearer tokens ---------------------------------------------------------------------
def test_bearer_scheme_is_case_insensitive_and_bad_tokens_are_401(authed: AuthedServer
                                                                  ) -> None:
    token = authed.tokens["analyst"]
    for header in (f"bearer {token}", f"BEARER {token}", f"Bearer  {token}"):
        r = httpx.get(authed.server.api_url + "/refs", headers={"Authorization": header})
        assert r.status_code == 200, header
    for header in ("", "Bearer", f"Basic {token}", f"Bearer {token}x", token):
        r = httpx.get(authed.server.api_url + "/refs", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
        assert token not in r.text


def test_no_token_in_any_log_line(authed: AuthedServer) -> None:
    """Last in the module: everything above ran with these tokens (the spark and serve
    tests grep their own logs)."""
    assert authed.log.lines, "the capture saw no log line at all"
    text = "\n".join(authed.log.lines)
    for who, token in authed.tokens.items():
        assert token not in text, who
