"""Every Delta table is also an Iceberg table: stock pyiceberg and DuckDB's Iceberg
extension read Delta tables through the REST catalog, at any ref, with the metadata
generated from the Delta log at that ref's version."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.conversions import from_bytes
from pyiceberg.exceptions import BadRequestError
from pyiceberg.types import LongType

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.formats.delta.iceberg import translate
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.formats.delta.helpers import (
    ID_P_V_ARROW,
    add_action,
    data,
    delta_metadata,
    write_log,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh")) as srv:
        yield srv


@pytest.fixture
def lake(server: EmbeddedServer, tmp_path: Path) -> Iterator[Catalog]:
    with connect(server.url, warehouse=str(tmp_path / "wh"), author="tester") as cat:
        yield cat


def rest(server: EmbeddedServer) -> RestCatalog:
    return RestCatalog("lv", uri=server.iceberg_uri)


def rows(table: Any) -> list[tuple[Any, ...]]:
    """Sorted rows of a table (or of a scan)."""
    got = (table.scan() if hasattr(table, "scan") else table).to_arrow()
    return sorted(zip(*(got.column(c).to_pylist() for c in got.column_names)))


def test_pyiceberg_reads_a_partitioned_delta_table_at_every_ref(
        lake: Catalog, server: EmbeddedServer) -> None:
    events = lake.branch("main").delta("db.events")
    events.create(ID_P_V_ARROW, partition_by=["p"])
    events.append(data((1, "a", 10), (2, "a", 20), (3, "b", 30)))
    lake.tag("v1").create("main")
    events.append(data((4, "a", 40)))
    events.delete("id = 2")
    cat = rest(server)
    table = cat.load_table("db.events")
    assert rows(table) == [(1, "a", 10), (3, "b", 30), (4, "a", 40)]
    # one snapshot per Delta version, each naming its version; identity partition on p
    assert [s.summary["delta-version"] for s in table.metadata.snapshots] == \
        ["0", "1", "2", "3"]
    assert [f.name for f in table.spec().fields] == ["p"]
    assert str(table.spec().fields[0].transform) == "identity"
    # the ids are derived, so a second load (and another process) agrees
    again = RestCatalog("again", uri=server.iceberg_uri).load_table("db.events")
    assert [s.snapshot_id for s in again.metadata.snapshots] == \
        [s.snapshot_id for s in table.metadata.snapshots]
    assert [s.sequence_number for s in table.metadata.snapshots] == [1, 2, 3, 4]
    # Iceberg time travel inside the served history
    first = table.metadata.snapshots[1].snapshot_id
    assert rows(table.scan(snapshot_id=first)) == [(1, "a", 10), (2, "a", 20), (3, "b", 30)]
    # refs: a tag, ~N and a branch, by db@ref
    assert rows(cat.load_table(("db@v1", "events"))) == \
        [(1, "a", 10), (2, "a", 20), (3, "b", 30)]
    assert rows(cat.load_table(("db@main~1", "events"))) == \
        [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "a", 40)]
    lake.branch("dev").create("main")
    lake.branch("dev").delta("db.events").append(data((5, "c", 50)))
    dev = cat.load_table(("db@dev", "events"))
    assert rows(dev) == [(1, "a", 10), (3, "b", 30), (4, "a", 40), (5, "c", 50)]
    # a branch log's history is main's up to the fork (same ids, same manifests), then its own
    main_ids = [s.snapshot_id for s in table.metadata.snapshots]
    assert [s.snapshot_id for s in dev.metadata.snapshots][:4] == main_ids
    assert [s.summary["delta-version"] for s in dev.metadata.snapshots] == \
        ["0", "1", "2", "3", "1"]
    assert [s.sequence_number for s in dev.metadata.snapshots] == [1, 2, 3, 4, 5]
    assert rows(cat.load_table("db.events")) == [(1, "a", 10), (3, "b", 30), (4, "a", 40)]
    assert cat.list_tables("db") == [("db", "events")]


def test_files_carry_counts_and_bounds_from_delta_stats(lake: Catalog,
                                                       server: EmbeddedServer) -> None:
    t = lake.branch("main").delta("db.plain")
    t.create(ID_P_V_ARROW)
    t.append(data((1, "x", 10), (7, "y", 70)))
    table = rest(server).load_table("db.plain")
    assert table.spec().is_unpartitioned()
    (task,) = list(table.scan().plan_files())
    f = task.file
    id_field = table.schema().find_field("id").field_id
    assert f.record_count == 2
    assert from_bytes(LongType(), f.lower_bounds[id_field]) == 1
    assert from_bytes(LongType(), f.upper_bounds[id_field]) == 7
    assert f.null_value_counts[id_field] == 0
    # filters prune on those bounds: a scan for id > 7 plans no file
    assert list(table.scan(row_filter="id > 7").plan_files()) == []
    mapping = json.loads(table.properties["schema.name-mapping.default"])
    assert [m["names"] for m in mapping] == [["id"], ["p"], ["v"]]
    assert table.properties["write.delete.mode"] == "copy-on-write"


def test_a_cached_load_reads_no_log_and_an_append_reads_one_log_file(
        lake: Catalog, server: EmbeddedServer) -> None:
    t = lake.branch("main").delta("db.c")
    t.create(ID_P_V_ARROW)
    t.append(data((1, "x", 10)))
    cat = rest(server)
    cat.load_table("db.c")
    before = translate.COUNTERS.log_files_read
    cat.load_table("db.c")
    assert translate.COUNTERS.log_files_read == before
    t.append(data((2, "x", 20)))
    written = translate.COUNTERS.manifests_written
    assert rows(cat.load_table("db.c")) == [(1, "x", 10), (2, "x", 20)]
    assert translate.COUNTERS.log_files_read == before + 1
    assert translate.COUNTERS.manifests_written == written + 1  # the new version's adds


def test_column_mapping_ids_are_the_delta_ids(lake: Catalog, server: EmbeddedServer,
                                              tmp_path: Path) -> None:
    root = tmp_path / "wh" / "ext" / "mapped"
    root.mkdir(parents=True)
    # physical names in the files, logical names in the schema, Delta's ids as field ids
    schema = pa.schema([pa.field("col-a1", pa.int64(), metadata={"PARQUET:field_id": "7"}),
                        pa.field("col-b2", pa.string(), metadata={"PARQUET:field_id": "9"})])
    pq.write_table(pa.table({"col-a1": [1, 2], "col-b2": ["x", "y"]}, schema=schema),
                   root / "part-0.parquet")
    fields = [{"name": "id", "type": "long", "nullable": True,
               "metadata": {"delta.columnMapping.id": 7,
                            "delta.columnMapping.physicalName": "col-a1"}},
              {"name": "label", "type": "string", "nullable": True,
               "metadata": {"delta.columnMapping.id": 9,
                            "delta.columnMapping.physicalName": "col-b2"}}]
    table_id = str(uuid.uuid4())
    write_log(root, 0, [
        {"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}},
        delta_metadata(table_id, fields, configuration={
            "delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": "9"}),
        add_action("part-0.parquet", 2, stats={"minValues": {"col-a1": 1},
                                               "maxValues": {"col-a1": 2},
                                               "nullCount": {"col-a1": 0}},
                   size=(root / "part-0.parquet").stat().st_size)])
    lake.branch("main").delta("db.mapped").register(str(root))
    table = rest(server).load_table("db.mapped")
    assert [(f.field_id, f.name) for f in table.schema().fields] == [(7, "id"), (9, "label")]
    assert rows(table) == [(1, "x"), (2, "y")]
    (task,) = list(table.scan().plan_files())
    assert from_bytes(LongType(), task.file.upper_bounds[7]) == 2
    # with column mapping a rename is a metaData version: the files keep their names
    with table.update_schema() as update:
        update.rename_column("label", "name")
    renamed = rest(server).load_table("db.mapped")
    assert [(f.field_id, f.name) for f in renamed.schema().fields] == [(7, "id"), (9, "name")]
    assert rows(renamed) == [(1, "x"), (2, "y")]
    handle = lake.branch("main").delta("db.mapped")
    assert handle.to_arrow().column_names == ["id", "name"]


def test_untranslatable_features_are_refused_naming_them(lake: Catalog,
                                                         server: EmbeddedServer,
                                                         tmp_path: Path) -> None:
    root = tmp_path / "wh" / "ext" / "dv"
    table_id = str(uuid.uuid4())
    fields = [{"name": "id", "type": "long", "nullable": True, "metadata": {}}]
    write_log(root, 0, [{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
                        delta_metadata(table_id, fields)])
    dv = add_action("a.parquet", 3)
    dv["add"]["deletionVector"] = {"storageType": "u", "pathOrInlineDv": "x",
                                   "offset": 1, "sizeInBytes": 4, "cardinality": 1}
    write_log(root, 1, [dv])
    lake.branch("main").delta("db.dv").register(str(root))
    answer = httpx.get(f"{server.iceberg_uri}/v1/namespaces/db/tables/dv")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "BadRequestException"
    assert "deletion vector" in error["message"] and "deletionVectors" in error["message"]


def test_a_ten_thousand_file_table_loads_with_every_file(lake: Catalog,
                                                         server: EmbeddedServer,
                                                         tmp_path: Path) -> None:
    root = tmp_path / "wh" / "ext" / "big"
    fields = [{"name": "id", "type": "long", "nullable": True, "metadata": {}},
              {"name": "p", "type": "string", "nullable": True, "metadata": {}}]
    write_log(root, 0, [{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
                        delta_metadata(str(uuid.uuid4()), fields, ["p"])])
    for version in range(1, 11):
        write_log(root, version, [
            add_action(f"p=k{i % 7}/f-{version}-{i}.parquet", 10, {"p": f"k{i % 7}"},
                       {"minValues": {"id": i}, "maxValues": {"id": i + 9},
                        "nullCount": {"id": 0}})
            for i in range(1000)])
    lake.branch("main").delta("db.big").register(str(root))
    table = rest(server).load_table("db.big")
    assert table.metadata.snapshots[-1].summary["total-data-files"] == "10000"
    assert table.metadata.snapshots[-1].summary["total-records"] == "100000"
    tasks = list(table.scan().plan_files())
    assert len(tasks) == 10000
    assert len(list(table.scan(row_filter="p = 'k3'").plan_files())) == 1430


def test_duckdb_reads_a_delta_table_through_the_iceberg_catalog(
        lake: Catalog, server: EmbeddedServer) -> None:
    import duckdb

    t = lake.branch("main").delta("db.events")
    t.create(ID_P_V_ARROW, partition_by=["p"])  # p is not in the files: from the manifests
    t.append(data((1, "a", 10), (2, "b", 20)))
    lake.branch("dev").create("main")
    lake.branch("dev").delta("db.events").append(data((3, "c", 30)))
    spec = importlib.util.find_spec("duckdb_ext")
    assert spec is not None and spec.submodule_search_locations
    extensions = Path(list(spec.submodule_search_locations)[0]) / "extensions"
    con = duckdb.connect(config={"extension_directory": str(extensions),
                                 "autoinstall_known_extensions": False})
    for name in ("avro", "iceberg"):
        con.execute(f"LOAD {name}")
    con.execute(f"ATTACH 'main' AS lv (TYPE iceberg, ENDPOINT '{server.iceberg_uri}', "
                "AUTHORIZATION_TYPE 'none')")
    assert con.execute("SELECT id, p, v FROM lv.db.events ORDER BY id").fetchall() == \
        [(1, "a", 10), (2, "b", 20)]
    con.execute(f"ATTACH 'dev' AS lv_dev (TYPE iceberg, ENDPOINT '{server.iceberg_uri}', "
                "AUTHORIZATION_TYPE 'none')")
    assert con.execute("SELECT id, p, v FROM lv_dev.db.events ORDER BY id").fetchall() == \
        [(1, "a", 10), (2, "b", 20), (3, "c", 30)]


def test_pyiceberg_writes_become_delta_versions_and_a_stale_commit_conflicts(
        lake: Catalog, server: EmbeddedServer) -> None:
    main = lake.branch("main").delta("db.events")
    main.create(ID_P_V_ARROW, partition_by=["p"])
    main.append(data((1, "a", 10), (2, "a", 20), (3, "b", 30)))
    lake.branch("dev").create("main")
    dev = lake.branch("dev").delta("db.events")
    cat = rest(server)
    table = cat.load_table(("db@dev", "events"))
    table.append(data((4, "c", 40)))
    expected = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "c", 40)]
    assert sorted(tuple(r.values()) for r in dev.to_arrow().to_pylist()) == expected
    assert rows(cat.load_table(("db@dev", "events"))) == expected
    assert rows(cat.load_table("db.events")) == expected[:3]  # main unchanged
    table = cat.load_table(("db@dev", "events"))
    table.delete("id = 2")
    expected.remove((2, "a", 20))
    assert sorted(tuple(r.values()) for r in dev.to_arrow().to_pylist()) == expected
    history = dev.history()
    assert history[0]["operation"] == "WRITE" and not history[0]["isBlindAppend"]
    # written by Iceberg, then by deltalake, then by Iceberg: one history
    dev.append(data((5, "a", 50)))
    stale = table.metadata
    cat.load_table(("db@dev", "events")).append(data((6, "a", 60)))
    body = {"requirements": [{"type": "assert-ref-snapshot-id", "ref": "main",
                              "snapshot-id": stale.current_snapshot_id}],
            "updates": []}
    answer = httpx.post(f"{server.iceberg_uri}/v1/namespaces/db@dev/tables/events",
                        json=body)
    assert answer.status_code == 409
    assert answer.json()["error"]["type"] == "CommitFailedException"
    assert sorted(tuple(r.values()) for r in dev.to_arrow().to_pylist()) == \
        [*expected, (5, "a", 50), (6, "a", 60)]
    # an overwrite by filter: copy-on-write removes and adds in one Delta version
    version = dev.version
    cat.load_table(("db@dev", "events")).overwrite(data((9, "a", 90)), "p = 'a'")
    assert dev.version == version + 1
    assert sorted(tuple(r.values()) for r in dev.to_arrow().to_pylist()) == \
        [(3, "b", 30), (4, "c", 40), (9, "a", 90)]
    assert rows(cat.load_table(("db@dev", "events"))) == [(3, "b", 30), (4, "c", 40),
                                                          (9, "a", 90)]


def test_an_iceberg_commit_naming_files_outside_the_table_root_is_refused(
        lake: Catalog, server: EmbeddedServer, tmp_path: Path) -> None:
    t = lake.branch("main").delta("db.t")
    t.create(ID_P_V_ARROW)
    table = rest(server).load_table("db.t")
    version = t.version
    outside = tmp_path / "wh" / "elsewhere"
    outside.mkdir(parents=True)
    pq.write_table(data((1, "a", 1)), outside / "x.parquet")
    with pytest.raises(BadRequestError, match="is not under the Delta table's root"):
        table.add_files([f"file://{outside / 'x.parquet'}"])
    assert t.version == version


def test_schema_and_property_changes_are_refused_with_the_reason(
        lake: Catalog, server: EmbeddedServer) -> None:
    t = lake.branch("main").delta("db.t")
    t.create(ID_P_V_ARROW)
    body = {"requirements": [], "updates": [{"action": "set-properties",
                                             "updates": {"a": "b"}}]}
    answer = httpx.post(f"{server.iceberg_uri}/v1/namespaces/db/tables/t", json=body)
    assert answer.status_code == 400
    assert "set-properties is not a change a Delta version can hold" in \
        answer.json()["error"]["message"]


def test_an_iceberg_create_asking_for_delta_makes_a_delta_table(
        lake: Catalog, server: EmbeddedServer) -> None:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import BucketTransform, IdentityTransform
    from pyiceberg.types import IntegerType, NestedField, StringType

    cat = rest(server)
    cat.create_namespace("db")
    schema = Schema(NestedField(1, "id", IntegerType()), NestedField(2, "p", StringType()))
    spec = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "p"))
    table = cat.create_table("db.made", schema, partition_spec=spec,
                             properties={"lakeversion.table-format": "delta"})
    assert table.metadata.properties["write.delete.mode"] == "copy-on-write"
    handle = lake.branch("main").delta("db.made")
    assert handle.table.metadata().partition_columns == ["p"]
    table.append(pa.table({"id": pa.array([1], pa.int32()), "p": ["x"]}))
    assert handle.to_arrow().to_pylist() == [{"id": 1, "p": "x"}]
    bucketed = PartitionSpec(PartitionField(1, 1000, BucketTransform(4), "b"))
    with pytest.raises(BadRequestError, match="partitions by column values only"):
        cat.create_table("db.bad", schema, partition_spec=bucketed,
                         properties={"lakeversion.table-format": "delta"})
    with pytest.raises(BadRequestError, match="creates iceberg or delta tables"):
        cat.create_table("db.bad", schema, properties={"lakeversion.table-format": "hudi"})


def test_schema_changes_delta_can_express_become_a_metadata_action(
        lake: Catalog, server: EmbeddedServer) -> None:
    from pyiceberg.types import StringType

    t = lake.branch("main").delta("db.s")
    t.create(ID_P_V_ARROW)
    t.append(data((1, "a", 10)))
    cat = rest(server)
    table = cat.load_table("db.s")
    with table.update_schema() as update:
        update.add_column("note", StringType())
    assert [f["name"] for f in json.loads(t.table.schema().to_json())["fields"]] == \
        ["id", "p", "v", "note"]
    assert t.history()[0]["operation"] == "CHANGE COLUMNS"
    table = cat.load_table("db.s")
    assert table.schema().find_field("note").field_id == 4
    table.append(pa.table({"id": [2], "p": ["b"], "v": [20], "note": ["hi"]},
                          schema=table.schema().as_arrow()))
    got = t.to_arrow()
    assert sorted(zip(got["id"].to_pylist(), got["note"].to_pylist())) == \
        [(1, None), (2, "hi")]
    version = t.version
    with pytest.raises(BadRequestError, match="renames columns only with column mapping"), \
            cat.load_table("db.s").update_schema() as update:
        update.rename_column("v", "value")
    with pytest.raises(BadRequestError, match="earlier schema current again"), \
            cat.load_table("db.s").update_schema() as update:
        update.delete_column("note")
    assert t.version == version


def test_drop_and_rename_through_the_iceberg_catalog_cover_delta_tables(
        lake: Catalog, server: EmbeddedServer) -> None:
    t = lake.branch("main").delta("db.events")
    t.create(ID_P_V_ARROW)
    t.append(data((1, "a", 10)))
    lake.branch("dev").create("main")
    cat = rest(server)
    cat.rename_table(("db@dev", "events"), ("db@dev", "renamed"))
    assert rows(cat.load_table(("db@dev", "renamed"))) == [(1, "a", 10)]
    assert lake.ref("dev").delta("db.renamed").to_arrow().num_rows == 1
    cat.drop_table(("db@dev", "renamed"))
    assert cat.list_tables(("db@dev",)) == []
    assert rows(cat.load_table("db.events")) == [(1, "a", 10)]  # main keeps it


def test_a_log_cleaned_up_to_a_checkpoint_starts_its_history_there(
        lake: Catalog, server: EmbeddedServer, tmp_path: Path) -> None:
    from deltalake import DeltaTable, write_deltalake

    root = tmp_path / "wh" / "ext" / "cleaned"
    for i in range(3):
        write_deltalake(str(root), data((i, "a", i * 10)), mode="append")
    DeltaTable(str(root)).create_checkpoint()
    (root / "_delta_log" / f"{0:020d}.json").unlink()
    (root / "_delta_log" / f"{1:020d}.json").unlink()
    lake.branch("main").delta("db.cleaned").register(str(root))
    table = rest(server).load_table("db.cleaned")
    assert rows(table) == [(0, "a", 0), (1, "a", 10), (2, "a", 20)]
    assert [s.summary["delta-version"] for s in table.metadata.snapshots] == ["2"]
    (task, *_) = list(table.scan(row_filter="id = 1").plan_files())
    assert task.file.record_count == 1  # bounds from the checkpoint's stats prune the rest
    assert len(list(table.scan(row_filter="id = 1").plan_files())) == 1


def test_concurrent_iceberg_appends_on_one_branch_all_land_once(
        lake: Catalog, server: EmbeddedServer) -> None:
    import threading

    t = lake.branch("main").delta("db.race")
    t.create(ID_P_V_ARROW)
    lake.branch("dev").create("main")  # the first writer forks dev's log, the others follow
    errors: list[BaseException] = []

    def append(i: int) -> None:
        try:
            table = RestCatalog(f"c{i}", uri=server.iceberg_uri).load_table(("db@dev", "race"))
            table.append(data((i, "a", i)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    dev = lake.branch("dev").delta("db.race")
    assert sorted(r["id"] for r in dev.to_arrow().to_pylist()) == [0, 1, 2, 3]
    assert rows(rest(server).load_table(("db@dev", "race"))) == \
        [(0, "a", 0), (1, "a", 1), (2, "a", 2), (3, "a", 3)]
    # one log: the fork, then one version per append; the losers' forks left no log file
    branches = Path(dev.state().root.removeprefix("file://")) / "_branches"
    assert len([d for d in branches.iterdir() if any(d.rglob("*.json"))]) == 1
    assert dev.version == 4


def test_a_log_naming_itself_as_its_parent_is_served_without_a_parent(
        lake: Catalog, server: EmbeddedServer, tmp_path: Path) -> None:
    root = tmp_path / "wh" / "ext" / "selfish"
    fields = [{"name": "id", "type": "long", "nullable": True, "metadata": {}}]
    log_dir = root / "_delta_log"
    log_dir.mkdir(parents=True)
    info = {"commitInfo": {"timestamp": 1, "operation": "LAKEVERSION BRANCH",
                           "operationParameters": {"parentLocation": f"file://{root}",
                                                   "parentVersion": "0"}}}
    actions = [info, {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
               delta_metadata(str(uuid.uuid4()), fields)]
    (log_dir / f"{0:020d}.json").write_text("".join(json.dumps(a) + "\n" for a in actions))
    lake.branch("main").delta("db.selfish").register(str(root))
    table = rest(server).load_table("db.selfish")  # answers; never waits on itself
    assert [s.summary["delta-version"] for s in table.metadata.snapshots] == ["0"]
