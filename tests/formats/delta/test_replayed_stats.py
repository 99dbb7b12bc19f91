"""A log we write about a file another log added (a branch log's fork, a merge replayed on
main's root log, a new table taken as root version 0) keeps that file's statistics: its
row count, null counts and bounds, so readers of our log (deltalake, DuckDB, Spark) skip
files as they would on the log that added it. Files our row-level edits write carry
statistics too. A bound that cannot be written back exactly is left out, never written
inexactly. On local files and on S3 (moto)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.formats.delta import log, statistics, storage
from spark_lakeversion.formats.delta.content import DeltaState
from tests.formats.delta.helpers import DeltaLake, _resolve, data, rows

#: a schema with every kind of column Delta keeps bounds of, a struct and a boolean
RICH = pa.schema([("id", pa.int64()), ("s", pa.string()), ("f", pa.float64()),
                  ("ts", pa.timestamp("us", tz="UTC")), ("ntz", pa.timestamp("us")),
                  ("d", pa.decimal128(5, 2)), ("day", pa.date32()), ("b", pa.bool_()),
                  ("st", pa.struct([("x", pa.int32())]))])


def rich(first: int) -> pa.Table:
    stamp = dt.datetime(2020, 1, 1, 1, 2, 3, 456789)
    return pa.table({
        "id": [first, first + 1, None], "s": [f"a{first}", "zz", None],
        "f": [1.5, 2.5, None],
        "ts": [stamp.replace(tzinfo=dt.timezone.utc), None,
               dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)],
        "ntz": [stamp, None, None], "d": [Decimal("1.23"), None, Decimal("4.56")],
        "day": [dt.date(2020, 1, first % 28 + 1), None, None], "b": [True, False, None],
        "st": [{"x": first}, {"x": 2}, None]}, schema=RICH)


def raw_stats(location: str, version: int, io: Mapping[str, str] | None
              ) -> dict[str, dict[str, Any]]:
    """Replaying the JSON commits 0..version of a log here: each live file's URI and the
    `stats` its add action holds, parsed."""
    live: dict[str, dict[str, Any]] = {}
    for v in range(version + 1):
        text = storage.read_bytes(log.commit_uri(location, v), io)
        assert text is not None
        for line in text.decode().splitlines():
            action = json.loads(line)
            if "add" in action:
                live[_resolve(location, action["add"]["path"])] = json.loads(
                    action["add"]["stats"])
            elif "remove" in action:
                live.pop(_resolve(location, action["remove"]["path"]), None)
    return live


def read_stats(lake: DeltaLake, state: DeltaState) -> dict[str, dict[str, Any]]:
    """What deltalake reads of each live file's statistics at `state` (the bounds and
    null counts it would skip files by), by file name."""
    from deltalake import DeltaTable

    table = DeltaTable(state.location, version=state.version,
                       storage_options=lake.storage_options(state.location))
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    return {row["path"].rsplit("/", 1)[-1]: {k: v for k, v in row.items() if k.startswith(
        ("num_records", "null_count.", "min.", "max."))} for row in actions}


def plain_filtered(lake: DeltaLake, root: str) -> list[tuple[Any, ...]]:
    """The root read by DuckDB's `delta_scan` through filters a file's bounds decide
    (a reader that skipped a file by a misread bound would lose its rows)."""
    con = lake.duckdb()
    try:
        return sorted(con.execute(
            f"SELECT id, s FROM delta_scan('{root}') WHERE id >= 10 "
            "AND ts <= TIMESTAMPTZ '2020-01-01 01:02:03.456789+00' "
            "AND ntz = TIMESTAMP '2020-01-01 01:02:03.456789' AND d = 1.23 "
            "AND day >= DATE '2020-01-01' AND b AND st.x >= 10").fetchall())
    finally:
        con.close()


def test_a_merge_replayed_on_main_keeps_every_files_statistics(
        lake: DeltaLake, catalog: Catalog) -> None:
    main = catalog.branch("main").delta("db.rich")
    main.create(RICH)
    main.append(rich(1))
    catalog.branch("dev").create()
    dev = catalog.branch("dev").delta("db.rich")
    dev.append(rich(10))  # dev's first write: a branch log naming main's file
    main.append(rich(20))  # main moves: the merge is replayed on the root log
    dev_state, main_state = dev.state(), main.state()
    assert dev_state.location != dev_state.root
    on_dev, on_main = read_stats(lake, dev_state), read_stats(lake, main_state)
    [shared] = set(on_dev) & set(on_main)
    assert on_dev[shared] == on_main[shared]  # dev's fork kept main's file's statistics
    result = catalog.store.merge("dev", "main")
    assert not result.fast_forward
    merged = main.state()
    assert (merged.location, merged.version, merged.writer) == (
        merged.root, main_state.version + 1, "main")
    # every file main has holds the statistics deltalake reads where it was added
    after = read_stats(lake, merged)
    assert after == {**on_dev, **on_main} and len(after) == 3
    [name] = set(on_dev) - set(on_main)
    stats = after[name]
    assert (stats["num_records"], stats["min.id"], stats["max.id"], stats["min.s"],
            stats["max.s"], stats["null_count.id"], stats["min.st.x"]) == (
        3, 10, 11, "a10", "zz", 1, 2)
    assert (stats["min.d"], stats["max.d"]) == (Decimal("1.23"), Decimal("4.56"))
    assert (stats["min.b"], stats["max.b"]) == (False, True)
    assert stats["min.ts"] == dt.datetime(2020, 1, 1, 1, 2, 3, 456000,
                                          tzinfo=dt.timezone.utc)
    # the raw JSON of main's log spells each bound as Delta writers do
    [mine] = [s for uri, s in raw_stats(merged.location, merged.version, lake.io).items()
              if uri.endswith("/" + name)]
    assert mine["minValues"]["ts"] == "2020-01-01T01:02:03.456Z"
    assert mine["minValues"]["ntz"] == "2020-01-01 01:02:03.456"
    assert mine["minValues"]["day"] == "2020-01-11"
    assert mine["nullCount"] == {"id": 1, "s": 1, "f": 1, "ts": 1, "ntz": 2, "d": 1,
                                 "day": 2, "b": 1, "st": {"x": 1}}
    # and a plain reader filtering by every bound's column reads the rows it should
    assert plain_filtered(lake, merged.root) == [(10, "a10"), (20, "a20")]


def test_a_new_table_taken_as_root_version_0_keeps_its_statistics(
        lake: DeltaLake, catalog: Catalog) -> None:
    catalog.branch("dev").create()
    dev = catalog.branch("dev").delta("db.rich")
    dev.create(RICH)
    dev.append(rich(10))
    dev.append(rich(30))
    catalog.store.merge("dev", "main")
    merged = catalog.branch("main").delta("db.rich").state()
    assert (merged.location, merged.version) == (merged.root, 0)
    after = read_stats(lake, merged)
    assert after == read_stats(lake, dev.state()) and len(after) == 2
    assert sorted((s["min.id"], s["max.id"], s["max.st.x"]) for s in after.values()) == [
        (10, 11, 10), (30, 31, 30)]
    assert plain_filtered(lake, merged.root) == [(10, "a10"), (30, "a30")]


def test_files_a_row_edit_writes_carry_statistics(lake: DeltaLake, events: Catalog) -> None:
    """dev's delete rewrites a file of main's (outside dev's log, so we write it)."""
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    dev.delete("id = 2")
    state = dev.state()
    assert rows(dev) == [(1, "a", 10), (3, "b", 30), (4, "a", 40)]
    written = [s for uri, s in raw_stats(state.location, state.version, lake.io).items()
               if uri.endswith("-lakeversion.snappy.parquet")]
    # the rewritten file of partition a: id 1 (id 2 deleted); p is a partition column
    assert written == [{"numRecords": 1, "minValues": {"id": 1, "v": 10},
                        "maxValues": {"id": 1, "v": 10}, "nullCount": {"id": 0, "v": 0}}]
    events.branch("main").delta("db.events").append(data((5, "b", 50)))
    events.store.merge("dev", "main")  # replayed on main's root log as it is
    main = events.branch("main").delta("db.events").state()
    assert [s for uri, s in raw_stats(main.location, main.version, lake.io).items()
            if uri.endswith("-lakeversion.snappy.parquet")] == written


@pytest.mark.parametrize(("value", "written"), [
    (Decimal("1.23"), 1.23),
    (Decimal("12345678901234567.89"), None),  # no float reads back as it: left out
    (float("nan"), None), (float("inf"), None), (-0.5, -0.5), (True, True),
    (b"\x00", None), ("x" * 100, "x" * 100),
    (dt.date(2024, 2, 29), "2024-02-29"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 678999, tzinfo=dt.timezone(dt.timedelta(hours=2))),
     "2024-01-02T01:04:05.678Z"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 678999), "2024-01-02 03:04:05.678"),
    ({"a": {"b": 1, "c": float("nan")}}, {"a": {"b": 1}}), ({"a": None}, None),
])
def test_a_bound_is_written_exactly_or_left_out(value: Any, written: Any) -> None:
    text = statistics.stats_text(7, {"c": 0}, {"c": value}, {"c": value})
    assert text is not None
    bounds = {} if written is None else {"minValues": {"c": written},
                                         "maxValues": {"c": written}}
    assert json.loads(text) == {"numRecords": 7, **bounds, "nullCount": {"c": 0}}


def test_a_file_we_write_has_no_bounds_where_a_float_holds_nan() -> None:
    table = pa.table({"f": [1.0, float("nan")], "g": [None, None], "i": [3, 1]},
                     schema=pa.schema([("f", pa.float64()), ("g", pa.int64()),
                                       ("i", pa.int32())]))
    assert json.loads(statistics.table_stats(table) or "") == {
        "numRecords": 2, "minValues": {"i": 1}, "maxValues": {"i": 3},
        "nullCount": {"f": 0, "g": 2, "i": 0}}
    assert statistics.stats_text(None, {"i": 0}, None, None) is None  # no row count: no stats
