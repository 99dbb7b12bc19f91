"""Merge-gate settings and records on every backend (SQLite and PostgreSQL): protection,
checks, check runs, previews; a Python check gating a table-level (Delta) merge."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from spark_lakeversion.checks.python import CheckContext
from spark_lakeversion.errors import (
    AlreadyExists,
    ChecksFailed,
    InvalidInput,
    ProtectedBranch,
    ReadOnlyRef,
    RefNotFound,
)
from spark_lakeversion.model import CheckKind, CheckSpec, Put, RefType
from spark_lakeversion.versioning.interface import VersionStore
from tests.versioning.helpers import table

VERDICT: dict[str, bool] = {"ok": True}


def verdict(ctx: CheckContext) -> tuple[bool, str]:
    return VERDICT["ok"], f"{len(ctx.changes)} table(s) changed"


def test_protection_is_stored_and_enforced(store: VersionStore) -> None:
    store.commit("main", [Put("db.t", table("t", "1"))], message="seed")
    assert store.protect_branch("main") is True
    assert store.protect_branch("main") is False
    assert store.protected_branches() == {"main"}
    head = store.get_ref("main").head
    with pytest.raises(ProtectedBranch, match="write to a branch and merge it"):
        store.commit("main", [Put("db.t", table("t", "2"))], message="direct")
    assert store.get_ref("main").head == head
    store.create_ref("v1", RefType.TAG)
    with pytest.raises(ReadOnlyRef):
        store.protect_branch("v1")
    with pytest.raises(RefNotFound):
        store.protect_branch("nope")


def test_checks_gate_merges_and_runs_are_recorded(store: VersionStore) -> None:
    store.commit("main", [Put("db.t", table("t", "1"))], message="seed")
    store.create_ref("dev")
    store.commit("dev", [Put("db.t", table("t", "2"))], message="change")
    spec = store.add_check(CheckSpec("main", "verdict", CheckKind.PYTHON,
                                     "tests.versioning.test_gate_settings:verdict",
                                     ("db.t",), 5))
    assert store.list_checks("main") == [spec]
    with pytest.raises(AlreadyExists):
        store.add_check(spec)
    with pytest.raises(InvalidInput):
        store.add_check(CheckSpec("main", "bad", CheckKind.WEBHOOK, "not a url"))
    VERDICT["ok"] = False
    head = store.get_ref("main").head
    with pytest.raises(ChecksFailed) as caught:
        store.merge("dev", "main")
    assert store.get_ref("main").head == head
    assert caught.value.reports[0]["message"] == "1 table(s) changed"
    VERDICT["ok"] = True
    result = store.merge("dev", "main")
    assert result.fast_forward and result.new_head == store.get_ref("dev").head
    runs = store.check_runs("main", limit=10)
    assert [r.report.status.value for r in runs] == ["passed", "failed"]
    assert runs[1].preview == caught.value.preview
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    assert set(store.preview_commits(since)) == {r.preview for r in runs}
    assert store.remove_check("main", "verdict") is True
    assert store.remove_check("main", "verdict") is False
    assert store.list_checks() == []
