"""Row-level merge of DELTA tables run in the caller's Spark session (issue 23, "Scale";
`formats/delta/row_engine.py`): past the server's row limit the server only plans; Spark
reads the table as the Iceberg table the catalog serves for it, runs the rule's SQL and
writes the merged rows with Iceberg's writer under a staging directory under the Delta
table's root; the server reads those files back and commits one Delta version. The same
histories merged by the server's DuckDB engine (`lake`) and by Spark (`small`, a 1-byte row
limit) give the same rows (deltalake and DuckDB's `delta_scan` read them), the same
statistics and the same ROW_CONFLICT; a failing gate publishes nothing and the engine's
files go. The table `db.t` (id, p, v) is partitioned by p: ids
1..8 in one file of partition a, id 9 in partition b."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.errors import ChecksFailed, ConflictError
from spark_lakeversion.formats.delta import log
from spark_lakeversion.model import CheckKind, CheckSpec
from tests.formats.delta.helpers import ID_P_V_ARROW, sorted_rows
from tests.spark.helpers import SparkLake

pytestmark = [pytest.mark.spark, pytest.mark.slow]

BASE = [(i, "a", i * 10) for i in range(1, 9)]
OTHER = (9, "b", 90)


def on(lake: SparkLake) -> SparkLake:
    """Make `lake`'s catalog the session's lakeversion catalog (two lakes in one test)."""
    lake.spark.conf.set("spark.lakeversion.catalog", lake.catalog)
    return lake


def catalog(lake: SparkLake) -> Catalog:
    return connect(lake.server.url, warehouse=lake.server.warehouse)


def table(lake: SparkLake, keyed: bool) -> None:
    with catalog(lake) as cat:
        main = cat.branch("main").delta("db.t")
        main.create(ID_P_V_ARROW, partition_by=["p"],
                    configuration={"lakeversion.identifierFields": "id"} if keyed else {})
        main.append(pa.Table.from_pylist([dict(zip(("id", "p", "v"), r, strict=True))
                                          for r in BASE], schema=ID_P_V_ARROW))
        main.append(pa.Table.from_pylist([dict(zip(("id", "p", "v"), OTHER, strict=True))],
                                         schema=ID_P_V_ARROW))
        cat.branch("dev").create()


def update(lake: SparkLake, branch: str, id_: int, v: int) -> None:
    with catalog(lake) as cat:
        cat.branch(branch).delta("db.t").update({"v": str(v)}, f"id = {id_}")


def read_back(lake: SparkLake) -> list[tuple[Any, ...]]:
    """main's rows by deltalake, by DuckDB's `delta_scan` and by Spark, which must agree."""
    import duckdb

    with catalog(lake) as cat:
        handle = cat.branch("main").delta("db.t")
        by_deltalake = sorted_rows(handle.to_arrow())
        location = handle.state().location
    extensions = Path(duckdb.__file__).parent.parent / "duckdb_ext" / "extensions"
    con = duckdb.connect(config={"extension_directory": str(extensions),
                                 "autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    try:
        con.execute("LOAD delta")
        by_duckdb = sorted(con.execute(
            f"SELECT id, p, v FROM delta_scan('{location}')").fetchall())
    finally:
        con.close()
    by_spark = sorted(tuple(r) for r in on(lake).rows("SELECT id, p, v FROM {lv}.db.t"))
    assert by_deltalake == by_duckdb == by_spark
    return by_deltalake


def row_stats(lake: SparkLake, sql: str = "MERGE BRANCH dev INTO main") -> dict[str, Any]:
    [row] = on(lake).rows(sql)
    assert (row.table, row.action, row.conflict_type) == ("db.t", "REPLAYED", None)
    return dict(json.loads(row.statistics)["row_merge"])


def staged_files(lake: SparkLake) -> list[Path]:
    """Every data file under a staging directory of db.t's root, on disk (Hadoop's local
    file system writes a `.crc` beside each)."""
    with catalog(lake) as cat:
        root = cat.branch("main").delta("db.t").state().root
    base = Path(root.removeprefix("file://"))
    return sorted(p for p in base.glob("lv-rowmerge-*/**/*.parquet") if p.is_file())


def expected(*changes: dict[int, tuple[int, str, int]]) -> list[tuple[Any, ...]]:
    rows = {r[0]: r for r in [*BASE, OTHER]}
    for change in changes:
        rows.update(change)
    return sorted(rows.values())


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "keyless"])
def test_spark_and_the_server_merge_the_same_delta_rows(lake: SparkLake, small: SparkLake,
                                                        keyed: bool) -> None:
    stats = []
    for each in (lake, small):
        table(each, keyed)
        update(each, "dev", 2, 222)
        update(each, "main", 7, 777)
        stats.append(row_stats(each))
        assert read_back(each) == expected({2: (2, "a", 222)}, {7: (7, "a", 777)})
    by_server, by_spark = stats
    assert "engine" not in by_server and by_spark["engine"] == "spark"
    for name in ("files_rewritten", "rows_rewritten", "conflicts", "resolved"):
        assert by_spark[name] == by_server[name], name
    assert by_spark["files_rewritten"] == 1 and by_spark["bytes_written"] > 0
    # the written files are the merge's, under the staging directory it issued
    [written] = staged_files(small)
    assert written.parent.name == "p=a"
    with catalog(small) as cat:
        state = cat.branch("main").delta("db.t").state()
    [add] = [a["add"] for a in log.commit_actions(state.location, state.version)
             if "add" in a]  # the merge's one version adds it, as the footer says
    assert log.file_id(state.location, add["path"]) == f"file://{written}"
    assert not add["path"].startswith(("/", "file:"))  # relative to the table's log
    assert add["partitionValues"] == {"p": "a"} and add["size"] == written.stat().st_size
    stats = json.loads(add["stats"])
    assert (stats["numRecords"], stats["minValues"], stats["maxValues"]) == \
        (8, {"id": 1, "v": 10}, {"id": 8, "v": 777})


def test_a_delta_row_conflict_is_the_same_from_spark(lake: SparkLake,
                                                     small: SparkLake) -> None:
    caught = []
    for each in (lake, small):
        table(each, keyed=True)
        update(each, "main", 5, 500)
        update(each, "dev", 5, 5000)
        head = each.server.store.get_ref("main").head
        with pytest.raises(ConflictError) as error:
            on(each).sql("MERGE BRANCH dev INTO main")
        [conflict] = error.value.conflicts
        caught.append(conflict)
        assert each.server.store.get_ref("main").head == head  # nothing merged
    assert staged_files(small) == []  # nothing was written for a conflicting merge
    by_server, by_spark = caught
    assert by_spark.type == by_server.type and by_spark.type.value == "ROW_CONFLICT"
    assert by_spark.details == by_server.details
    assert by_spark.details["keys"][0]["key"] == {"id": 5}
    # settled with the same resolution, the same rows
    for each in (lake, small):
        row_stats(each, "MERGE BRANCH dev INTO main ON ROW CONFLICT source_wins")
        assert read_back(each) == expected({5: (5, "a", 5000)})


def test_a_failing_gate_refuses_the_delta_spark_merge_and_keeps_its_preview(
        small: SparkLake) -> None:
    table(small, keyed=True)
    small.server.store.add_check(CheckSpec("main", "no_222", CheckKind.SQL,
                                           "SELECT * FROM preview.db.t WHERE v = 222"))
    update(small, "dev", 2, 222)
    update(small, "main", 7, 777)
    head = small.server.store.get_ref("main").head
    with catalog(small) as cat:
        version = cat.branch("main").delta("db.t").state().version
    with pytest.raises(ChecksFailed, match="no_222"):
        on(small).sql("MERGE BRANCH dev INTO main")
    assert small.server.store.get_ref("main").head == head
    # the refused preview (recorded with the check run) names the engine's files: kept
    assert len(staged_files(small)) == 1
    with catalog(small) as cat:
        state = cat.branch("main").delta("db.t").state()
    assert state.version == version  # main's table is as it was (the preview is on no ref)
    # deltalake and Spark read main's state. Not DuckDB's `delta_scan` of the path: it reads
    # the log's newest version, and a gated Delta merge writes its preview as the next
    # version of the target's log (with the server's row merge too), which stays when
    # refused: a reader of the bare log sees the refused preview (an open problem of gated
    # Delta merges, not of this engine)
    by_spark = sorted(tuple(r) for r in on(small).rows("SELECT id, p, v FROM {lv}.db.t"))
    with catalog(small) as cat:
        by_deltalake = sorted_rows(cat.branch("main").delta("db.t").to_arrow())
    assert by_deltalake == by_spark == expected({7: (7, "a", 777)})
