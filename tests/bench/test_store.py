"""`lakeversion bench store` seeds catalogs larger than one commit may hold."""

from __future__ import annotations

from spark_lakeversion.bench.store import _seed
from spark_lakeversion.limits import Limits
from spark_lakeversion.wiring import open_store


def test_seed_splits_a_catalog_over_the_operation_limit_into_several_commits() -> None:
    store = open_store("sqlite:///:memory:", limits=Limits(max_operations=100))
    _seed(store, 250)
    assert len(store.list_keys("main")) == 250
    assert [c.message for c in store.log("main", limit=3).commits] == [
        "seed tables 200-249 of 250", "seed tables 100-199 of 250", "seed tables 0-99 of 250"]
