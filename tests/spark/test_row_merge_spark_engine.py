"""Row-level merge run in the caller's Spark session (issue 23, "Scale"): past the server's
row limit the server only plans; Spark runs the rule's SQL and writes the merged rows with
Iceberg's writer under a staging directory the server issued; the server reads those files
back and commits one merge snapshot through the usual merge. The same histories merged by
the server's DuckDB engine (`lake`, no limit hit) and by Spark (`small`, a 1-byte row limit)
give the same rows, the same statistics and the same conflicts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from spark_lakeversion.api import connect
from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import ChecksFailed, ConflictError, InvalidInput
from spark_lakeversion.model import CheckKind, CheckSpec, Key
from spark_lakeversion.spark.rows import merge_on_spark
from spark_lakeversion.versioning.options import MergeOptions
from tests.spark.helpers import MODES, SparkLake, expected, scanned, table

CASES = [(mode, keyed) for mode in sorted(MODES) for keyed in (True, False)]
IDS = [f"{mode}-{'keyed' if keyed else 'keyless'}" for mode, keyed in CASES]


def on(lake: SparkLake) -> SparkLake:
    """Make `lake`'s catalog the session's lakeversion catalog (two lakes in one test)."""
    lake.spark.conf.set("spark.lakeversion.catalog", lake.catalog)
    return lake


def row_stats(lake: SparkLake, sql: str = "MERGE BRANCH dev INTO main") -> dict[str, Any]:
    [row] = on(lake).rows(sql)
    assert (row.table, row.action, row.conflict_type) == ("db.t", "REPLAYED", None)
    return dict(json.loads(row.statistics)["row_merge"])


def staged_files(lake: SparkLake) -> list[Path]:
    """Every file under a staging directory of db.t's data location, on disk."""
    content = lake.server.store.get_content("main", Key.of("db.t"))
    assert content is not None
    root = Path(str(content.fields["metadata_location"]).removeprefix("file://")).parents[1]
    return sorted(p for p in (root / "data").glob("lv-rowmerge-*/**/*") if p.is_file())


History = Callable[[SparkLake], None]


def updates(lake: SparkLake) -> None:
    lake.sql("UPDATE {lv}.`db@dev`.t SET v = 'dev' WHERE id = 2")
    lake.sql("UPDATE {lv}.db.t SET n = 70 WHERE id = 7")


def deletes_and_update(lake: SparkLake) -> None:
    lake.sql("DELETE FROM {lv}.`db@dev`.t WHERE id = 4")
    lake.sql("UPDATE {lv}.db.t SET v = 'main' WHERE id = 1")


#: each case runs Spark a dozen times: every mode and key kind once, a delete in one more
MATRIX = [(mode, keyed, updates, expected({2: (2, "dev", 2)}, {7: (7, "v7", 70)}))
          for mode, keyed in CASES] + [
    ("merge-on-read", True, deletes_and_update, expected({4: None}, {1: (1, "main", 1)}))]


@pytest.mark.parametrize(("mode", "keyed", "history", "want"), MATRIX,
                         ids=[*IDS, "merge-on-read-keyed-delete"])
def test_spark_and_the_server_merge_the_same_rows(lake: SparkLake, small: SparkLake,
                                                  mode: str, keyed: bool, history: History,
                                                  want: list[tuple[Any, ...]],
                                                  partitioned: str = "") -> None:
    stats = []
    for each in (lake, small):
        table(on(each), mode, keyed, partitioned)
        history(each)
        stats.append(row_stats(each))
        assert scanned(on(each)) == want  # Spark, pyiceberg and DuckDB agree
    by_server, by_spark = stats
    assert "engine" not in by_server and by_spark["engine"] == "spark"
    for name in ("files_rewritten", "rows_rewritten", "conflicts", "resolved"):
        assert by_spark[name] == by_server[name], name
    assert by_spark["files_rewritten"] >= 1 and by_spark["bytes_written"] > 0
    # the written files are the merge snapshot's, under the staging directory it issued
    assert staged_files(small)
    assert small.server.store.get_content("main", Key.of("db.t")) is not None


@pytest.mark.parametrize("partitioned", ["bucket(1, id)", "truncate(1, v)"])
def test_partitioned_tables_merge_the_same_rows_on_spark(lake: SparkLake, small: SparkLake,
                                                         partitioned: str) -> None:
    """Spark's writer splits the rows by the spec; the server derives each file's partition
    from the file (a bucket from its rows, a truncate from its footer)."""
    both = [(2, "dev", 2), (3, "dev", 3)]

    def history(each: SparkLake) -> None:
        each.sql("UPDATE {lv}.`db@dev`.t SET v = 'dev' WHERE id IN (2, 3)")
        each.sql("UPDATE {lv}.db.t SET n = 70 WHERE id = 7")

    test_spark_and_the_server_merge_the_same_rows(
        lake, small, "copy-on-write", True, history,
        expected({r[0]: r for r in both}, {7: (7, "v7", 70)}), partitioned)


