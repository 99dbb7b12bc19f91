"""SQL checks read Delta tables too: each state's log is attached at its own version (a
branch's log included), inside the same confinement as Iceberg tables."""

from __future__ import annotations

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ChecksFailed
from tests.formats.delta.helpers import data, rows


def test_sql_check_gates_a_delta_merge_at_each_states_version(events: Catalog) -> None:
    main = events.branch("main")
    main.add_check("positive", sql="SELECT id, v FROM db.events WHERE v < 0")
    main.add_check("no_row_lost", sql="SELECT 1 AS lost FROM (SELECT count(*) AS n FROM "
                                      "db.events) p, (SELECT count(*) AS n FROM "
                                      "target.db.events) t WHERE p.n < t.n")
    dev = events.branch("dev").create()
    dev.delta("db.events").append(data((5, "b", -50)))  # the first write: a branch log
    main.delta("db.events").append(data((6, "b", 60)))  # main moves on after dev branched
    head = main.get_ref().head
    with pytest.raises(ChecksFailed) as caught:
        events.store.merge("dev", "main")
    reports = {r["name"]: r for r in caught.value.reports}
    assert reports["positive"]["status"] == "failed", reports["positive"]["message"]
    assert reports["positive"]["samples"] == [{"id": 5, "v": -50}]
    assert reports["no_row_lost"]["status"] == "passed"
    assert main.get_ref().head == head
    dev.delta("db.events").delete("v < 0")
    result = events.store.merge("dev", "main")
    assert {c["name"]: c["status"] for c in result.checks} == {
        "positive": "passed", "no_row_lost": "passed"}
    assert [r[0] for r in rows(main.delta("db.events"))] == [1, 2, 3, 4, 6]
