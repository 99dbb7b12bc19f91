"""Content-aware merge on tables written by Spark (copy-on-write and merge-on-read),
checked by scanning with Spark and with pyiceberg."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from chispa import assert_df_equality
from click.testing import CliRunner
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.cli.main import cli as cli_main
from spark_lakeversion.errors import ConflictError
from tests.spark.helpers import SparkLake

MODES = {
    "copy-on-write": "'write.delete.mode'='copy-on-write', 'write.update.mode'='copy-on-write'",
    "merge-on-read": "'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read'",
}


def _events(lake: SparkLake, mode: str) -> SparkLake:
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.events (id INT, day STRING) USING iceberg "
             f"PARTITIONED BY (day) TBLPROPERTIES ('format-version'='2', {MODES[mode]})")
    lake.sql("INSERT INTO {lv}.db.events VALUES (1, 'mon'), (2, 'mon'), (3, 'tue')")
    lake.sql("CREATE BRANCH dev")
    return lake


def _ids(lake: SparkLake, ref: str = "main") -> list[int]:
    return [r.id for r in lake.rows(f"SELECT id FROM {{lv}}.`db@{ref}`.events ORDER BY id")]


def _pyiceberg_ids(lake: SparkLake, ref: str = "main") -> list[int]:
    catalog = RestCatalog("check", uri=lake.server.iceberg_uri, warehouse=ref)
    table = catalog.load_table(("db", "events"))
    return sorted(table.scan().to_arrow().column("id").to_pylist())


def _data_files(lake: SparkLake) -> set[Path]:
    return {p for p in Path(urlparse(lake.server.warehouse).path).rglob("*.parquet")}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_appends_on_both_sides_replay_without_writing_data(lake: SparkLake, mode: str) -> None:
    _events(lake, mode)
    lake.sql("INSERT INTO {lv}.db@dev.events VALUES (10, 'mon'), (11, 'wed')")
    lake.sql("INSERT INTO {lv}.db.events VALUES (20, 'mon')")
    files = _data_files(lake)
    dry = lake.rows("MERGE BRANCH dev INTO main DRY RUN")
    assert [(r.table, r.action) for r in dry] == [("db.events", "REPLAYED")]
    stats = json.loads(dry[0].statistics)
    assert (stats["source"]["data_files_added"], stats["source"]["rows_added"]) == (2, 2)
    assert (stats["target"]["data_files_added"], stats["target"]["rows_added"]) == (1, 1)
    cli = CliRunner().invoke(cli_main, ["--store", lake.server.store.url, "merge", "dev",
                                        "--dry-run"])
    assert cli.exit_code == 0, cli.output
    assert "REPLAYED" in cli.output and "source: +2 / -0 data files, +2 / -0 rows" in cli.output
    rows = lake.rows("MERGE BRANCH dev INTO main")
    assert [(r.table, r.action, r.conflict_type) for r in rows] == [
        ("db.events", "REPLAYED", None)]
    assert _ids(lake) == [1, 2, 3, 10, 11, 20]
    assert _pyiceberg_ids(lake) == [1, 2, 3, 10, 11, 20]
    assert _data_files(lake) == files  # the merge reused dev's data files
    summary = lake.rows("SELECT summary FROM {lv}.db.events.snapshots "
                        "ORDER BY committed_at DESC LIMIT 1")[0].summary
    assert summary["lakeversion.merge.source-ref"] == "dev"
    assert summary["added-data-files"] == "2"


@pytest.mark.parametrize("mode", sorted(MODES))
def test_source_deletes_in_an_untouched_partition_replay(lake: SparkLake, mode: str) -> None:
    _events(lake, mode)
    lake.sql("DELETE FROM {lv}.db@dev.events WHERE id = 3")  # tue
    lake.sql("INSERT INTO {lv}.db.events VALUES (20, 'mon')")  # target appends in mon only
    rows = lake.rows("MERGE BRANCH dev INTO main")
    assert [r.action for r in rows] == ["REPLAYED"]
    assert _ids(lake) == [1, 2, 20]
    assert _pyiceberg_ids(lake) == [1, 2, 20]
    assert_df_equality(lake.sql("SELECT * FROM {lv}.db.events"),
                       lake.spark.createDataFrame([(1, "mon"), (2, "mon"), (20, "mon")],
                                                  "id INT, day STRING"),
                       ignore_row_order=True)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_delete_where_the_target_appended_conflicts_under_serializable(lake: SparkLake,
                                                                       mode: str) -> None:
    _events(lake, mode)
    lake.sql("DELETE FROM {lv}.db@dev.events WHERE id = 1")  # mon
    lake.sql("INSERT INTO {lv}.db.events VALUES (20, 'mon')")  # mon too
    head = lake.rows("SHOW LOG LIMIT 1")[0].commit_id
    dry = lake.rows("MERGE BRANCH dev INTO main DRY RUN")
    assert [(r.action, r.conflict_type) for r in dry] == [
        ("CONFLICT", "CONCURRENT_APPEND_IN_READ_PARTITION")]
    with pytest.raises(ConflictError):
        lake.sql("MERGE BRANCH dev INTO main")
    assert lake.rows("SHOW LOG LIMIT 1")[0].commit_id == head  # target unchanged
    assert _ids(lake) == [1, 2, 3, 20]
    # snapshot isolation allows it: through /api/v1 with a per-merge override
    answer = httpx.post(f"{lake.server.url}/api/v1/merge", json={
        "source": "dev", "target": "main", "options": {"isolation_level": "snapshot"}})
    assert answer.status_code == 200, answer.text
    assert [d["action"] for d in answer.json()["details"]] == ["REPLAYED"]
    assert _ids(lake) == [2, 3, 20]
    assert _pyiceberg_ids(lake) == [2, 3, 20]


def test_repeated_merges_in_both_directions(lake: SparkLake) -> None:
    _events(lake, "merge-on-read")
    expected = {1, 2, 3}
    for round_ in range(3):
        lake.sql(f"INSERT INTO {{lv}}.db@dev.events VALUES ({100 + round_}, 'mon')")
        lake.sql(f"INSERT INTO {{lv}}.db.events VALUES ({200 + round_}, 'tue')")
        expected |= {100 + round_, 200 + round_}
        assert [r.action for r in lake.rows("MERGE BRANCH dev INTO main")] == ["REPLAYED"]
        assert set(_ids(lake)) == expected
        # back into dev: dev has nothing main lacks, except the merge itself
        lake.sql("MERGE BRANCH main INTO dev")
        assert set(_ids(lake, "dev")) == expected
    assert _pyiceberg_ids(lake, "dev") == sorted(expected)


def test_update_against_delete_of_one_row_is_a_row_conflict_with_keys(lake: SparkLake
                                                                      ) -> None:
    """Both sides touched id 3's file: the merge goes down to rows. With identifier fields
    a delete against an update of one key is a ROW_CONFLICT; without them (`_events`) the
    update's new row is a row the target never saw, and it is merged."""
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.events (id INT NOT NULL, day STRING) USING iceberg "
             f"PARTITIONED BY (day) TBLPROPERTIES ('format-version'='2', "
             f"{MODES['merge-on-read']})")
    lake.sql("ALTER TABLE {lv}.db.events SET IDENTIFIER FIELDS id")
    lake.sql("INSERT INTO {lv}.db.events VALUES (1, 'mon'), (2, 'mon'), (3, 'tue')")
    lake.sql("CREATE BRANCH dev")
    lake.sql("UPDATE {lv}.db@dev.events SET day = 'mon' WHERE id = 3")
    lake.sql("DELETE FROM {lv}.db.events WHERE id = 3")
    rows: list[Any] = lake.rows("MERGE BRANCH dev INTO main DRY RUN")
    assert [(r.action, r.conflict_type) for r in rows] == [("CONFLICT", "ROW_CONFLICT")]
    assert "1 key(s) of db.events changed differently" in rows[0].message
    assert _ids(lake) == [1, 2]


def test_update_against_delete_without_keys_merges_the_new_row(lake: SparkLake) -> None:
    _events(lake, "merge-on-read")
    lake.sql("UPDATE {lv}.db@dev.events SET day = 'mon' WHERE id = 3")
    lake.sql("DELETE FROM {lv}.db.events WHERE id = 3")
    [row] = lake.rows("MERGE BRANCH dev INTO main")
    assert (row.action, row.conflict_type) == ("REPLAYED", None)
    assert json.loads(row.statistics)["row_merge"]["file_conflicts"] == ["CONCURRENT_DELETE"]
    assert _ids(lake) == _pyiceberg_ids(lake) == [1, 2, 3]
