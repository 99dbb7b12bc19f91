"""Spark gets the AWS SDK's jars only from a server that keeps tables on S3: they are 38
jars that every session otherwise loads (`spark.spark_conf` asks `GET /api/v1/config`)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.spark import spark_conf
from spark_lakeversion.spark.jars import find_aws_sdk_jars
from tests.helpers import IN_CI
from tests.s3.helpers import S3Lake

AWS_JARS = {str(j) for j in find_aws_sdk_jars()}
# `make setup` installs them: in CI (CI=true) their absence is a failure, never a skip
needs_sdk = pytest.mark.skipif(not AWS_JARS and not IN_CI,
                               reason="the AWS SDK's jars are not installed (make setup)")


def jars(url: str) -> set[str]:
    return set(spark_conf(url)["spark.jars"].split(","))


def test_the_server_names_its_storage(s3_lake: S3Lake, tmp_path: Path) -> None:
    answer = httpx.get(s3_lake.server.api_url + "/config")
    assert answer.status_code == 200 and answer.json() == {"storage_schemes": ["s3"]}
    with start_embedded_server(f"sqlite:///{tmp_path / 'local.db'}",
                               warehouse=str(tmp_path / "wh"),
                               allowed_locations=["s3://elsewhere/x"]) as both:
        assert httpx.get(both.api_url + "/config").json() == {
            "storage_schemes": ["file", "s3"]}


@needs_sdk
def test_a_local_server_gets_no_aws_jars_an_s3_one_does(s3_lake: S3Lake,
                                                        tmp_path: Path) -> None:
    assert jars(s3_lake.server.url) >= AWS_JARS
    with start_embedded_server(f"sqlite:///{tmp_path / 'local.db'}",
                               warehouse=str(tmp_path / "wh")) as local:
        assert not AWS_JARS & jars(local.url)
        assert len(jars(local.url)) == 2  # Iceberg's runtime and the shim


@needs_sdk
def test_a_server_that_does_not_answer_gets_them_as_before() -> None:
    assert jars("http://127.0.0.1:9") >= AWS_JARS  # nothing listens: unknown storage
