"""The Iceberg REST catalog on S3 (moto's server): pyiceberg with vended credentials,
register, branches, the content-aware merge, rollback and purge, all on object storage."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pyarrow as pa
import pytest
from pyiceberg.exceptions import BadRequestError, NoSuchTableError

from spark_lakeversion.locations import OUTSIDE_ROOTS
from tests.s3.helpers import SECRET_KEY, S3Lake

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "v": pa.array(["a", "b", "c"])})


def ids(table: Any) -> list[int]:
    return sorted(table.scan().to_arrow()["id"].to_pylist())


def rows(*values: int) -> pa.Table:
    return pa.table({"id": pa.array(values, pa.int64()), "v": pa.array([f"v{i}" for i in values])})


def test_pyiceberg_on_s3_needs_no_settings_of_its_own(s3_lake: S3Lake) -> None:
    cat = s3_lake.catalog()
    cat.create_namespace("db")
    table = cat.create_table("db.t", schema=ROWS.schema)
    table.append(ROWS)
    table.append(rows(4))
    loaded = cat.load_table("db.t")
    assert ids(loaded) == [1, 2, 3, 4]
    assert loaded.metadata_location.startswith(f"{s3_lake.warehouse}/db/t_")
    assert loaded.location().startswith(f"{s3_lake.warehouse}/db/t_")
    # metadata, manifest lists, manifests and data files are all objects in the bucket
    keys = s3_lake.keys("wh/db/")
    assert sum(k.endswith(".metadata.json") for k in keys) == 3
    assert sum(k.endswith(".parquet") for k in keys) == 2
    assert loaded.metadata_location[len(f"s3://{s3_lake.bucket}/"):] in keys


def test_credentials_are_vended_only_when_asked(s3_lake: S3Lake) -> None:
    cat = s3_lake.catalog()
    cat.create_namespace("db")
    cat.create_table("db.t", schema=ROWS.schema)
    url = f"{s3_lake.server.iceberg_uri}/v1/namespaces/db/tables/t"
    plain = httpx.get(url).json()
    assert plain["config"] == {} and "storage-credentials" not in plain
    assert SECRET_KEY not in json.dumps(plain)
    asked = httpx.get(url, headers={"X-Iceberg-Access-Delegation": "vended-credentials"}).json()
    io = s3_lake.s3.io()
    assert asked["config"] == {**io, "client.region": io["s3.region"]}
    [credential] = asked["storage-credentials"]
    assert credential["prefix"] == asked["metadata"]["location"]
    assert credential["config"]["s3.secret-access-key"] == SECRET_KEY
    # createTable answers the same way
    created = httpx.post(f"{s3_lake.server.iceberg_uri}/v1/namespaces/db/tables",
                         json={"name": "t2", "schema": {"type": "struct", "fields": []}},
                         headers={"X-Iceberg-Access-Delegation": "vended-credentials"})
    assert created.status_code == 200, created.text
    assert created.json()["config"]["s3.endpoint"] == io["s3.endpoint"]
    quiet = httpx.post(f"{s3_lake.server.iceberg_uri}/v1/namespaces/db/tables",
                       json={"name": "t3", "schema": {"type": "struct", "fields": []}})
    assert quiet.status_code == 200 and quiet.json()["config"] == {}


def test_s3_locations_follow_the_allowed_roots(s3_lake: S3Lake) -> None:
    cat = s3_lake.catalog()
    cat.create_namespace("db")
    inside = cat.create_table("db.inside", schema=ROWS.schema, location=f"{s3_lake.extra}/t1")
    inside.append(ROWS)
    assert ids(cat.load_table("db.inside")) == [1, 2, 3]
    for location in (f"s3://{s3_lake.bucket}/elsewhere/t", "s3://other-bucket/wh/t",
                     f"s3a://{s3_lake.bucket}/wh/../elsewhere/t"):
        with pytest.raises(BadRequestError):
            cat.create_table("db.outside", schema=ROWS.schema, location=location)
    answer = httpx.post(f"{s3_lake.server.iceberg_uri}/v1/namespaces/db/tables",
                        json={"name": "o", "location": f"s3://{s3_lake.bucket}/elsewhere/o",
                              "schema": {"type": "struct", "fields": []}})
    assert answer.status_code == 400 and OUTSIDE_ROOTS in answer.text
    assert not s3_lake.keys("elsewhere/")


def test_register_a_table_written_elsewhere_on_s3(s3_lake: S3Lake, tmp_path: Any) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    writer = SqlCatalog("writer", uri=f"sqlite:///{tmp_path / 'sql.db'}",
                        warehouse=s3_lake.extra, **s3_lake.s3.io())
    writer.create_namespace("src")
    original = writer.create_table("src.t", schema=ROWS.schema)
    original.append(ROWS)
    cat = s3_lake.catalog()
    cat.create_namespace("db")
    registered = cat.register_table("db.reg", original.metadata_location)
    assert ids(registered) == [1, 2, 3]
    registered.append(rows(9))  # a server-written metadata file beside the writer's
    assert ids(cat.load_table("db.reg")) == [1, 2, 3, 9]
    with pytest.raises(BadRequestError, match="not a readable Iceberg metadata file"):
        cat.register_table("db.missing", f"{s3_lake.extra}/src/none.metadata.json")
    with pytest.raises(BadRequestError):
        cat.register_table("db.out", f"s3://{s3_lake.bucket}/elsewhere/x.metadata.json")


def test_branch_merge_and_rollback_on_s3(s3_lake: S3Lake) -> None:
    api = s3_lake.server.api_url
    main = s3_lake.catalog()
    main.create_namespace("db")
    main.create_table("db.t", schema=ROWS.schema).append(ROWS)
    httpx.post(f"{api}/refs", json={"name": "dev"}).raise_for_status()
    dev = s3_lake.catalog("dev", warehouse="dev")
    dev.load_table("db.t").append(rows(10))
    main.load_table("db.t").append(rows(20))
    assert ids(dev.load_table("db.t")) == [1, 2, 3, 10]
    assert ids(main.load_table("db.t")) == [1, 2, 3, 20]
    before = httpx.get(f"{api}/refs/get", params={"name": "main"}).json()["head"]
    # both sides appended: the content-aware merge replays dev's append onto main,
    # reading and writing manifests on S3 with the server's FileIO
    merged = httpx.post(f"{api}/merge", json={"source": "dev", "target": "main"})
    assert merged.status_code == 200, merged.text
    assert ids(main.load_table("db.t")) == [1, 2, 3, 10, 20]
    rolled = httpx.post(f"{api}/rollback", json={"branch": "main", "table": "db.t",
                                                 "to": before})
    assert rolled.status_code == 200, rolled.text
    assert ids(main.load_table("db.t")) == [1, 2, 3, 20]
    assert ids(dev.load_table("db.t")) == [1, 2, 3, 10]


def test_purge_on_a_branch_leaves_other_refs_readable(s3_lake: S3Lake) -> None:
    api = s3_lake.server.api_url
    main = s3_lake.catalog()
    main.create_namespace("db")
    main.create_table("db.t", schema=ROWS.schema).append(ROWS)
    httpx.post(f"{api}/refs", json={"name": "dev"}).raise_for_status()
    httpx.post(f"{api}/refs", json={"name": "v1", "type": "TAG"}).raise_for_status()
    keys = s3_lake.keys("wh/")
    dev = s3_lake.catalog("dev", warehouse="dev")
    dev.purge_table("db.t")
    with pytest.raises(NoSuchTableError):
        dev.load_table("db.t")
    assert s3_lake.keys("wh/") == keys  # nothing deleted: other refs share the files
    assert ids(main.load_table("db.t")) == [1, 2, 3]
    assert ids(s3_lake.catalog("v1", warehouse="v1").load_table("db.t")) == [1, 2, 3]


def test_duckdb_reads_an_s3_table_with_vended_credentials(s3_lake: S3Lake) -> None:
    import importlib.util
    from pathlib import Path

    import duckdb

    cat = s3_lake.catalog()
    cat.create_namespace("db")
    cat.create_table("db.t", schema=ROWS.schema).append(ROWS)
    spec = importlib.util.find_spec("duckdb_ext")  # the pip-carried extensions: no download
    assert spec is not None and spec.submodule_search_locations
    extensions = Path(list(spec.submodule_search_locations)[0]) / "extensions"
    con = duckdb.connect(config={"extension_directory": str(extensions),
                                 "autoinstall_known_extensions": False})
    for name in ("httpfs", "avro", "iceberg"):
        con.execute(f"LOAD {name}")
    con.execute(f"ATTACH 'main' AS lv (TYPE iceberg, ENDPOINT '{s3_lake.server.iceberg_uri}', "
                "AUTHORIZATION_TYPE 'none', ACCESS_DELEGATION_MODE 'vended_credentials')")
    assert con.execute("SELECT id, v FROM lv.db.t ORDER BY id").fetchall() == \
        [(1, "a"), (2, "b"), (3, "c")]


def test_load_credentials_refreshes_vended_credentials(s3_lake: S3Lake) -> None:
    cat = s3_lake.catalog()
    cat.create_namespace("db")
    table = cat.create_table("db.t", schema=ROWS.schema)
    config = cat.load_credentials("db.t", table.metadata_location)
    assert config["s3.secret-access-key"] == SECRET_KEY
    url = f"{s3_lake.server.iceberg_uri}/v1/namespaces/db/tables/t/credentials"
    assert httpx.get(url).json() == {"storage-credentials": []}
    missing = httpx.get(f"{s3_lake.server.iceberg_uri}/v1/namespaces/db/tables/nope/credentials")
    assert missing.status_code == 404


def test_table_properties_never_configure_the_servers_file_access(s3_lake: S3Lake) -> None:
    cat = s3_lake.catalog()
    cat.create_namespace("db")
    # a client naming another endpoint in its table's properties changes nothing about
    # how the server reads and writes (and the client's vended config overrides it too)
    table = cat.create_table("db.t", schema=ROWS.schema,
                             properties={"s3.endpoint": "http://127.0.0.1:9"})
    table.append(ROWS)
    assert ids(cat.load_table("db.t")) == [1, 2, 3]
    assert any(k.endswith(".metadata.json") for k in s3_lake.keys("wh/db/"))
    # a FileIO class to import is refused outright: every reader would import it
    with pytest.raises(BadRequestError, match="py-io-impl is not allowed"):
        cat.create_table("db.code", schema=ROWS.schema,
                         properties={"py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"})
    with pytest.raises(BadRequestError, match="py-io-impl is not allowed"), \
            table.transaction() as tx:
        tx.set_properties({"py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"})


def test_views_on_s3_are_written_with_the_servers_file_io(s3_lake: S3Lake) -> None:
    import time

    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField
    from pyiceberg.view.metadata import ViewVersion

    cat = s3_lake.catalog()
    cat.create_namespace("db")
    version = ViewVersion.model_validate({
        "version-id": 1, "schema-id": 0, "timestamp-ms": int(time.time() * 1000),
        "summary": {"engine-name": "test"}, "default-namespace": ["db"],
        "representations": [{"type": "sql", "sql": "SELECT 1 AS id", "dialect": "spark"}]})
    schema = Schema(NestedField(1, "id", LongType(), required=False))
    # the view's own properties name another endpoint: the server ignores them
    view = cat.create_view("db.v", schema, version,
                           properties={"s3.endpoint": "http://127.0.0.1:9"})
    assert view.metadata.location.startswith(f"{s3_lake.warehouse}/db/v_")
    assert any(k.endswith(".metadata.json") and "/db/v_" in k for k in s3_lake.keys("wh/"))
    loaded = cat.load_view("db.v")
    assert loaded.metadata.view_uuid == view.metadata.view_uuid
