"""A first day in Spark SQL (issue 25): `DROP BRANCH` of a branch with unmerged commits
needs `FORCE` (git's -d and -D), the default branch is refused as such before the
session's own guard, and a misspelled ref gets a "did you mean"."""

from __future__ import annotations

import pytest

from spark_lakeversion.errors import InvalidInput, RefNotFound, UnmergedBranch
from tests.spark.helpers import SparkLake

pytestmark = pytest.mark.spark


def test_drop_branch_needs_force_for_unmerged_commits(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    before = orders.server.store.get_ref("dev").head
    with pytest.raises(UnmergedBranch, match=r"has 1 commit\(s\).*DROP BRANCH dev FORCE"):
        orders.sql("DROP BRANCH dev")
    assert orders.server.store.get_ref("dev").head == before
    assert orders.rows("DROP BRANCH dev FORCE")[0].dropped is True
    assert [r.name for r in orders.rows("SHOW BRANCHES")] == ["main"]
    orders.sql("CREATE BRANCH merged")  # nothing of its own: no FORCE needed
    assert orders.rows("DROP BRANCH merged")[0].dropped is True


def test_drop_branch_main_says_the_default_branch_cannot_be_deleted(orders: SparkLake) -> None:
    with pytest.raises(InvalidInput, match="the default branch 'main' cannot be deleted"):
        orders.sql("DROP BRANCH main")
    with pytest.raises(InvalidInput, match="unexpected 'FORCE'"):
        orders.sql("DROP TAG v1 FORCE")


def test_a_misspelled_ref_suggests_the_closest(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH develop")
    with pytest.raises(RefNotFound, match=r"'mian' \(did you mean 'main'\?\)"):
        orders.sql("SELECT * FROM {lv}.db@mian.t")
    with pytest.raises(RefNotFound, match=r"did you mean 'develop'\?"):
        orders.sql("USE BRANCH devlop")
