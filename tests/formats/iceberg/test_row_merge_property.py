"""Property (issue 23): random inserts, updates and deletes on two branches of a keyed and
of a keyless Iceberg table (copy-on-write, through pyiceberg and the real store). When the
merge succeeds, the merged rows equal a plain three-way row merge computed here
(`tests.rows.helpers.reference_keyed` / `reference_keyless`); when it conflicts, the
reference finds a key (or a row's count) changed differently on both sides, and the target
is unchanged.

New keys are drawn apart on the two sides: two appends of one new key commute at file level
(the merge never reads appended files against each other), which the rule does not model."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import StaticTable, Table
from pyiceberg.types import IntegerType, LongType, NestedField

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.model import ConflictType, Put
from spark_lakeversion.wiring import open_store
from tests.formats.iceberg.helpers import KEY, content
from tests.rows.helpers import reference_keyed, reference_keyless

Row = tuple[int, int, int]
BASE: list[Row] = [(i, i % 3, i % 2) for i in range(6)]

#: (kind, key, column, value): update a column of a live key, delete it, or insert a new one
op = st.tuples(st.sampled_from(["update", "update", "delete", "insert"]),
               st.integers(0, 3), st.integers(1, 2), st.integers(0, 2))


def schema(keyed: bool) -> Schema:
    return Schema(NestedField(1, "id", LongType(), required=keyed),
                  NestedField(2, "a", IntegerType(), required=False),
                  NestedField(3, "b", IntegerType(), required=False),
                  identifier_field_ids=[1] if keyed else [])


def arrow(keyed: bool, rows: list[Row]) -> pa.Table:
    fields = pa.schema([pa.field("id", pa.int64(), nullable=not keyed),
                        pa.field("a", pa.int32()), pa.field("b", pa.int32())])
    return pa.Table.from_pylist([{"id": i, "a": a, "b": b} for i, a, b in rows],
                                schema=fields)


def run(table: Table, keyed: bool, model: dict[int, Row], ops: list[Any],
        new_ids: range) -> None:
    """Apply `ops` to the table (copy-on-write) and to `model` (key -> row)."""
    fresh = iter(new_ids)
    for kind, key, column, value in ops:
        if kind == "insert":
            new = next(fresh)
            model[new] = (new, value, value)
            table.append(arrow(keyed, [model[new]]))
        elif key in model and kind == "delete":
            del model[key]
            table.delete(f"id = {key}")
        elif key in model:
            row = list(model[key])
            row[column] = value
            model[key] = (row[0], row[1], row[2])
            table.delete(f"id = {key}")
            table.append(arrow(keyed, [model[key]]))


def scanned(location: str) -> list[Row]:
    data = StaticTable.from_metadata(location).scan().to_arrow()
    return sorted(zip(*(data.column(c).to_pylist() for c in ("id", "a", "b")), strict=True))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@example(keyed=True, target_ops=[("update", 1, 1, 2)], source_ops=[("update", 1, 1, 0)])
@example(keyed=True, target_ops=[("delete", 1, 1, 0)], source_ops=[("update", 1, 2, 0)])
@example(keyed=True, target_ops=[("update", 1, 1, 2)], source_ops=[("update", 1, 2, 0)])
@example(keyed=False, target_ops=[("update", 1, 1, 2)], source_ops=[("update", 2, 2, 0)])
@given(keyed=st.booleans(), target_ops=st.lists(op, min_size=1, max_size=3),
       source_ops=st.lists(op, min_size=1, max_size=3))
def test_row_merge_matches_the_plain_reference(keyed: bool, target_ops: list[Any],
                                               source_ops: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = open_store(f"sqlite:///{root / 'store.db'}")
        try:
            catalog = SqlCatalog("lake", uri=f"sqlite:///{root / 'catalog.db'}",
                                 warehouse=f"file://{root / 'warehouse'}")
            catalog.create_namespace("db")
            main = catalog.create_table("db.t", schema(keyed), partition_spec=PartitionSpec(),
                                        properties={"format-version": "2"})
            main.append(arrow(keyed, BASE[:3]))
            main.append(arrow(keyed, BASE[3:]))
            store.commit("main", [Put(KEY, content(main))], message="base")
            store.create_ref("dev", from_ref="main")
            dev = catalog.register_table("db.dev", main.metadata_location)
            base = {r[0]: r for r in BASE}
            target, source = dict(base), dict(base)
            run(main, keyed, target, target_ops, range(100, 110))
            run(dev, keyed, source, source_ops, range(200, 210))
            main.refresh()
            dev.refresh()
            store.commit("main", [Put(KEY, content(main))], message="target")
            store.commit("dev", [Put(KEY, content(dev))], message="source")
            if keyed:
                rows, conflicts = reference_keyed(base, target, source, None)
                want = sorted(rows.values())
            else:
                want, conflicts = reference_keyless(
                    list(base.values()), list(target.values()), list(source.values()), None)
            before = store.get_content("main", KEY)
            try:
                result = store.merge("dev", "main", isolation_level="snapshot")
            except ConflictError as error:
                event(f"conflict {[c.type.value for c in error.conflicts]}")
                assert [c.type for c in error.conflicts] == [ConflictType.ROW_CONFLICT]
                assert conflicts, "the reference finds no key changed differently"
                assert error.conflicts[0].details["count"] == len(conflicts)
                assert store.get_content("main", KEY) == before
                return
            assert not conflicts, f"the reference finds conflicts: {conflicts}"
            event("row merge" if "row_merge" in result.details[0].statistics
                  else "file-level merge")
            merged = store.get_content("main", KEY)
            assert merged is not None
            assert scanned(str(merged.fields["metadata_location"])) == sorted(want)
        finally:
            store.close()
