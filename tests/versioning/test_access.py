"""`AccessControlledStore` over a real store (SQLite and PostgreSQL): grants, the read rule
for commit ids and time travel, authorship and the audit trail."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from spark_lakeversion.auth.config import parse_auth_config
from spark_lakeversion.auth.grants import Principal
from spark_lakeversion.errors import Forbidden, ProtectedBranch
from spark_lakeversion.model import Outcome, Put, RefType
from spark_lakeversion.versioning.access import CLIENT_AUTHOR, RULES, AccessControlledStore
from spark_lakeversion.versioning.interface import VersionStore
from spark_lakeversion.wiring import open_store
from tests.versioning.helpers import namespace


@pytest.fixture
def db(store_url: str) -> Iterator[VersionStore]:
    """The database stores only: the wrapper runs in the server, over its own store."""
    s = open_store(store_url)
    yield s
    s.close()


def principals() -> dict[str, Principal]:
    config = parse_auth_config({"principal": [
        {"name": "admin", "token_sha256": "0" * 64, "grants": [{"refs": "*", "allow": ["admin"]}]},
        {"name": "etl", "token_sha256": "1" * 64, "grants": [
            {"refs": "etl-*", "allow": ["read", "write", "create", "delete"]},
            {"refs": "main", "allow": ["read", "merge"]},
            {"refs": "rel-*", "allow": ["read", "create", "delete"]}]},
        {"name": "analyst", "token_sha256": "2" * 64, "grants": [
            {"refs": "*", "allow": ["read"]}]},
        {"name": "nobody", "token_sha256": "3" * 64},
    ]})
    return {p.name: p for p in config.principals}


def snapshot(db: VersionStore) -> list[tuple[str, str, str]]:
    return [(r.name, r.type.value, r.head) for r in db.list_refs()]


def put(store: VersionStore, branch: str, name: str) -> str:
    return store.commit(branch, [Put((name,), namespace())], message=f"add {name}").id


def test_every_operation_of_the_interface_has_a_rule() -> None:
    public = {n for n, v in inspect.getmembers(VersionStore, inspect.isfunction)
              if not n.startswith("_")}
    # defined via the others: the writes' keyword forms and two conveniences
    inherited_ok = {"merge", "create_ref", "delete_ref", "assign_ref", "commit", "cherry_pick",
                    "revert", "rollback_table", "get_content", "iter_table_states"}
    assert VersionStore.__abstractmethods__ <= set(RULES)
    assert public - inherited_ok == set(RULES)
    # each goes through the one wrapper, none is delegated by hand
    assert not {n for n in RULES if n in AccessControlledStore.__dict__}
    assert not inspect.isabstract(AccessControlledStore)


def test_an_operation_whose_row_is_gone_is_refused(db: VersionStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    guarded = AccessControlledStore(db, principals()["admin"])
    assert guarded.get_ref("main").name == "main"
    monkeypatch.delitem(RULES, "get_ref")
    with pytest.raises(Forbidden, match="get_ref has no access rule"):
        guarded.get_ref("main")


def test_denied_operations_raise_forbidden_naming_who_what_where_and_write_nothing(
        db: VersionStore) -> None:
    p = principals()
    put(db, "main", "a")
    db.create_ref("etl-1")
    db.create_ref("secret")
    before = snapshot(db)
    etl, nobody = (AccessControlledStore(db, p[n]) for n in ("etl", "nobody"))
    cases = [
        (lambda: etl.commit("main", [Put(("x",), namespace())], message="m"), "write", "main"),
        (lambda: etl.create_ref("dev"), "create", "dev"),
        (lambda: etl.delete_ref("secret"), "delete", "secret"),
        (lambda: etl.assign_ref("main", "etl-1"), "write", "main"),
        (lambda: etl.merge("main", "etl-1"), "merge", "etl-1"),
        (lambda: etl.rollback_table("main", "a", "main~1"), "write", "main"),
        (lambda: etl.revert(before[0][2], "main"), "write", "main"),
        (lambda: etl.cherry_pick([before[0][2]], "main"), "write", "main"),
        (lambda: etl.create_ref("etl-2", from_ref="secret"), "read", "secret"),
        (lambda: etl.create_ref("v1", RefType.TAG), "create", "v1"),
        (lambda: etl.log("secret"), "read", "secret"),
        (lambda: etl.diff("main", "secret~0"), "read", "secret"),
        (lambda: etl.begin_gc(datetime.now(timezone.utc), datetime.now(timezone.utc)),
         "admin", "every ref"),
        (lambda: etl.audit(), "admin", "every ref"),
        (lambda: etl.reflog(datetime.now(timezone.utc)), "admin", "every ref"),
        (lambda: nobody.get_contents("main", ["a"]), "read", "main"),
    ]
    for call, permission, ref in cases:
        with pytest.raises(Forbidden) as err:
            call()
        message = err.value.message
        assert message.startswith("access denied: principal ")
        assert f"'{permission}'" in message and ref in message and "'" in message
        assert snapshot(db) == before
    denied = [r for r in db.audit() if r.outcome is Outcome.DENIED]
    assert [r.principal for r in denied].count("etl") == len(cases) - 1
    assert {r.operation for r in denied} >= {"commit", "create_ref", "delete_ref", "merge",
                                            "gc", "rollback", "log", "audit"}


def test_allowed_operations_and_filtered_listings(db: VersionStore) -> None:
    p = principals()
    put(db, "main", "a")
    db.create_ref("secret")
    etl = AccessControlledStore(db, p["etl"])
    etl.create_ref("etl-1")
    put(etl, "etl-1", "b")
    assert etl.merge("etl-1", "main").new_head == db.get_ref("main").head
    etl.create_ref("rel-1", RefType.TAG, "main")  # tag grants behave as branch grants
    etl.delete_ref("rel-1", RefType.TAG)
    etl.delete_ref("etl-1")
    assert [r.name for r in etl.list_refs()] == ["main"]
    assert [r.name for r in AccessControlledStore(db, p["nobody"]).list_refs()] == []
    assert [r.name for r in AccessControlledStore(db, p["analyst"]).list_refs()] == [
        "main", "secret"]
    assert etl.gc_state() == db.gc_state()  # commits read it: open to everyone
    done = [(r.principal, r.operation, r.ref, r.outcome) for r in db.audit()]
    assert done == [("etl", "create_ref", "etl-1", Outcome.DONE),
                    ("etl", "commit", "etl-1", Outcome.DONE),
                    ("etl", "merge", "main", Outcome.DONE),
                    ("etl", "create_ref", "rel-1", Outcome.DONE),
                    ("etl", "delete_ref", "rel-1", Outcome.DONE),
                    ("etl", "delete_ref", "etl-1", Outcome.DONE)]


def test_reads_by_commit_id_need_a_readable_ref_that_reaches_it(db: VersionStore) -> None:
    p = principals()
    on_main = put(db, "main", "a")
    db.create_ref("secret")
    hidden = put(db, "secret", "s")
    etl = AccessControlledStore(db, p["etl"])
    assert etl.get_commit(on_main).id == on_main
    assert etl.get_commit(on_main[:10]).id == on_main  # a prefix too
    assert etl.resolve(f"{on_main}~1").commit_id == db.get_commit(on_main).parents[0]
    assert etl.resolve("main~1").commit_id == db.get_commit(on_main).parents[0]
    when = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    assert etl.resolve(f"main#{when}").commit_id == on_main
    for expression in (hidden, hidden[:12], f"{hidden}~0", f"secret#{when}", "secret~1"):
        with pytest.raises(Forbidden, match="lacks 'read'"):
            etl.resolve(expression)
    with pytest.raises(Forbidden, match=f"commit {hidden}"):
        etl.get_commit(hidden)
    with pytest.raises(Forbidden):
        etl.list_keys(hidden)
    analyst = AccessControlledStore(db, p["analyst"])  # read on "*": every commit
    assert analyst.get_commit(hidden).id == hidden


def test_commits_carry_the_principal_and_keep_the_client_author(db: VersionStore) -> None:
    p = principals()
    db.create_ref("etl-1")
    etl = AccessControlledStore(db, p["etl"])
    commit = etl.commit("etl-1", [Put(("a",), namespace())], message="m",
                        author="mallory", properties={"k": "v"})
    assert commit.author == "etl"
    assert commit.properties == {"k": "v", CLIENT_AUTHOR: "mallory"}
    merged = etl.merge("etl-1", "main", author="someone", fast_forward=False)
    assert db.get_commit(str(merged.new_head)).author == "etl"
    assert db.get_commit(str(merged.new_head)).properties[CLIENT_AUTHOR] == "someone"
    assert [r.outcome for r in db.audit(principal="etl")] == [Outcome.DONE, Outcome.DONE]


def test_failed_operations_are_audited_as_failed(db: VersionStore) -> None:
    p = principals()
    etl = AccessControlledStore(db, p["etl"])
    etl.create_ref("etl-1")
    with pytest.raises(Exception):  # noqa: B017 - AlreadyExists, audited with its code
        etl.create_ref("etl-1")
    last = db.audit()[-1]
    assert (last.operation, last.outcome, last.detail) == ("create_ref", Outcome.FAILED,
                                                           "ALREADY_EXISTS")


def test_an_operation_without_a_rule_is_refused(db: VersionStore) -> None:
    guarded = AccessControlledStore(db, principals()["analyst"])
    with pytest.raises(Forbidden, match="no access rule"):
        guarded.storage  # noqa: B018 - an attribute of VersionControl, not of the interface


def test_resets_need_write_on_the_branch(db: VersionStore) -> None:
    p = principals()
    first = put(db, "main", "a")
    put(db, "main", "b")
    db.create_ref("etl-1")
    etl = AccessControlledStore(db, p["etl"])
    assert etl.assign_ref("etl-1", first).head == first  # write on etl-*
    with pytest.raises(Forbidden, match="lacks 'write' on ref 'main'"):
        etl.assign_ref("main", first)
    assert db.get_ref("main").head != first


def test_a_forced_delete_checks_protection_in_its_own_transaction(
        db: VersionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race: the branch is protected after the access layer read protection and before
    the delete's transaction. A principal without admin on it must not delete it."""
    put(db, "main", "a")
    db.create_ref("etl-1")
    put(db, "etl-1", "b")
    etl = AccessControlledStore(db, principals()["etl"])
    unprotected = db.protected_branches

    def protected_right_after_the_read() -> set[str]:
        seen = unprotected()
        db.protect_branch("etl-1")  # an admin, between the check and the delete
        return seen

    monkeypatch.setattr(db, "protected_branches", protected_right_after_the_read)
    with pytest.raises(ProtectedBranch, match="needs admin"):
        etl.delete_ref("etl-1", force=True)
    monkeypatch.undo()
    assert "etl-1" in {r.name for r in db.list_refs()}
    last = db.audit()[-1]
    assert (last.principal, last.operation, last.outcome) == ("etl", "delete_ref",
                                                              Outcome.FAILED)
    with pytest.raises(Forbidden, match="lacks 'admin'"):  # as now seen: refused up front
        etl.delete_ref("etl-1", force=True)
    admin = AccessControlledStore(db, principals()["admin"])
    admin.delete_ref("etl-1", force=True)  # admin may delete a protected branch
    assert "etl-1" not in {r.name for r in db.list_refs()}
