"""SQL checks on an S3 warehouse (moto): DuckDB reads the three states with the server's
FileIO credentials, confined to those tables' locations; another key of the bucket, another
table and the endpoint itself are out of its reach."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from spark_lakeversion.checks import sql
from spark_lakeversion.errors import ChecksFailed
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.model import CheckKind, CheckSpec
from tests.lake import ID_ARROW
from tests.s3.helpers import S3Lake


def rows(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(list(ids), pa.int64())})


def test_sql_check_gates_a_merge_on_s3(s3_lake: S3Lake) -> None:
    store = s3_lake.server.store
    main = s3_lake.catalog(warehouse="main")
    main.create_namespace("db")
    main.create_table("db.t", schema=ID_ARROW).append(rows(1, 2))
    store.create_ref("dev")
    s3_lake.catalog("dev", warehouse="dev").load_table("db.t").append(rows(-1))
    store.add_check(CheckSpec("main", "positive", CheckKind.SQL,
                              "SELECT id FROM db.t WHERE id <= 0"))
    head = store.get_ref("main").head
    with pytest.raises(ChecksFailed) as caught:
        store.merge("dev", "main")
    [report] = caught.value.reports
    assert report["status"] == "failed" and report["samples"] == [{"id": -1}]
    assert store.get_ref("main").head == head
    s3_lake.catalog("fix", warehouse="dev").load_table("db.t").delete("id <= 0")
    assert store.merge("dev", "main").checks[0]["status"] == "passed"


def test_duckdb_on_s3_reads_only_the_tables_of_the_three_states(s3_lake: S3Lake) -> None:
    main = s3_lake.catalog(warehouse="main")
    main.create_namespace("db")
    main.create_table("db.t", schema=ID_ARROW).append(rows(1, 2, 3))
    other = main.create_table("db.other", schema=ID_ARROW)
    other.append(rows(9))
    secret = s3_lake.s3.put(s3_lake.bucket, "elsewhere/secret.txt", b"SECRET")
    tables = {k: c for k, c in s3_lake.server.store.list_keys("main")
              if c.type is ICEBERG_TABLE and str(k) == "db.t"}
    con = sql.connect()
    try:
        sql.confine(con, {"preview": tables, "target": tables, "source": tables},
                    s3_lake.s3.io(), "db")
        assert con.execute("SELECT sum(id) FROM t").fetchone() == (6,)
        for statement in (f"SELECT * FROM read_text('{secret}')",
                          f"SELECT * FROM iceberg_scan('{other.metadata_location}')",
                          f"SELECT * FROM glob('s3://{s3_lake.bucket}/**')",
                          f"SELECT * FROM read_text('{s3_lake.s3.endpoint}/{s3_lake.bucket}"
                          "/elsewhere/secret.txt')"):
            with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
                con.execute(statement).fetchall()
    finally:
        con.close()
