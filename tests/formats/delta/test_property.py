"""Property: random appends and deletes on two branches of one Delta table. Whenever the
merge succeeds, the merged rows are the base plus the target's changes plus the source's
changes; when it conflicts, the target is unchanged."""

from __future__ import annotations

import tempfile
from itertools import count
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_lakeversion.api import connect
from spark_lakeversion.errors import ConflictError
from spark_lakeversion.formats.delta.handle import DeltaHandle
from tests.formats.delta.helpers import ID_P_V_ARROW, data, independent_rows, rows

BASE = [(1, "a", 1), (2, "a", 2), (3, "b", 3), (4, "c", 4)]
PARTS = ("a", "b", "c")

operation = st.one_of(
    st.tuples(st.just("append"), st.sampled_from(PARTS)),
    st.tuples(st.just("delete_id"), st.sampled_from([r[0] for r in BASE])),
    st.tuples(st.just("delete_partition"), st.sampled_from(PARTS)),
)


def apply(handle: DeltaHandle, ops: list[tuple[str, str | int]], ids: Any) -> tuple[
        set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Run `ops`; the rows this side added and the base rows it deleted."""
    added: set[tuple[Any, ...]] = set()
    deleted: set[tuple[Any, ...]] = set()
    for kind, arg in ops:
        before = set(rows(handle))
        if kind == "append":
            new = next(ids)
            handle.append(data((new, str(arg), new)))
            added.add((new, str(arg), new))
        else:
            handle.delete(f"id = {arg}" if kind == "delete_id" else f"p = '{arg}'")
            gone = before - set(rows(handle))
            added -= gone
            deleted |= gone - added
    return added, {r for r in deleted if r in BASE}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(source_ops=st.lists(operation, max_size=3), target_ops=st.lists(operation, max_size=3))
def test_successful_merges_combine_both_sides(source_ops: list[Any],
                                             target_ops: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            connect(f"sqlite:///{Path(tmp) / 'store.db'}",
                    warehouse=str(Path(tmp) / "warehouse")) as catalog:
        main = catalog.branch("main").delta("db.t")
        main.create(ID_P_V_ARROW, partition_by=["p"])
        main.append(data(*BASE[:2]))
        main.append(data(*BASE[2:]))
        catalog.branch("dev").create()
        dev = catalog.branch("dev").delta("db.t")
        ids = count(100)
        source_added, source_deleted = apply(dev, source_ops, ids)
        target_added, target_deleted = apply(main, target_ops, ids)
        target_rows = rows(main)
        try:
            catalog.store.merge("dev", "main")
        except ConflictError:
            assert rows(main) == target_rows
            return
        expected = sorted((set(BASE) - source_deleted - target_deleted)
                          | source_added | target_added)
        assert rows(main) == expected
        assert independent_rows(main.state()) == expected
