"""The row diff of tables Spark wrote on branches: copy-on-write, merge-on-read with
position deletes (format 2) and deletion vectors (format 3), with and without identifier
fields; equal to the plain diff of two full scans; untouched data files never opened (a
data file both sides share is read only when a delete file of one side applies to it)."""

from __future__ import annotations

from typing import Any

import pytest
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.errors import InvalidInput, KeyNotFound, LakeVersionError, RefNotFound
from spark_lakeversion.formats.iceberg.rows import row_changes
from tests.rows.helpers import as_counter, reference_diff
from tests.spark.helpers import SparkLake

MODES = {
    "cow-v2": "'format-version'='2'",
    "mor-v2": ("'format-version'='2', 'write.delete.mode'='merge-on-read', "
               "'write.update.mode'='merge-on-read', 'write.merge.mode'='merge-on-read'"),
    "mor-v3": ("'format-version'='3', 'write.delete.mode'='merge-on-read', "
               "'write.update.mode'='merge-on-read', 'write.merge.mode'='merge-on-read'"),
}


def _scan(lake: SparkLake, ref: str) -> list[dict[str, Any]]:
    table = RestCatalog("c", uri=lake.server.iceberg_uri, warehouse=ref).load_table("db.t")
    return table.scan().to_arrow().to_pylist()  # type: ignore[no-any-return]


def _files(lake: SparkLake, ref: str) -> dict[str, set[str]]:
    name = "db.t" if ref == "main" else f"`db@{ref}`.t"
    data = {r.file_path for r in lake.rows(f"SELECT file_path FROM {{lv}}.{name}.data_files")}
    deletes = {r.file_path for r in lake.rows(
        f"SELECT file_path FROM {{lv}}.{name}.delete_files")}
    return {"data": data, "deletes": deletes}


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "keyless"])
@pytest.mark.parametrize("mode", list(MODES))
def test_spark_written_changes(lake: SparkLake, mode: str, keyed: bool) -> None:
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql(f"CREATE TABLE {{lv}}.db.t (id INT NOT NULL, v STRING) USING iceberg "
             f"TBLPROPERTIES ({MODES[mode]})")
    if keyed:
        lake.sql("ALTER TABLE {lv}.db.t SET IDENTIFIER FIELDS id")
    for part in range(4):
        lake.sql(f"INSERT INTO {{lv}}.db.t SELECT /*+ REPARTITION(1) */ CAST(id AS INT), "
                 f"CONCAT('v', id) FROM range({part * 5}, {part * 5 + 5})")
    lake.sql("CREATE BRANCH dev")
    lake.sql("UPDATE {lv}.db@dev.t SET v = 'three' WHERE id = 3")
    lake.sql("DELETE FROM {lv}.db@dev.t WHERE id = 12")
    lake.sql("INSERT INTO {lv}.db@dev.t VALUES (100, 'new'), (3, 'v3')" if not keyed
             else "INSERT INTO {lv}.db@dev.t VALUES (100, 'new')")

    store = lake.server.store
    changes = row_changes(store.get_content("main", "db.t"), store.get_content("dev", "db.t"),
                          store.io_properties)
    got = store.diff_rows("main", "dev", "db.t").rows
    assert as_counter(got) == reference_diff(_scan(lake, "main"), _scan(lake, "dev"),
                                             "id" if keyed else None)
    if keyed:
        assert [(r["change"], r["id"], r["v"]) for r in got.to_pylist()] == [
            ("update_before", 3, "v3"), ("update_after", 3, "three"), ("delete", 12, "v12"),
            ("insert", 100, "new")]

    list(changes.before.batches())
    list(changes.after.batches())
    main, dev = _files(lake, "main"), _files(lake, "dev")
    one_side = (main["data"] ^ dev["data"]) | (main["deletes"] ^ dev["deletes"])
    touched = {f.path for f in changes.after.files} | {f.path for f in changes.before.files}
    opened = changes.counter.paths()
    # one side's files, the changed data files and the delete files applying to them
    assert opened <= one_side | touched | main["deletes"] | dev["deletes"]
    # the files of ids 5..9 (neither updated nor deleted) are shared and never opened
    untouched = {p for p in main["data"] & dev["data"] if p not in touched}
    assert len(untouched) == 2 and not opened & untouched
    if mode.startswith("mor"):
        assert dev["deletes"] and dev["deletes"] <= opened


def test_show_diff_rows_in_spark_sql(orders: SparkLake) -> None:
    """`SHOW DIFF FROM a TO b FOR TABLE db.t ROWS`: the server's row diff as a relation Spark
    can query, `change` first, the table's columns and types after."""
    orders.sql("CREATE BRANCH dev")
    orders.sql("UPDATE {lv}.db@dev.t SET v = 'B' WHERE id = 2")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    frame = orders.sql("SHOW DIFF FROM main TO dev FOR TABLE db.t ROWS")
    assert [(f.name, f.dataType.simpleString()) for f in frame.schema.fields] == [
        ("change", "string"), ("id", "int"), ("v", "string")]
    assert sorted(tuple(r) for r in frame.collect()) == [
        ("delete", 2, "b"), ("insert", 2, "B"), ("insert", 3, "c")]
    assert len(orders.rows("SHOW DIFF FROM main TO dev FOR TABLE db.t ROWS LIMIT 1")) == 1
    orders.sql("SHOW DIFF FROM main TO dev FOR TABLE db.t ROWS") \
        .createOrReplaceTempView("changed")
    assert orders.rows("SELECT count(*) FROM changed WHERE change = 'insert'")[0][0] == 2


@pytest.mark.parametrize(("statement", "error", "says"), [
    ("SHOW DIFF FROM main TO main ROWS", InvalidInput, "FOR TABLE"),
    ("SHOW DIFF FROM main TO main FOR TABLE db.t", InvalidInput, "ROWS"),
    ("SHOW DIFF FROM main TO main FOR TABLE db.t ROWS LIMIT x", InvalidInput, "LIMIT"),
    ("SHOW DIFF FROM main TO nope FOR TABLE db.t ROWS", RefNotFound, "'nope'"),
    ("SHOW DIFF FROM main TO main FOR TABLE db.none ROWS", KeyNotFound, "db.none"),
])
def test_show_diff_rows_bad_input_is_typed(orders: SparkLake, statement: str,
                                           error: type[LakeVersionError], says: str) -> None:
    with pytest.raises(error, match=says):
        orders.sql(statement).collect()
