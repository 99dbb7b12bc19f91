"""Row-level merge of tables Spark wrote (issue 23, section 2): both sides edit rows of one
copy-on-write or merge-on-read file, with and without identifier fields; `MERGE BRANCH`
merges them, checked by scanning with Spark, pyiceberg and DuckDB."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spark_lakeversion.errors import ConflictError, InvalidInput
from tests.spark.helpers import MODES, SparkLake, expected, scanned, table


def merged(lake: SparkLake, sql: str = "MERGE BRANCH dev INTO main", rewrites: int = 1
           ) -> dict[str, Any]:
    [row] = lake.rows(sql)
    assert (row.table, row.action, row.conflict_type) == ("db.t", "REPLAYED", None)
    stats = json.loads(row.statistics)["row_merge"]
    assert stats["file_conflicts"] and stats["files_rewritten"] >= rewrites
    return dict(stats)


CASES = [(mode, keyed) for mode in sorted(MODES) for keyed in (True, False)]
IDS = [f"{mode}-{'keyed' if keyed else 'keyless'}" for mode, keyed in CASES]


@pytest.mark.parametrize(("mode", "keyed"), CASES, ids=IDS)
def test_two_updates_of_different_ids_merge_to_both(lake: SparkLake, mode: str,
                                                    keyed: bool) -> None:
    table(lake, mode, keyed)
    lake.sql("UPDATE {lv}.db.t SET v = 'main' WHERE id = 1")
    lake.sql("UPDATE {lv}.db@dev.t SET v = 'dev' WHERE id = 2")
    dry = lake.rows("MERGE BRANCH dev INTO main DRY RUN")
    assert [(r.action, r.conflict_type) for r in dry] == [("REPLAYED", None)]
    merged(lake)
    assert scanned(lake) == expected({1: (1, "main", 1)}, {2: (2, "dev", 2)})


@pytest.mark.parametrize(("mode", "keyed"), CASES, ids=IDS)
def test_two_deletes_of_different_ids_merge_to_both(lake: SparkLake, mode: str,
                                                    keyed: bool) -> None:
    table(lake, mode, keyed)
    lake.sql("DELETE FROM {lv}.db.t WHERE id = 3")
    lake.sql("DELETE FROM {lv}.db@dev.t WHERE id = 4")
    lake.sql("MERGE BRANCH dev INTO main")
    assert scanned(lake) == expected({3: None, 4: None})


@pytest.mark.parametrize("mode", sorted(MODES))
def test_same_cell_to_different_values_is_a_row_conflict(lake: SparkLake, mode: str) -> None:
    table(lake, mode, keyed=True)
    lake.sql("UPDATE {lv}.db.t SET v = 'main' WHERE id = 5")
    lake.sql("UPDATE {lv}.db@dev.t SET v = 'dev' WHERE id = 5")
    head = lake.rows("SHOW LOG LIMIT 1")[0].commit_id
    [dry] = lake.rows("MERGE BRANCH dev INTO main DRY RUN")
    assert (dry.action, dry.conflict_type) == ("CONFLICT", "ROW_CONFLICT")
    assert "1 key(s) of db.t changed differently on both sides" in dry.message
    with pytest.raises(ConflictError) as caught:
        lake.sql("MERGE BRANCH dev INTO main")
    [conflict] = caught.value.conflicts
    assert conflict.details["keys"][0]["key"] == {"id": 5}
    assert lake.rows("SHOW LOG LIMIT 1")[0].commit_id == head  # target unchanged
    assert scanned(lake) == expected({5: (5, "main", 5)})
    merged(lake, "MERGE BRANCH dev INTO main ON ROW CONFLICT source_wins")
    assert scanned(lake) == expected({5: (5, "dev", 5)})


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "keyless"])
def test_same_update_on_both_sides_merges(lake: SparkLake, keyed: bool) -> None:
    table(lake, "copy-on-write", keyed)
    for ref in ("main", "dev"):
        lake.sql(f"UPDATE {{lv}}.`db@{ref}`.t SET n = 60 WHERE id = 6")
    lake.sql("MERGE BRANCH dev INTO main")
    assert scanned(lake) == expected({6: (6, "v6", 60)})


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "keyless"])
def test_merge_on_read_delete_on_one_side_copy_on_write_on_the_other(lake: SparkLake,
                                                                      keyed: bool) -> None:
    table(lake, "copy-on-write", keyed)
    lake.sql("ALTER TABLE {lv}.db@dev.t SET TBLPROPERTIES ('write.delete.mode'='merge-on-read')")
    lake.sql("DELETE FROM {lv}.db@dev.t WHERE id = 7")  # a position delete on dev
    lake.sql("UPDATE {lv}.db.t SET v = 'main' WHERE id = 8")  # main rewrites the file
    merged(lake)
    assert scanned(lake) == expected({7: None}, {8: (8, "main", 8)})


def test_a_delete_against_an_update_is_a_row_conflict_with_keys(lake: SparkLake) -> None:
    table(lake, "merge-on-read", keyed=True)
    lake.sql("UPDATE {lv}.db@dev.t SET v = 'dev' WHERE id = 3")
    lake.sql("DELETE FROM {lv}.db.t WHERE id = 3")
    [dry] = lake.rows("MERGE BRANCH dev INTO main DRY RUN")
    assert (dry.action, dry.conflict_type) == ("CONFLICT", "ROW_CONFLICT")
    # the target's delete wins: its files stay as they are
    merged(lake, "MERGE BRANCH dev INTO main ON ROW CONFLICT target_wins", rewrites=0)
    assert scanned(lake) == expected({3: None})


def test_a_bad_row_conflict_resolution_is_refused(lake: SparkLake) -> None:
    table(lake, "copy-on-write", keyed=True)
    head = lake.rows("SHOW LOG LIMIT 1")[0].commit_id
    # the shim spells no resolution: the server refuses it, naming its own
    with pytest.raises(InvalidInput,
                       match="unknown row_conflicts 'ours': use source-wins or target-wins"):
        lake.sql("MERGE BRANCH dev INTO main ON ROW CONFLICT ours")
    assert lake.rows("SHOW LOG LIMIT 1")[0].commit_id == head
