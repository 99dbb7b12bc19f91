"""One FileIO configuration opens every client the project uses (`spark_lakeversion.fileio`):
pyiceberg's FileIO, boto3, pyarrow, deltalake and DuckDB each reach the same moto S3 bucket
from the same `FileIOConfig`, and nothing but that config tells them where it is."""

from __future__ import annotations

import pyarrow as pa
import pytest

from spark_lakeversion.fileio import (
    FileIOConfig,
    boto3_s3_client,
    deltalake_storage_options,
    duckdb_s3_secret,
    pyarrow_filesystem,
    pyiceberg_file_io,
    s3_region,
)
from tests.s3.helpers import MotoS3

pytestmark = pytest.mark.usefixtures("no_aws_environment")


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No client may find the endpoint or keys anywhere but in the config."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def test_boto3_pyarrow_and_pyiceberg_read_what_the_others_wrote(moto_s3: MotoS3) -> None:
    io = FileIOConfig(moto_s3.io())
    bucket = moto_s3.bucket()
    boto3_s3_client(io).put_object(Bucket=bucket, Key="a/one.txt", Body=b"from boto3")

    filesystem = pyarrow_filesystem(f"s3://{bucket}/a", io)
    with filesystem.open_input_stream(f"{bucket}/a/one.txt") as stream:
        assert stream.read() == b"from boto3"
    with filesystem.open_output_stream(f"{bucket}/a/two.txt") as out:
        out.write(b"from pyarrow")

    fio = pyiceberg_file_io(f"s3://{bucket}/a/two.txt", io)
    with fio.new_input(f"s3://{bucket}/a/two.txt").open() as stream:
        assert stream.read() == b"from pyarrow"
    assert pyiceberg_file_io(f"s3a://{bucket}/x", io) is not fio  # one per scheme
    assert pyiceberg_file_io(f"s3://{bucket}/x", io) is fio  # cached
    assert moto_s3.keys(bucket, "a/") == {"a/one.txt", "a/two.txt"}


def test_deltalake_opens_an_s3_table_with_the_built_storage_options(moto_s3: MotoS3) -> None:
    import deltalake

    from spark_lakeversion.formats.delta.log import open_table

    io = FileIOConfig(moto_s3.io())
    location = f"s3://{moto_s3.bucket()}/db/t"
    options = deltalake_storage_options(location, io)
    assert options is not None and options["AWS_ENDPOINT_URL"] == moto_s3.endpoint
    deltalake.write_deltalake(location, pa.table({"id": [1, 2]}),
                              storage_options={**options, "AWS_S3_ALLOW_UNSAFE_RENAME": "true"})
    table = open_table(location, io=io)
    assert table.version() == 0
    assert sorted(pa.table(table.to_pyarrow_dataset().to_table())["id"].to_pylist()) == [1, 2]
    assert deltalake_storage_options("/tmp/local", io) is None  # local tables: as before


def test_duckdb_reads_s3_through_the_built_secret(moto_s3: MotoS3) -> None:
    from spark_lakeversion.checks.sql import connect

    io = FileIOConfig(moto_s3.io())
    bucket = moto_s3.bucket()
    moto_s3.put(bucket, "rows.csv", b"id\n7\n8\n")
    con = connect()
    con.execute(duckdb_s3_secret(io, [f"s3://{bucket}/"]))
    rows = con.execute(f"SELECT id FROM read_csv('s3://{bucket}/rows.csv') ORDER BY id")
    assert [r[0] for r in rows.fetchall()] == [7, 8]


def test_the_region_defaults_once() -> None:
    assert s3_region(FileIOConfig()) == "us-east-1"
    assert s3_region({"client.region": "eu-west-3"}) == "eu-west-3"
    assert s3_region({"s3.region": "ap-south-1", "client.region": "x"}) == "ap-south-1"
