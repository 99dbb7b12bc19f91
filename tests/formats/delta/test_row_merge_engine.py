"""A Delta row merge run by an engine outside the server (issue 23, "Scale";
`formats/delta/row_engine.py`), without Spark: the plan the server issues for a Delta table,
the files an engine hands back turned into one Delta version (add actions with relative
paths, sizes, stats and partition values read from the files' footers), and the guards:
files outside the issued staging directory or outside the merge's region are a typed 400,
nothing written and nothing deleted; files gc may have collected are refused by its fence
(409). The same rows from Spark itself:
tests/spark/test_row_merge_delta_engine.py. The table `db.t` (id, p, v) is partitioned by p,
ids 1..10 in one file of partition a, id 11 in partition b; main and dev update different ids
of the first file."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.io.pyarrow import schema_to_pyarrow

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ConflictError, InvalidInput, LocationNotAllowed
from spark_lakeversion.fileio import FileIOConfig, pyarrow_filesystem
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.iceberg.translate import load
from spark_lakeversion.gc.fence import FilesMayBeCollected
from spark_lakeversion.wiring import open_store
from tests.formats.delta.helpers import all_files, independent_rows, rows
from tests.s3.helpers import MotoS3

SCHEMA = pa.schema([("id", pa.int64()), ("p", pa.string()), ("v", pa.int64())])
BASE = [(i, "a", i * 10) for i in range(1, 11)]
MERGED = sorted([(1, "a", 111), (2, "a", 222), *BASE[2:]])
OTHER = (11, "b", 110)  # a file of partition b neither side changed


def build(catalog: Catalog, keyed: bool = True) -> Catalog:
    main = catalog.branch("main").delta("db.t")
    main.create(SCHEMA, partition_by=["p"],
                configuration={"lakeversion.identifierFields": "id"} if keyed else {})
    main.append(pa.Table.from_pylist([dict(zip(("id", "p", "v"), r, strict=True))
                                      for r in BASE], schema=SCHEMA))
    main.append(pa.table({"id": [11], "p": ["b"], "v": [110]}, schema=SCHEMA))
    catalog.branch("dev").create()
    catalog.branch("main").delta("db.t").update({"v": "111"}, "id = 1")
    catalog.branch("dev").delta("db.t").update({"v": "222"}, "id = 2")
    return catalog


@pytest.fixture
def lake(tmp_path: Path) -> Catalog:
    return build(Catalog(open_store(f"sqlite:///{tmp_path / 'store.db'}"), author="tester",
                         warehouse=str(tmp_path / "warehouse")))


def plan_of(lake: Catalog, source: str = "dev", target: str = "main") -> dict[str, Any]:
    result = lake.store.merge(source, target, dry_run=True, plan_only=True, plan_rows=True)
    [detail] = result.details
    assert detail.conflict is not None  # planned, not merged: the file conflict stands
    row_merge = detail.statistics["row_merge"]
    assert row_merge["engine"] == "spark"
    return dict(row_merge["plan"])


def root(lake: Catalog) -> Path:
    state = lake.branch("main").delta("db.t").state()
    return Path(state.root.removeprefix("file://"))


def files(lake: Catalog) -> set[Path]:
    return {p for p in root(lake).rglob("*") if p.is_file()}


def staged_file(lake: Catalog, plan: dict[str, Any], merged: list[tuple[Any, ...]],
                where: str | None = None) -> str:
    """The merged rows as an Iceberg writer writes them for the table served at the
    target's state (field ids, the partition column kept), under the plan's staging
    directory (or `where`)."""
    state = lake.branch("main").delta("db.t").state()
    arrow = schema_to_pyarrow(load(state).metadata.schema(), include_field_ids=True)
    table = pa.Table.from_pylist([dict(zip(("id", "p", "v"), r, strict=True))
                                  for r in merged], schema=arrow)
    target = where or f"{plan['write']['staging']}/p=a/00000-0-engine.parquet"
    path = Path(target.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return target


def region_file(plan: dict[str, Any], label: str) -> str:
    [scan] = [s for s in plan["scans"] if s["view"].endswith(f"_{label}_scan")]
    [path] = scan["files"]
    return str(path)


def results(plan: dict[str, Any], removed: list[str], written: list[str]) -> dict[str, Any]:
    return {"db.t": {"commits": plan["commits"], "staging": plan["write"]["staging"],
                     "conflict_count": 0, "removed": removed, "written": written}}


def test_the_plan_stages_under_the_delta_tables_root(lake: Catalog) -> None:
    before = files(lake)
    plan = plan_of(lake)
    staging = plan["write"]["staging"]
    assert staging.rsplit("/", 1)[0] == f"file://{root(lake)}"
    assert staging.rsplit("/", 1)[1].startswith("lv-rowmerge-")
    head = lake.store.get_ref("main").head
    assert plan["write"]["namespace"] == [f"db@{head}"] and plan["write"]["name"] == "t"
    assert plan["write"]["spec_id"] == 0
    assert {s["namespace"][0] for s in plan["scans"]} == \
        {f"db@{c}" for c in plan["commits"].values()}
    # planning wrote no data: at most the Iceberg view Spark loads next, cached
    assert all("_lakeversion_iceberg" in p.parts for p in files(lake) - before)
    assert not Path(staging.removeprefix("file://")).exists()
    assert plan_of(lake)["write"]["staging"] != staging  # a fresh directory each time


def test_an_engines_files_become_one_delta_version(lake: Catalog) -> None:
    plan = plan_of(lake)
    written = staged_file(lake, plan, MERGED)
    removed = region_file(plan, "tnew")  # the target's rewrite of the shared file
    main = lake.branch("main").delta("db.t")
    version = main.state().version
    result = lake.store.merge("dev", "main", row_results=results(plan, [removed], [written]))
    stats = result.details[0].statistics["row_merge"]
    assert stats["engine"] == "spark"
    assert (stats["files_rewritten"], stats["files_written"], stats["rows_rewritten"]) == \
        (1, 1, 10)
    assert stats["bytes_written"] == Path(written.removeprefix("file://")).stat().st_size
    main = lake.branch("main").delta("db.t")
    state = main.state()
    assert state.version == version + 1  # one Delta version
    assert rows(main) == independent_rows(main) == sorted([*MERGED, OTHER])
    [add] = [a["add"] for a in log.commit_actions(state.location, state.version)
             if "add" in a]
    assert add["path"] == written.split(f"{root(lake)}/", 1)[1]  # relative to the log
    assert add["partitionValues"] == {"p": "a"}
    assert add["size"] == Path(written.removeprefix("file://")).stat().st_size
    assert json.loads(add["stats"]) == {"numRecords": 10, "minValues": {"id": 1, "v": 30},
                                        "maxValues": {"id": 10, "v": 222},
                                        "nullCount": {"id": 0, "v": 0}}
    [remove] = [a["remove"] for a in log.commit_actions(state.location, state.version)
                if "remove" in a]
    assert log.file_id(state.location, remove["path"]) == log.file_id(removed, removed)


def test_merged_into_a_branch_log_the_add_reaches_up_to_the_staging_directory(
        lake: Catalog) -> None:
    plan = plan_of(lake, "main", "dev")
    written = staged_file(lake, plan, MERGED)
    lake.store.merge("main", "dev", row_results=results(
        plan, [region_file(plan, "tnew")], [written]))
    dev = lake.branch("dev").delta("db.t")
    state = dev.state()
    assert state.location != state.root  # dev's own log, under the table's _branches/
    assert rows(dev) == independent_rows(dev) == sorted([*MERGED, OTHER])
    [add] = [a["add"] for a in log.commit_actions(state.location, state.version)
             if "add" in a]
    assert add["path"].startswith("../../lv-rowmerge-")  # relative, as Delta readers resolve
    assert log.file_id(state.location, add["path"]) == log.file_id(written, written)


def test_a_file_outside_the_staging_directory_is_refused(lake: Catalog) -> None:
    plan = plan_of(lake)
    outside = staged_file(lake, plan, MERGED, f"file://{root(lake)}/p=a/elsewhere.parquet")
    head, before = lake.store.get_ref("main").head, files(lake)
    with pytest.raises(LocationNotAllowed, match="elsewhere.parquet") as refused:
        lake.store.merge("dev", "main", row_results=results(
            plan, [region_file(plan, "tnew")], [outside]))
    assert refused.value.http_status == 400
    assert lake.store.get_ref("main").head == head  # nothing merged
    assert files(lake) == before  # nothing written, nothing deleted (the file stays)


def test_a_file_to_replace_outside_the_region_is_refused(lake: Catalog) -> None:
    plan = plan_of(lake)
    written = staged_file(lake, plan, MERGED)
    state = lake.branch("main").delta("db.t").state()
    region = {f for s in plan["scans"] for f in s["files"]}
    [other] = [f.uri for f in log.read_state(state.location, state.version).files.values()
               if f.uri not in region]
    head, before = lake.store.get_ref("main").head, files(lake)
    with pytest.raises(InvalidInput, match="not the target's files") as refused:
        lake.store.merge("dev", "main", row_results=results(plan, [other], [written]))
    assert refused.value.http_status == 400
    assert lake.store.get_ref("main").head == head
    assert files(lake) == before


def test_results_for_a_moved_target_leave_the_conflict(lake: Catalog) -> None:
    plan = plan_of(lake)
    written = staged_file(lake, plan, MERGED)
    lake.branch("main").delta("db.t").update({"v": "333"}, "id = 3")
    head, before = lake.store.get_ref("main").head, files(lake)
    with pytest.raises(ConflictError, match="both sides removed") as refused:
        lake.store.merge("dev", "main", row_results=results(
            plan, [region_file(plan, "tnew")], [written]))
    [conflict] = refused.value.conflicts  # the file-level conflict stands, and says why
    assert conflict.type.value == "ConcurrentDeleteDelete"
    assert lake.store.get_ref("main").head == head
    assert files(lake) == before


def test_files_gc_may_have_collected_are_refused(lake: Catalog) -> None:
    plan = plan_of(lake)
    written = staged_file(lake, plan, MERGED)
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(written.removeprefix("file://"), (two_hours_ago, two_hours_ago))
    now = datetime.now(UTC)
    lake.store.begin_gc(now - timedelta(hours=1), now - timedelta(days=7))
    head, before = lake.store.get_ref("main").head, files(lake)
    with pytest.raises(FilesMayBeCollected, match="gc may already have collected") as refused:
        lake.store.merge("dev", "main", row_results=results(
            plan, [region_file(plan, "tnew")], [written]))
    assert refused.value.http_status == 409
    assert lake.store.get_ref("main").head == head
    assert files(lake) == before  # the engine's file stays: it is not the server's


def test_on_s3_an_engines_files_become_one_delta_version(moto_s3: MotoS3,
                                                         tmp_path: Path) -> None:
    io = FileIOConfig(moto_s3.io())
    lake = Catalog(open_store(f"sqlite:///{tmp_path / 's3.db'}", io=io), author="tester",
                   warehouse=f"s3://{moto_s3.bucket()}/wh")
    build(lake, keyed=False)  # (setting lakeversion.* properties at create hangs on moto)
    plan = plan_of(lake)
    staging = plan["write"]["staging"]
    assert staging.startswith("s3://") and staging.rsplit("/", 1)[0] == \
        lake.branch("main").delta("db.t").state().root
    state = lake.branch("main").delta("db.t").state()
    arrow = schema_to_pyarrow(load(state, io).metadata.schema(), include_field_ids=True)
    written = f"{staging}/p=a/00000-0-engine.parquet"
    fs = pyarrow_filesystem(written, io)
    pq.write_table(pa.Table.from_pylist([dict(zip(("id", "p", "v"), r, strict=True))
                                         for r in MERGED], schema=arrow),
                   written.removeprefix("s3://"), filesystem=fs)
    outside = f"{state.root}/p=a/elsewhere.parquet"
    fs.copy_file(written.removeprefix("s3://"), outside.removeprefix("s3://"))
    head, before = lake.store.get_ref("main").head, all_files(state.root, io)
    with pytest.raises(LocationNotAllowed):
        lake.store.merge("dev", "main", row_results=results(
            plan, [region_file(plan, "tnew")], [outside]))
    assert lake.store.get_ref("main").head == head
    assert all_files(state.root, io) == before
    lake.store.merge("dev", "main", row_results=results(
        plan, [region_file(plan, "tnew")], [written]))
    main = lake.branch("main").delta("db.t")
    assert rows(main) == independent_rows(main) == sorted([*MERGED, OTHER])
