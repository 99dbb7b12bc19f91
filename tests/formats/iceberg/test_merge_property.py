"""Merge property: random appends/deletes on two branches; a successful merge has exactly
base + target changes + source changes (rows identified by their unique id)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyiceberg.table import Table

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.model import MergeAction, Put
from spark_lakeversion.wiring import open_store
from tests.formats.iceberg.helpers import KEY, TableBranches, content, table_rows

Op = tuple[str, int, int]
ops = st.lists(st.tuples(st.sampled_from(["append", "append", "delete", "drop"]),
                         st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=4)


def run(lake: TableBranches, table: Table, steps: list[Op], tag: str) -> None:
    for kind, p, n in steps:
        if kind == "append":
            table.append(lake.rows(p, n, tag))
            continue
        live = [r["id"] for r in table_rows(table.metadata_location) if r["p"] == p]
        if not live:
            continue
        doomed = live if kind == "drop" else live[:n]
        table.delete(f"id in ({', '.join(map(str, doomed))})")


def key_rows(location: str) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in table_rows(location)}


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(target_ops=ops, source_ops=ops, isolation=st.sampled_from(["serializable", "snapshot"]))
def test_successful_merge_is_base_plus_both_changes(target_ops: list[Op], source_ops: list[Op],
                                                    isolation: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = open_store(f"sqlite:///{root / 'store.db'}")
        try:
            lake = TableBranches(root)
            main = lake.main
            for p in (0, 1, 2):
                main.append(lake.rows(p, 3, "b"))
            store.commit("main", [Put(KEY, content(main))], message="base")
            base = key_rows(main.metadata_location)
            store.create_ref("dev", from_ref="main")
            dev = lake.branch(main)
            run(lake, main, target_ops, "t")
            run(lake, dev, source_ops, "s")
            target, source = key_rows(main.metadata_location), key_rows(dev.metadata_location)
            store.commit("main", [Put(KEY, content(main))], message="target")
            store.commit("dev", [Put(KEY, content(dev))], message="source")
            expected = {i: r for i, r in {**target, **source}.items()
                        if i in target and i in source or i not in base}
            data_files = lake.data_files_on_disk()
            try:
                result = store.merge("dev", "main", options={"isolation_level": isolation})
            except ConflictError as error:
                event(f"conflict {error.conflicts[0].type.value}")
                only_appends = all(k == "append" for k, _, _ in target_ops + source_ops)
                assert not only_appends, f"appends alone must merge: {error.conflicts}"
                return
            event(f"merged ({'with' if any(k != 'append' for k, _, _ in source_ops) else 'no'}"
                  " source deletes)")
            merged = store.get_content("main", KEY)
            assert merged is not None
            assert key_rows(str(merged.fields["metadata_location"])) == expected
            # data files are written only by a row-level merge, for the rows it rewrote
            written = lake.data_files_on_disk() - data_files
            assert data_files <= lake.data_files_on_disk()
            assert bool(written) == bool(result.stats["rows_rewritten"])
            assert result.details[0].action in (MergeAction.REPLAYED, MergeAction.KEPT,
                                                MergeAction.APPLIED)
        finally:
            store.close()
