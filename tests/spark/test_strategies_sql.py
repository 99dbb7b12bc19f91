"""Merge strategy names come from one place, `model.merges.STRATEGY_NAMES`: the Java shim
spells none, it asks the server (`GET /api/v1/merge-strategies`) once per catalog and
checks `USING STRATEGY` against that list, naming the server's strategies when one is
unknown."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import STRATEGY_NAMES, MergeBehavior
from spark_lakeversion.rows.merge3 import RESOLUTIONS
from spark_lakeversion.server import api_v1
from tests.spark.helpers import SparkLake

SHIM_SOURCES = Path(__file__).resolve().parents[2] / "jars" / "shim" / "src"


def sql_names(names: list[str]) -> str:
    return ", ".join(n.replace("-", "_") for n in names)


def test_the_shim_sources_spell_no_strategy_name() -> None:
    sources = {p: p.read_text(encoding="utf-8") for p in SHIM_SOURCES.rglob("*.java")}
    assert sources
    for name in STRATEGY_NAMES.values():
        for spelling in {name, name.replace("-", "_")}:
            found = [p.name for p, text in sources.items() if f'"{spelling}"' in text]
            assert not found, f"{spelling!r} spelled in {found}"


def test_the_server_lists_its_strategies(orders: SparkLake) -> None:
    answer = httpx.get(orders.server.api_url + "/merge-strategies")
    assert answer.status_code == 200
    assert answer.json() == {"strategies": list(STRATEGY_NAMES.values()),
                             "default": STRATEGY_NAMES[MergeBehavior.NORMAL]}


def test_an_unknown_strategy_names_the_servers_and_writes_nothing(
        orders: SparkLake, monkeypatch: pytest.MonkeyPatch) -> None:
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    head = orders.server.store.get_ref("main").head
    # the server offers one more name: the shim's error lists the server's list, so the
    # shim read it from there (the server itself would refuse "rebase": it is no behaviour)
    served = [*STRATEGY_NAMES.values(), "rebase"]
    monkeypatch.setattr(api_v1, "STRATEGY_NAMES", {**STRATEGY_NAMES, "extra": "rebase"})
    with pytest.raises(InvalidInput) as refused:
        orders.sql("MERGE BRANCH dev INTO main USING STRATEGY sideways")
    assert f"unknown merge strategy 'sideways': use {sql_names(served)}" in refused.value.message
    assert orders.server.store.get_ref("main").head == head
    # asked once per catalog: the list it read stands after the server's changed back
    monkeypatch.undo()
    with pytest.raises(InvalidInput, match=f"use {sql_names(served)}$"):
        orders.sql("MERGE BRANCH dev INTO main USING STRATEGY Sideways")
    # a name the shim let through is still the server's to accept: it refuses "rebase"
    with pytest.raises(InvalidInput, match="unknown merge strategy 'rebase': use normal, "
                                           "source-wins, target-wins"):
        orders.sql("MERGE BRANCH dev INTO main USING STRATEGY rebase")
    assert orders.server.store.get_ref("main").head == head
    orders.sql("MERGE BRANCH dev INTO main USING STRATEGY Source_Wins")
    assert orders.ids("db.t") == [1, 2, 3]


def test_an_unknown_row_conflict_resolution_is_the_servers_refusal(orders: SparkLake) -> None:
    """The shim spells no resolution: the server refuses an unknown one, naming its list."""
    orders.sql("CREATE BRANCH rc")
    orders.sql("INSERT INTO {lv}.db@rc.t VALUES (4, 'd')")
    head = orders.server.store.get_ref("main").head
    with pytest.raises(InvalidInput) as refused:
        orders.sql("MERGE BRANCH rc INTO main ON ROW CONFLICT mine")
    assert "mine" in refused.value.message
    assert all(name in refused.value.message for name in RESOLUTIONS), refused.value.message
    assert orders.server.store.get_ref("main").head == head
