"""Grants and protection as a property: a small reference model of README's rules
(*Access control*; *Merge gates*, **Protection**; `tests/auth/access_model.py`) lives in
the tests, never in the product. A Hypothesis state machine has principals with random
glob grants (a seeded pool in the server's auth config) do random operations on every
surface of one real loopback server: `/api/v1` over httpx, the Python API over HTTP, the
`lakeversion` CLI as a subprocess, and Iceberg REST through pyiceberg. After every step:

- the surface succeeded exactly when the model allows the operation;
- a refusal is the model's typed error (`Forbidden` naming the principal, permission and ref
  the model finds missing; `ProtectedBranch`; `RefNotFound`; `AlreadyExists`) with the
  surface's own status or exit code, and it changed nothing (every ref's head, protection);
- refs, their types and the protected set are the model's; a write moved only its own ref.

Not modelled: rollback and revert (their rule on protected branches is changing to "only
states on the branch's first-parent chain", issue 20), cherry-pick (which commits it may
pick without conflict is beyond a small model), writes aimed at tags, and merge gates'
checks (none are configured here).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, event, given, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from spark_lakeversion.api import Catalog
from spark_lakeversion.auth import Permission, load_auth_config
from spark_lakeversion.auth.config import parse_auth_config
from spark_lakeversion.errors import CODE_MARKER, ERRORS_BY_CODE, LakeVersionError
from spark_lakeversion.model import Content, ContentType, Key, Put
from spark_lakeversion.server.embedded import start_embedded_server
from tests.auth.access_model import (
    BRANCHES,
    PERMISSIONS,
    PRINCIPALS,
    TAGS,
    Grants,
    Model,
    Step,
    Verdict,
    commit_rule,
    create_rule,
    delete_rule,
    merge_rule,
    protect_rule,
    read_rule,
    reads,
    reset_rule,
)
from tests.server.access_helpers import AuthedServer, Captured, catalog, client, write_auth_config

LAKEVERSION = Path(sys.executable).parent / "lakeversion"
ROWS = pa.table({"id": pa.array([1, 2], pa.int64())})
State = tuple[dict[str, tuple[str, str]], set[str], set[Path]]


def toml_grants(grants: Grants) -> str:
    return "[" + ", ".join(f'{{ refs = "{glob}", allow = {json.dumps(sorted(allow))} }}'
                           for glob, allow in grants) + "]"


@dataclass
class Site:
    authed: AuthedServer
    warehouse: Path
    initial_main: str

    @property
    def store(self) -> Any:
        return self.authed.server.store

    def restore(self) -> None:
        """Every example starts from `main` at its first table state, alone, unprotected."""
        for ref in self.store.list_refs():
            if ref.name != "main":
                self.store.delete_ref(ref.name, force=True)
        for name in self.store.protected_branches():
            self.store.unprotect_branch(name)
        self.store.assign_ref("main", self.initial_main, force=True)

    def state(self) -> State:
        """What a refusal must leave as it was: every ref (type, head), the protections and
        the table metadata files the server wrote (data files are the client's)."""
        return ({name: (kind, head) for name, kind, head in self.authed.refs()},
                self.store.protected_branches(), set(self.warehouse.rglob("*.metadata.json")))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("model")
    tokens = write_auth_config(root / "auth.toml",
                               {who: toml_grants(g) for who, g in PRINCIPALS.items()})
    with start_embedded_server(f"sqlite:///{root / 'store.db'}", warehouse=str(root / "wh"),
                               auth=load_auth_config(root / "auth.toml")) as srv:
        authed = AuthedServer(srv, tokens, Captured(), root / "auth.toml")
        cat = catalog(authed, "root")
        cat.create_namespace("db")
        cat.create_table("db.t", schema=ROWS.schema).append(ROWS)
        yield Site(authed, root / "wh", srv.store.get_ref("main").head)


# ---- the surfaces: each returns (error type or "ok", message) ---------------------------
Outcome = tuple[str, str]
STATUS = {"Forbidden": 403, "ProtectedBranch": 403, "RefNotFound": 404, "AlreadyExists": 409}
EXIT = {"Forbidden": 6, "ProtectedBranch": 1, "RefNotFound": 2, "AlreadyExists": 1}


def api(site: Site, who: str, method: str, path: str, **kwargs: Any) -> tuple[Outcome, Any]:
    r = httpx.request(method, site.authed.server.api_url + path,
                      headers=site.authed.headers(who), timeout=60, **kwargs)
    if r.is_success:
        return ("ok", ""), r.json()
    error = r.json()["error"]
    assert r.status_code == STATUS.get(error["type"]), (r.status_code, error)
    return (error["type"], error["message"]), None


def python(site: Site, who: str, call: Callable[[Catalog], Any]) -> tuple[Outcome, Any]:
    with Catalog(client(site.authed, who)) as cat:
        try:
            return ("ok", ""), call(cat)
        except LakeVersionError as exc:
            return (type(exc).__name__, exc.message), None


def cli(site: Site, who: str, *args: str) -> tuple[Outcome, Any]:
    """The installed console script: one JSON document on stdout, success or not."""
    done = subprocess.run([str(LAKEVERSION), "--store", site.authed.server.url, "--output",
                           "json", *args], capture_output=True, text=True, timeout=120,
                          env={"LAKEVERSION_TOKEN": site.authed.tokens[who],
                               "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    document = json.loads(done.stdout)
    if done.returncode == 0:
        return ("ok", ""), document
    error = document["error"]
    assert done.returncode == EXIT.get(error["type"]), (done.returncode, error)
    return (error["type"], error["message"]), None


def iceberg(site: Site, who: str, ref: str, call: Callable[[Any], Any]) -> tuple[Outcome, Any]:
    """pyiceberg at `ref` (`warehouse`), so the config request reads `ref` itself."""
    from pyiceberg.exceptions import BadRequestError, ForbiddenError

    try:
        return ("ok", ""), call(catalog(site.authed, who, ref).load_table("db.t"))
    except ForbiddenError as exc:
        marker = CODE_MARKER.search(str(exc))  # our code, never the wording, names the type
        assert marker is not None, exc
        return (ERRORS_BY_CODE[marker.group(1)].__name__, str(exc)), None
    except BadRequestError as exc:  # /v1/config?warehouse= names no ref
        assert "must name a ref" in str(exc), exc
        return ("RefNotFound", str(exc)), None


def namespace_put() -> Put:
    name = f"n{uuid.uuid4().hex[:10]}"
    return Put(Key((name,)), Content(ContentType.NAMESPACE, uuid.uuid4().hex, {"properties": {}}))


# ---- the state machine -------------------------------------------------------------------
#: two times in three one of the fixed corners, so allowed operations are common too
CORNERS = st.sampled_from(["root", "writer", "etl", "reader", "maker", "steward"])
WHO = st.one_of(CORNERS, CORNERS, st.sampled_from(sorted(PRINCIPALS)))
BRANCH = st.sampled_from(BRANCHES)
NOT_MAIN = st.sampled_from(BRANCHES[1:] + TAGS)
FORCE = st.sampled_from([False, False, True])  # forcing needs admin: rarer


def existing(names: Sequence[str]) -> st.SearchStrategy[str]:
    """A name of `names`, half the time one that exists now (else refusals are mostly
    RefNotFound)."""
    def pick(machine: AccessModel) -> st.SearchStrategy[str]:
        there = [n for n in names if n in machine.model.refs]
        return st.one_of(st.sampled_from(there), st.sampled_from(names)) if there \
            else st.sampled_from(names)
    return st.runner().flatmap(pick)


A_BRANCH = existing(BRANCHES)
A_REF = existing(BRANCHES + TAGS)
A_REF_NOT_MAIN = existing(BRANCHES[1:] + TAGS)


def readable_expressions() -> st.SearchStrategy[str]:
    """A ref, `ref~1`, or a commit id seen in this example (some reachable from no ref)."""
    def pick(machine: AccessModel) -> st.SearchStrategy[str]:
        return st.one_of(A_REF, A_REF.map(lambda name: f"{name}~1"),
                         st.sampled_from(sorted(machine.commits)))
    return st.runner().flatmap(pick)


def surfaces(*offered: str) -> st.SearchStrategy[str]:
    """The CLI is a process per call: drawn about one time in five."""
    common = [s for s in offered if s != "cli"]
    return st.sampled_from(common * 2 + ["cli"] if "cli" in offered else common)


class AccessModel(RuleBasedStateMachine):
    def __init__(self, site: Site, seen: set[tuple[str, bool]]) -> None:
        super().__init__()
        self.site, self.seen = site, seen
        site.restore()
        self.model = Model(PRINCIPALS)
        #: every head seen in this example: reads by commit id, some no ref reaches any more
        self.commits = {site.initial_main}

    @initialize(refs=st.sets(NOT_MAIN), protected=st.sets(BRANCH, max_size=2))
    def scene(self, refs: set[str], protected: set[str]) -> None:
        """The operator's starting refs and protected branches (no principal involved)."""
        for name in sorted(refs):
            self.operator_creates(name)
        for branch in sorted(protected):
            self.operator_protects(branch)

    def _observe_history(self, expression: str) -> None:
        """Before a read of `expression`: each ref's commits, if a commit id is read."""
        if reads(expression)[0][0] == "commit":
            self.model.history = {
                name: {c.id for c in self.site.store.log(name, limit=1000).commits}
                for name in self.model.refs}

    def _before(self) -> State:
        self.step_started = datetime.now(timezone.utc)
        return self.site.state()

    def _audited(self, who: str, expected: Verdict) -> None:
        """README: every refusal is in the audit trail, a grant's as `denied` on its ref,
        protection's as `failed` with the error's code."""
        records = self.site.store.audit(since=self.step_started, principal=who)
        if expected[0] == "Forbidden":
            ref = expected[2].removeprefix("ref ").strip("'")
            assert any(r.outcome.value == "denied" and r.ref == ref for r in records), records
        elif expected[0] == "ProtectedBranch":
            assert any(r.outcome.value == "failed" and r.detail == "PROTECTED_BRANCH"
                       for r in records), records

    def _check(self, who: str, surface: str, steps: Sequence[Step], outcome: Outcome,
               before: State,
               touched: Sequence[str] = ()) -> bool:
        """The surface did what the model says; True if the operation was allowed."""
        expected = self.model.verdict(who, steps)
        operation = sys._getframe(1).f_code.co_name  # the calling rule: create, read...
        event(f"{operation} on {surface}: {expected[0]}")
        self.seen |= {(operation, expected[0] == "ok"), (surface, expected[0] == "ok")}
        assert outcome[0] == expected[0], (who, steps, expected, outcome)
        if expected[0] == "Forbidden":
            permission, shown = expected[1], expected[2]
            assert f"principal {who!r} lacks {permission!r} on {shown}" in outcome[1], outcome
        self.commits |= {head for _, head in before[0].values()}
        if expected[0] != "ok":
            assert self.site.state() == before, "a refusal changed the store"
            self._audited(who, expected)
            return False
        if operation != "read":  # README: every mutation a principal asks for, too
            assert any(r.outcome.value == "done" for r in self.site.store.audit(
                since=self.step_started, principal=who)), f"{operation} left no audit record"
        refs_after = self.site.state()[0]
        for name, (kind, head) in before[0].items():
            if name not in touched:
                assert refs_after.get(name) == (kind, head), f"{name} moved"
        return True

    # ---- the operator sets the scene (no principal involved) -----------------------------
    @rule(name=NOT_MAIN)
    def operator_creates(self, name: str) -> None:
        if name not in self.model.refs:
            kind = "TAG" if name in TAGS else "BRANCH"
            self.site.store.create_ref(name, kind)
            self.model.refs[name] = kind

    @rule(branch=BRANCH)
    def operator_protects(self, branch: str) -> None:
        if self.model.refs.get(branch) == "BRANCH":
            self.site.store.protect_branch(branch)
            self.model.protected.add(branch)

    @rule(branch=BRANCH)
    def operator_commits(self, branch: str) -> None:
        """Branches diverge, so merges have work to do."""
        if self.model.refs.get(branch) == "BRANCH" and branch not in self.model.protected:
            self.site.store.commit(branch, [namespace_put()], message="operator")

    # ---- principals ------------------------------------------------------------------------
    @rule(who=WHO, name=NOT_MAIN, source=readable_expressions(),
          surface=surfaces("api", "python", "cli"))
    def create(self, who: str, name: str, source: str, surface: str) -> None:
        kind = "TAG" if name in TAGS else "BRANCH"
        self._observe_history(source)
        before = self._before()
        if surface == "api":
            outcome, _ = api(self.site, who, "POST", "/refs",
                             json={"name": name, "type": kind, "from": source})
        elif surface == "python":
            outcome, _ = python(self.site, who, lambda c: (
                c.tag(name) if kind == "TAG" else c.branch(name)).create(from_=source))
        else:
            outcome, _ = cli(self.site, who, kind.lower(), "create", name, "--from", source)
        if self._check(who, surface, create_rule(name, source), outcome, before, [name]):
            self.model.refs[name] = kind

    @rule(who=WHO, name=A_REF_NOT_MAIN, force=FORCE,
          surface=surfaces("api", "python", "cli"))
    def delete(self, who: str, name: str, force: bool, surface: str) -> None:
        kind = "TAG" if name in TAGS else "BRANCH"
        before = self._before()
        if surface == "api":
            outcome, _ = api(self.site, who, "POST", "/refs/delete",
                             json={"name": name, "force": force})
        elif surface == "python":
            outcome, _ = python(self.site, who, lambda c: (
                c.tag(name) if kind == "TAG" else c.branch(name)).delete(force=force))
        else:
            outcome, _ = cli(self.site, who, kind.lower(), "delete", name,
                             *(["--force"] if force else []))
        if self._check(who, surface, delete_rule(name, force, surface), outcome, before, [name]):
            del self.model.refs[name]
            self.model.protected.discard(name)  # a new branch of that name starts unprotected

    @rule(who=WHO, branch=A_BRANCH, to=readable_expressions(), force=FORCE,
          surface=surfaces("api", "python", "cli"))
    def reset(self, who: str, branch: str, to: str, force: bool, surface: str) -> None:
        self._observe_history(to)
        before = self._before()
        if surface == "api":
            outcome, _ = api(self.site, who, "POST", "/refs/assign",
                             json={"name": branch, "to": to, "force": force})
        elif surface == "python":
            outcome, _ = python(self.site, who,
                                lambda c: c.branch(branch).reset(to, force=force))
        else:
            outcome, _ = cli(self.site, who, "reset", branch, "--to", to,
                             *(["--force"] if force else []))
        self._check(who, surface, reset_rule(branch, to, force, surface), outcome, before, [branch])

    @rule(who=WHO, branch=A_BRANCH, surface=surfaces("api", "python", "iceberg"))
    def commit(self, who: str, branch: str, surface: str) -> None:
        before = self._before()
        put = namespace_put()
        if surface == "api":
            outcome, _ = api(self.site, who, "POST", "/commits", json={
                "branch": branch, "message": "model",
                "operations": [{"op": "put", "key": list(put.key.elements),
                                "content": put.content.to_dict()}]})
        elif surface == "python":
            outcome, _ = python(self.site, who,
                                lambda c: c.branch(branch).commit([put], message="model"))
        else:
            outcome, _ = iceberg(self.site, who, branch, lambda t: t.append(ROWS))
        if self._check(who, surface, commit_rule(branch, surface), outcome, before, [branch]):
            log = self.site.store.log(branch, limit=1).commits
            assert log[0].id != before[0][branch][1] and log[0].author == who

    @rule(who=WHO, source=readable_expressions(), into=A_BRANCH, dry_run=st.booleans(),
          surface=surfaces("api", "python", "cli"))
    def merge(self, who: str, source: str, into: str, dry_run: bool, surface: str) -> None:
        assume(source != into)
        self._observe_history(source)
        before = self._before()
        if surface == "api":
            outcome, _ = api(self.site, who, "POST", "/merge",
                             json={"source": source, "target": into, "dry_run": dry_run})
        elif surface == "python":
            outcome, _ = python(self.site, who,
                                lambda c: c.ref(source).merge_into(into, dry_run=dry_run))
        else:
            outcome, _ = cli(self.site, who, "merge", source, "--into", into,
                             *(["--dry-run"] if dry_run else []))
        self._check(who, surface, merge_rule(source, into, dry_run), outcome, before,
                    [] if dry_run else [into])

    @rule(who=WHO, ref=readable_expressions(), surface=surfaces("api", "python", "cli", "iceberg"))
    def read(self, who: str, ref: str, surface: str) -> None:
        self._observe_history(ref)
        before = self._before()
        if surface == "api":
            outcome, found = api(self.site, who, "GET", "/contents", params={"ref": ref})
            keys = found and {e["key"] for e in found["entries"]}
        elif surface == "python":
            outcome, found = python(self.site, who, lambda c: c.ref(ref).tables())
            keys = found and {str(k) for k in found}
        elif surface == "cli":
            outcome, found = cli(self.site, who, "show", ref)
            keys = found and {e["key"] for e in found["entries"]}
        else:
            outcome, found = iceberg(self.site, who, ref, lambda t: t.scan().to_arrow())
            keys = found is not None and {"db.t"}  # loaded and scanned (main~1: no rows yet)
        if self._check(who, surface, read_rule(ref), outcome, before):
            assert keys and "db.t" in keys

    @rule(who=WHO, surface=surfaces("api", "python", "cli"))
    def list_refs(self, who: str, surface: str) -> None:
        branches, tags = self.model.readable(who, "BRANCH"), self.model.readable(who, "TAG")
        if surface == "api":
            _, refs = api(self.site, who, "GET", "/refs")
            _, shielded = api(self.site, who, "GET", "/protected-branches")
            seen = {(r["name"], r["type"]) for r in refs["refs"]}
            protected = set(shielded["branches"])
        elif surface == "python":
            _, (refs, protected) = python(self.site, who, lambda c: (
                c.store.list_refs(), c.store.protected_branches()))
            seen = {(r.name, r.type.value) for r in refs}
        else:
            _, listed = cli(self.site, who, "branch", "list")
            seen = {(r["name"], r["type"]) for r in listed["refs"]} | {
                (t, "TAG") for t in tags}  # `tag list` is the same call with a type
            protected = {r["name"] for r in listed["refs"] if r["protected"]}
        assert seen == {(b, "BRANCH") for b in branches} | {(t, "TAG") for t in tags}
        assert protected == self.model.protected & branches

    @rule(who=WHO, branch=A_BRANCH, on=st.booleans(), surface=surfaces("api", "python", "cli"))
    def protect(self, who: str, branch: str, on: bool, surface: str) -> None:
        assume(self.model.refs.get(branch) != "TAG")
        verb = "protect" if on else "unprotect"
        before = self._before()
        if surface == "api":
            outcome, _ = api(self.site, who, "POST", f"/branches/{verb}", json={"name": branch})
        elif surface == "python":
            outcome, _ = python(self.site, who, lambda c: getattr(c.branch(branch), verb)())
        else:
            outcome, _ = cli(self.site, who, "branch", verb, branch)
        if self._check(who, surface, protect_rule(branch), outcome, before):
            (self.model.protected.add if on else self.model.protected.discard)(branch)

    @invariant()
    def store_is_the_model(self) -> None:
        refs, protected, _ = self.site.state()
        assert {n: kind for n, (kind, _) in refs.items()} == self.model.refs
        assert protected == self.model.protected


@pytest.mark.slow
def test_every_surface_allows_exactly_what_the_model_allows(site: Site) -> None:
    """Seeded (the same steps on every run: no flakes), bounded to well under a minute; every
    operation and every surface was both allowed and refused at least once, so the property
    is not vacuous."""
    seen: set[tuple[str, bool]] = set()

    @seed(20)
    def machine() -> AccessModel:
        return AccessModel(site, seen)

    run_state_machine_as_test(machine, settings=settings(  # type: ignore[arg-type]
        max_examples=40, stateful_step_count=15, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    drawn = ("create", "delete", "reset", "commit", "merge", "read", "protect",
             "api", "python", "cli", "iceberg")
    missing = {(what, ok) for what in drawn for ok in (True, False)} - seen
    assert not missing, f"never drawn (change the seed): {sorted(missing)}"


def test_cli_creates_a_ref_its_principal_cannot_read(site: Site) -> None:
    """`create` alone makes a ref (README); the CLI must not report a refusal for a ref it
    made (it used to read the new ref back, a second request needing `read`)."""
    site.restore()
    outcome, made = cli(site, "maker", "branch", "create", "t-a", "--from", "main")
    assert outcome == ("ok", "") and made["name"] == "t-a"
    assert made["head"] == site.initial_main == site.store.get_ref("t-a").head
    outcome, _ = cli(site, "maker", "tag", "create", "v1")
    assert outcome == ("ok", "") and site.store.get_ref("v1").head == site.initial_main


# ---- any grant, not only the pool's: the model's rule is the server's, glob by glob -------
GLOB_PART = st.sampled_from(["a", "b", "-", "/", ".", "*", "?", "[ab]", "[a/]"])


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(grants=st.lists(st.tuples(st.lists(GLOB_PART, min_size=1, max_size=6).map("".join),
                                 st.frozensets(st.sampled_from(PERMISSIONS), min_size=1)),
                       max_size=3),
       name=st.text("ab-/.", min_size=1, max_size=8), permission=st.sampled_from(PERMISSIONS))
def test_the_auth_config_grants_what_the_model_grants(
        grants: list[tuple[str, frozenset[str]]], name: str, permission: str) -> None:
    """Random globs (README's `*`, `?`, `[ab]`) loaded through the real auth-config parser
    give a permission on a name exactly when the model's own matcher says so."""
    config = parse_auth_config({"principal": [{
        "name": "p", "token_sha256": "0" * 64,
        "grants": [{"refs": glob, "allow": sorted(allow)} for glob, allow in grants]}]})
    principal = config.principals[0]
    assert principal.may(Permission(permission), name) == \
        Model({"p": tuple(grants)}).may("p", permission, name)
