"""A real `spark-submit` job on a branch, through the same code path as the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from spark_lakeversion.spark.submit import build_command
from tests.spark.helpers import SparkLake

pytestmark = [pytest.mark.spark, pytest.mark.slow]

JOB = textwrap.dedent("""
    import sys
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.sql(f"INSERT INTO lv.db.t VALUES ({int(sys.argv[1])}, 'job')")
    print("rows on the job's branch:", spark.table("lv.db.t").count())
    spark.stop()
""")


def test_command_line_carries_branch_catalog_and_server(tmp_path: Path) -> None:
    cmd = build_command(["--driver-memory", "1g", "job.py", "7"], "http://h:1", branch="dev",
                        catalog="lv2")
    assert cmd[0].endswith("spark-submit")
    assert cmd[-4:] == ["--driver-memory", "1g", "job.py", "7"]
    confs = dict(c.split("=", 1) for c in cmd[cmd.index("--conf") + 1::2] if "=" in c)
    assert confs["spark.sql.catalog.lv2"] == "io.lakeversion.spark.LakeVersionCatalog"
    assert confs["spark.sql.catalog.lv2.uri"] == "http://h:1"
    assert confs["spark.sql.catalog.lv2.ref"] == "dev"
    assert confs["spark.lakeversion.branch"] == "dev"
    assert confs["spark.sql.extensions"].endswith("LakeVersionSparkSessionExtensions")
    assert cmd[cmd.index("--name") + 1] == "job"


def test_job_on_dev_leaves_main_untouched(orders: SparkLake, tmp_path: Path, spark: Any) -> None:
    from spark_lakeversion.cli.submit import spark_submit

    orders.sql("CREATE BRANCH dev")
    job = tmp_path / "append_job.py"
    job.write_text(JOB)
    result = CliRunner().invoke(spark_submit, [
        "--branch", "dev", "--server", orders.server.url, "--name", "lv-submit-test",
        "--conf", "spark.ui.enabled=false", "--master", "local[1]",
        "--", "--driver-memory", "512m", str(job), "42"])
    assert result.exit_code == 0, result.output
    assert orders.ids("db@dev.t") == [1, 2, 42]
    assert orders.ids("db.t") == [1, 2]
    head = httpx.get(f"{orders.server.url}/api/v1/log", params={"ref": "dev", "limit": 1})
    props = head.json()["commits"][0]["properties"]
    assert props["spark.app.name"] == "lv-submit-test"
    assert props["spark.app.id"].startswith("local-")
    assert props["spark.app.id"] != spark.sparkContext.applicationId
    assert json.dumps(props)  # plain strings, JSON-clean