def test_a_row_conflict_is_the_same_from_spark(lake: SparkLake, small: SparkLake) -> None:
    caught = []
    for each in (lake, small):
        table(on(each), "copy-on-write", keyed=True)
        each.sql("UPDATE {lv}.db.t SET v = 'main' WHERE id = 5")
        each.sql("UPDATE {lv}.`db@dev`.t SET v = 'dev' WHERE id = 5")
        head = each.server.store.get_ref("main").head
        with pytest.raises(ConflictError) as error:
            each.sql("MERGE BRANCH dev INTO main")
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
        assert scanned(on(each)) == expected({5: (5, "dev", 5)})


def test_the_python_surface_runs_the_row_merge_on_spark(small: SparkLake) -> None:
    table(on(small), "merge-on-read", keyed=True)
    updates(small)
    result = merge_on_spark(small.spark, "dev", "main", MergeOptions(message="by spark"))
    [detail] = result.details
    assert detail.statistics["row_merge"]["engine"] == "spark"
    [commit] = small.server.store.log("main", limit=1).commits
    assert commit.message == "by spark"
    assert commit.properties["lakeversion.merge.row-engine"] == "spark"
    assert commit.properties["lakeversion.merge.row-engine-tables"] == "db.t"
    assert scanned(small) == expected({2: (2, "dev", 2)}, {7: (7, "v7", 70)})


def test_a_failing_gate_refuses_the_spark_merge_and_keeps_its_preview(small: SparkLake) -> None:
    table(on(small), "copy-on-write", keyed=True)
    small.server.store.add_check(CheckSpec("main", "no_dev", CheckKind.SQL,
                                           "SELECT * FROM preview.db.t WHERE v = 'dev'"))
    updates(small)
    head = small.server.store.get_ref("main").head
    with pytest.raises(ChecksFailed, match="no_dev"):
        small.sql("MERGE BRANCH dev INTO main")
    assert small.server.store.get_ref("main").head == head
    # the preview the gate refused (recorded with its check run) names the engine's files:
    # kept for it, collected by gc with it; main reads as it was
    refused = staged_files(small)
    assert refused
    [preview] = {r.preview for r in small.server.store.check_runs("main", limit=5)}
    assert preview not in (None, "") and small.server.store.get_ref("main").head == head
    assert scanned(small) == expected({7: (7, "v7", 70)})
    # a check the merged state passes: through the gate, its preview is Spark's rows
    small.server.store.remove_check("main", "no_dev")
    small.server.store.add_check(CheckSpec("main", "dev_once", CheckKind.SQL,
                                           "SELECT 1 FROM (SELECT count(*) AS n FROM "
                                           "preview.db.t WHERE v = 'dev') WHERE n <> 1"))
    small.server.store.protect_branch("main")
    stats = row_stats(small)
    assert stats["engine"] == "spark" and stats["files_rewritten"] == 1
    assert scanned(small) == expected({2: (2, "dev", 2)}, {7: (7, "v7", 70)})
    [run] = [r for r in small.server.store.check_runs("main", limit=5)
             if r.report.name == "dev_once"]
    assert run.report.status.value == "passed"


def test_the_cli_runs_the_row_merge_on_spark(small: SparkLake) -> None:
    """`lakeversion merge --engine spark` (the session already running is borrowed)."""
    table(on(small), "copy-on-write", keyed=False)
    updates(small)
    runner = CliRunner()
    base = ["--store", small.server.url, "-o", "json", "merge", "dev", "--into", "main"]
    # the server alone cannot: the row merge is past its limit
    refused = runner.invoke(cli, base)
    assert refused.exit_code == 3 and "--max-row-merge-bytes" in refused.output
    bad = runner.invoke(cli, [*base, "--engine", "gpu"])
    assert bad.exit_code == 1 and "gpu" in bad.output and "Traceback" not in bad.output
    dry = runner.invoke(cli, [*base, "--engine", "spark", "--dry-run"])
    assert dry.exit_code == 1 and "leave out --engine spark" in dry.output
    merged = runner.invoke(cli, [*base, "--engine", "spark"])
    assert merged.exit_code == 0, merged.output
    assert json.loads(merged.output)["details"][0]["statistics"]["row_merge"]["engine"] == "spark"
    assert scanned(on(small)) == expected({2: (2, "dev", 2)}, {7: (7, "v7", 70)})


def test_python_bad_engine_arguments_are_typed(small: SparkLake) -> None:
    table(on(small), "copy-on-write", keyed=True)
    ref = connect(small.server.url).ref("dev")
    with pytest.raises(InvalidInput, match="unknown row engine"):
        ref.merge_into("main", engine="gpu")
    with pytest.raises(InvalidInput, match="pass spark="):
        ref.merge_into("main", engine="spark")
    with pytest.raises(InvalidInput, match="a dry run plans in the server"):
        ref.merge_into("main", engine="spark", spark=small.spark, dry_run=True)
