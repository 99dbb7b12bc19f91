"""Delta tables with column mapping (`delta.columnMapping.mode` = `name`): Delta readers look
a column up in a data file by its physical name (or field id) and a partition value in
`partitionValues` by the column's physical name, never by the column's name. Files our
row-level edits and row merges write on branch logs, and the logs we write (a branch log's
first version, a merge replayed on main's root log), use those. Before, a delete on a
branch wrote files naming columns by their names, which every reader read as NULLs, and
the first write on a branch of a partitioned table wrote a log deltalake could not open.
Read back with our handle, deltalake on the branch's log, and DuckDB and deltalake on the
root. On local files and on S3 (moto)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import UnsupportedTableFeature
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.model import Key
from tests.formats.delta.helpers import DeltaLake, _resolve, all_files, rows

MAPPED = {"delta.columnMapping.mode": "name", "delta.minReaderVersion": "2",
          "delta.minWriterVersion": "5"}
SCHEMA = pa.schema([("id", pa.int64()), ("p", pa.string()), ("v", pa.int64())])


def table_of(*rows_: tuple[int, str, int]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(("id", "p", "v"), r, strict=True))
                                 for r in rows_], schema=SCHEMA)


def mapped(catalog: Catalog, partitioned: bool) -> Any:
    """`db.cm` on main, column-mapped (by name), with two rows in each partition."""
    main = catalog.branch("main").delta("db.cm")
    main.create(SCHEMA, partition_by=["p"] if partitioned else None, configuration=MAPPED)
    main.append(table_of((1, "a", 10), (2, "b", 20), (3, "a", 30), (4, "b", 40)))
    catalog.branch("dev").create()
    return main


def physical(state: DeltaState, io: Any) -> dict[str, str]:
    """Column name -> physical name, from the log's own metaData."""
    mapping = log.column_mapping(log.read_state(state.location, state.version,
                                                io=io).metadata)
    assert mapping is not None
    return {name: phys for name, (phys, _) in mapping.items()}


def logged_adds(state: DeltaState, io: Any) -> dict[str, dict[str, Any]]:
    """Each live file's add action, replaying the log's JSON commits here."""
    live: dict[str, dict[str, Any]] = {}
    for version in range(state.version + 1):
        text = storage.read_bytes(log.commit_uri(state.location, version), io)
        assert text is not None
        for line in text.decode().splitlines():
            action = json.loads(line)
            if "add" in action:
                live[_resolve(state.location, action["add"]["path"])] = action["add"]
            elif "remove" in action:
                live.pop(_resolve(state.location, action["remove"]["path"]), None)
    return live


def query_rows(lake: DeltaLake, location: str, version: int | None = None
               ) -> list[tuple[Any, ...]]:
    """A log read by deltalake on its own (no catalog in between), through its query
    engine: its pyarrow reader ignores column mapping (it reads NULLs even for a table
    delta-rs wrote itself)."""
    from deltalake import DeltaTable, QueryBuilder

    table = DeltaTable(location, version=version,
                       storage_options=lake.storage_options(location))
    got = pa.table(QueryBuilder().register("t", table).execute("SELECT id, p, v FROM t"))
    return sorted(zip(*(got.column(c).to_pylist() for c in ("id", "p", "v"))))


def plain_rows_by_name(lake: DeltaLake, root: str, partitioned: bool = False
                       ) -> dict[str, list[tuple[Any, ...]]]:
    """The root read by DuckDB's `delta_scan` and deltalake's query engine. DuckDB 1.4.4
    reads a column-mapped table's partition column as NULL, even in a table delta-rs wrote
    alone (measured: `[(1, None), (2, None)]`), so for a partitioned table its `p` is
    not compared (it must be NULL in every row: no value under a wrong name)."""
    con = lake.duckdb()
    try:
        duck = sorted(con.execute(f"SELECT id, p, v FROM delta_scan('{root}')").fetchall())
    finally:
        con.close()
    deltalake = query_rows(lake, root)
    if partitioned:
        assert {p for _, p, _ in duck} == {None}
        by_id = {i: p for i, p, _ in deltalake}
        duck = sorted((i, by_id.get(i), v) for i, _, v in duck)
    return {"duckdb": duck, "deltalake": deltalake}


