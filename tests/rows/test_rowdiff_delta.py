"""The row diff of Delta tables between refs (branch logs, partitions, the identifier
property), equal to a plain diff of full reads; shared files never opened; deletion vectors
refused with a typed error naming them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.errors import UnsupportedTableFeature
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.formats.delta.rows import IDENTIFIER_PROPERTY, row_changes
from spark_lakeversion.model import Content
from tests.rows.helpers import as_counter, reference_diff

SCHEMA = pa.schema([("id", pa.int64()), ("p", pa.string()), ("v", pa.int64())])


def rows(*values: tuple[int, str, int]) -> pa.Table:
    return pa.table({"id": [r[0] for r in values], "p": [r[1] for r in values],
                     "v": [r[2] for r in values]}, schema=SCHEMA)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with connect(f"sqlite:///{tmp_path / 'store.db'}", author="tester",
                 warehouse=str(tmp_path / "warehouse")) as cat:
        for name, config in (("db.keyed", {IDENTIFIER_PROPERTY: "id"}), ("db.bag", {})):
            handle = cat.branch("main").delta(name)
            handle.create(SCHEMA, partition_by=["p"], configuration=config)
            handle.append(rows((1, "a", 10), (2, "a", 20), (3, "b", 30)))
            handle.append(rows((4, "c", 40), (4, "c", 40)))
        cat.store.create_ref("dev")
        yield cat


def test_updates_deletes_and_inserts_on_a_branch_log(catalog: Catalog) -> None:
    dev = catalog.branch("dev")
    for name in ("db.keyed", "db.bag"):
        handle = dev.delta(name)
        handle.update({"v": "21"}, "id = 2")
        handle.delete("id = 3")
        handle.append(rows((5, "b", 50), (4, "c", 40)))
    keyed = catalog.ref("main").diff_rows("dev", "db.keyed")
    assert keyed.to_pylist() == [
        {"change": "update_before", "id": 2, "p": "a", "v": 20},
        {"change": "update_after", "id": 2, "p": "a", "v": 21},
        {"change": "delete", "id": 3, "p": "b", "v": 30},
        {"change": "insert", "id": 4, "p": "c", "v": 40},
        {"change": "insert", "id": 5, "p": "b", "v": 50}]
    for name, key in (("db.keyed", "id"), ("db.bag", None)):
        got = catalog.ref("main").diff_rows("dev", name)
        main = catalog.ref("main").delta(name).to_arrow().to_pylist()
        after = catalog.ref("dev").delta(name).to_arrow().to_pylist()
        assert as_counter(got) == reference_diff(main, after, key), name
    summary = catalog.ref("main").diff_rows("dev", "db.keyed", summary=True).to_pylist()
    assert summary == [{"partition": "p=a", "inserted": 0, "deleted": 0, "updated": 1},
                       {"partition": "p=b", "inserted": 1, "deleted": 1, "updated": 0},
                       {"partition": "p=c", "inserted": 1, "deleted": 0, "updated": 0}]


def test_shared_files_are_never_opened(catalog: Catalog) -> None:
    dev = catalog.branch("dev").delta("db.keyed")
    dev.delete("id = 3")  # rewrites partition b's file only
    before = catalog.store.get_content("main", "db.keyed")
    after = catalog.store.get_content("dev", "db.keyed")
    changes = row_changes(before, after, {})
    list(changes.before.batches())
    list(changes.after.batches())
    assert changes.skipped == 2  # a's and c's files
    opened = changes.counter.paths()
    assert opened == {f.path for f in changes.before.files} | {f.path for f in
                                                               changes.after.files}
    assert len(opened) == 1 and all("p=b" in p or "p%3Db" in p for p in opened)


def test_deletion_vectors_are_refused_by_name(tmp_path: Path) -> None:
    import deltalake

    location = tmp_path / "dv"
    deltalake.write_deltalake(str(location), rows((1, "a", 1)))
    (location / "_delta_log" / "00000000000000000001.json").write_text(json.dumps(
        {"protocol": {"minReaderVersion": 3, "minWriterVersion": 7,
                      "readerFeatures": ["deletionVectors"],
                      "writerFeatures": ["deletionVectors"]}}) + "\n")
    table_id = deltalake.DeltaTable(str(location)).metadata().id
    state = Content(DELTA_TABLE, table_id, {"location": location.as_uri(), "version": 1})
    with pytest.raises(UnsupportedTableFeature, match="deletion vectors"):
        row_changes(None, state, {})


def test_a_changes_check_on_a_delta_table(catalog: Catalog) -> None:
    """`changes.db.keyed` in a SQL check: the rows the merge brings, from the branch log's
    new files only."""
    from spark_lakeversion.errors import ChecksFailed
    from spark_lakeversion.model import CheckKind, CheckSpec

    catalog.store.add_check(CheckSpec(
        "main", "small_values", CheckKind.SQL,
        "SELECT id, v FROM changes.db.keyed WHERE change IN ('insert', 'update_after') "
        "AND v > 100"))
    catalog.branch("dev").delta("db.keyed").append(rows((6, "a", 60)))
    assert catalog.store.merge("dev", "main").checks[0]["status"] == "passed"
    catalog.store.create_ref("dev2")
    catalog.branch("dev2").delta("db.keyed").update({"v": "500"}, "id = 1")
    with pytest.raises(ChecksFailed) as caught:
        catalog.store.merge("dev2", "main")
    assert caught.value.reports[0]["samples"] == [{"id": 1, "v": 500}]
