"""gc on S3: listing and batched deletes on moto's server, the same rules as on local files
(only unreachable files under a table's own location, older than the grace period)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pyarrow as pa
import pytest

from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.gc import collect_garbage
from spark_lakeversion.gc import files as gc_files
from tests.s3.helpers import S3Lake

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64())})


def test_gc_on_s3_deletes_only_unreachable_files_in_batches(
        s3_lake: S3Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = s3_lake.catalog()
    cat.create_namespace("db")
    table = cat.create_table("db.t", schema=ROWS.schema)
    table.append(ROWS)
    prefix = table.location()[len(f"s3://{s3_lake.bucket}/"):]
    orphans = {s3_lake.s3.put(s3_lake.bucket, f"{prefix}/data/orphan-{i}.parquet")
               for i in range(5)}
    outside = s3_lake.s3.put(s3_lake.bucket, "elsewhere/not-a-table-file.parquet")
    in_root_no_table = s3_lake.s3.put(s3_lake.bucket, "wh/loose-file.parquet")
    reachable = s3_lake.keys(prefix) - {o[len(f"s3://{s3_lake.bucket}/"):] for o in orphans}
    monkeypatch.setattr(gc_files, "S3_DELETE_BATCH", 2)  # 5 garbage files: 3 requests
    batches: list[int] = []
    real_init = gc_files.S3Store.__init__

    def counting(self: gc_files.S3Store, io: FileIOConfig) -> None:
        real_init(self, io)
        delete_objects = self.client.delete_objects

        def counted(**request: Any) -> Any:
            batches.append(len(request["Delete"]["Objects"]))
            return delete_objects(**request)

        self.client.delete_objects = counted

    monkeypatch.setattr(gc_files.S3Store, "__init__", counting)
    report = collect_garbage(s3_lake.server.store, roots=[s3_lake.warehouse, s3_lake.extra],
                             io_properties=s3_lake.s3.io(),
                             older_than="1d", now=datetime.now(timezone.utc) + timedelta(days=2))
    assert report.errors == [] and report.skipped_tables == []
    assert {f.path for f in report.garbage} == orphans
    assert report.deleted == 5 and batches == [2, 2, 1]
    assert s3_lake.keys(prefix) == reachable
    assert s3_lake.keys("elsewhere/") and s3_lake.keys("wh/loose-file.parquet")
    assert outside and in_root_no_table
    assert sorted(cat.load_table("db.t").scan().to_arrow()["id"].to_pylist()) == [1, 2, 3]


def test_gc_through_the_server_lists_s3_and_keeps_young_files(s3_lake: S3Lake) -> None:
    cat = s3_lake.catalog()
    cat.create_namespace("db")
    table = cat.create_table("db.t", schema=ROWS.schema)
    table.append(ROWS)
    prefix = table.location()[len(f"s3://{s3_lake.bucket}/"):]
    s3_lake.s3.put(s3_lake.bucket, f"{prefix}/data/young-orphan.parquet")
    before = s3_lake.keys(prefix)
    answer = httpx.post(f"{s3_lake.server.api_url}/gc", json={"older_than": "1h"}, timeout=60)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["files_listed"] == len(before) and report["kept_young"] == 1
    assert report["garbage_files"] == 0 and report["deleted_files"] == 0
    assert report["errors"] == []
    assert s3_lake.keys(prefix) == before
    # gc recorded its epoch: the next commit's new files are checked on S3, and pass
    table.append(ROWS)
    assert cat.load_table("db.t").scan().to_arrow().num_rows == 6


def test_python_api_gc_on_s3_and_no_file_settings_over_http(s3_lake: S3Lake) -> None:
    import spark_lakeversion as lv
    from spark_lakeversion.errors import InvalidInput

    cat = s3_lake.catalog()
    cat.create_namespace("db")
    cat.create_table("db.t", schema=ROWS.schema).append(ROWS)
    local = lv.connect(s3_lake.server.store.url)
    report = local.collect_garbage(roots=[s3_lake.warehouse], io=s3_lake.s3.io(),
                                   dry_run=True)
    assert report.files_listed == len(s3_lake.keys("wh/db/")) and report.errors == []
    remote = lv.connect(s3_lake.server.url)
    with pytest.raises(InvalidInput, match="server's FileIO settings"):
        remote.collect_garbage(io=s3_lake.s3.io(), dry_run=True)
    assert remote.collect_garbage(dry_run=True).files_listed == report.files_listed