def check_files_we_wrote(lake: DeltaLake, state: DeltaState, names: dict[str, str],
                         partitioned: bool) -> None:
    """Every add of the log keys partitionValues by physical names; every data file under
    `_branches/` (ours) names its columns by physical names, with field ids."""
    for uri, add in logged_adds(state, lake.io).items():
        assert set(add["partitionValues"]) == ({names["p"]} if partitioned else set())
        if "/_branches/" in uri:
            fs, path = storage.filesystem(uri, lake.io)
            with fs.open_input_file(path) as stream:
                schema = pq.read_schema(stream)
            wanted = [names[c] for c in ("id", "v")] if partitioned else \
                [names[c] for c in ("id", "p", "v")]
            assert schema.names == wanted
            assert all(f.metadata and b"PARQUET:field_id" in f.metadata for f in schema)


@pytest.mark.parametrize("partitioned", [False, True], ids=["plain", "partitioned"])
def test_row_edits_on_a_branch_of_a_mapped_table_read_back_and_merge(
        lake: DeltaLake, catalog: Catalog, partitioned: bool) -> None:
    main = mapped(catalog, partitioned)
    dev = catalog.branch("dev").delta("db.cm")
    dev.delete("id = 1")  # our rewrite of main's file, on dev's branch log
    dev.update({"v": "222"}, "id = 2")
    expected = [(2, "b", 222), (3, "a", 30), (4, "b", 40)]
    state = dev.state()
    assert state.location != state.root
    assert rows(dev) == expected  # was: [(None, None, None), ...]
    assert query_rows(lake, state.location, state.version) == expected
    names = physical(state, lake.io)
    assert set(names.values()).isdisjoint({"id", "p", "v"})
    check_files_we_wrote(lake, state, names, partitioned)
    main.append(table_of((5, "a", 50)))  # main moves: dev's change is replayed on the root
    catalog.store.merge("dev", "main")
    merged = sorted([*expected, (5, "a", 50)])
    assert rows(main) == merged
    root = main.state()
    assert root.location == root.root
    assert plain_rows_by_name(lake, root.root, partitioned) == {"duckdb": merged,
                                                                "deltalake": merged}
    check_files_we_wrote(lake, root, names, partitioned)


def test_a_row_merge_of_a_mapped_table_writes_physical_columns(
        lake: DeltaLake, catalog: Catalog) -> None:
    """Both sides update a different row of the one file: the server's row merge
    rewrites it (`writes.write_rows`)."""
    main = mapped(catalog, False)  # keyless: rows as a counted multiset
    main.update({"v": "111"}, "id = 1")
    catalog.branch("dev").delta("db.cm").update({"v": "222"}, "id = 2")
    result = catalog.store.merge("dev", "main")
    assert result.successful and result.details[0].statistics["row_merge"]
    expected = [(1, "a", 111), (2, "b", 222), (3, "a", 30), (4, "b", 40)]
    assert rows(main) == expected
    state = main.state()
    assert plain_rows_by_name(lake, state.root) == {"duckdb": expected,
                                                    "deltalake": expected}
    check_files_we_wrote(lake, state, physical(state, lake.io), False)


def test_a_mapped_table_with_a_nested_column_is_refused_before_anything_is_written(
        lake: DeltaLake, catalog: Catalog) -> None:
    schema = pa.schema([("id", pa.int64()), ("s", pa.struct([("x", pa.int64())]))])
    main = catalog.branch("main").delta("db.nested")
    main.create(schema, configuration=MAPPED)
    main.append(pa.table({"id": [1, 2], "s": [{"x": 1}, {"x": 2}]}, schema=schema))
    catalog.branch("dev").create()
    dev = catalog.branch("dev").delta("db.nested")
    head = catalog.branch("dev").head.id
    files = all_files(main.state().root, lake.io)
    with pytest.raises(UnsupportedTableFeature, match="column mapping and has nested"):
        dev.delete("id = 1")
    assert catalog.branch("dev").head.id == head
    assert catalog.store.get_content(head, Key.of("db.nested")) == \
        catalog.store.get_content(catalog.branch("main").head.id, Key.of("db.nested"))
    written = all_files(main.state().root, lake.io) - files
    assert not [f for f in written if f.endswith(".parquet")]
