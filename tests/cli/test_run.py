"""`lakeversion run`: a real spark-submit (or Python) job on a run branch, merged only if it
succeeds; the run's embedded server over a local store, as `lakeversion spark-submit`."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.cli.main import cli
from spark_lakeversion.runs import RUN_COMMAND, RUN_ID, RUN_INPUT

SPARK_JOB = textwrap.dedent("""
    import sys
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lv.db")
    spark.sql("CREATE TABLE IF NOT EXISTS lv.db.t (id INT) USING iceberg")
    spark.sql(f"INSERT INTO lv.db.t VALUES ({int(sys.argv[1])})")
    spark.stop()
    sys.exit(int(sys.argv[2]))
""")

#: a pyiceberg job: everything it knows comes from the run's environment
PYICEBERG_JOB = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from pyiceberg.catalog.rest import RestCatalog
    from spark_lakeversion.api import connect
    from spark_lakeversion.runs import iceberg_catalog_properties

    assert connect().default_branch.startswith(sys.argv[2])
    catalog = RestCatalog("lv", **iceberg_catalog_properties())
    table = catalog.load_table("db.t")
    table.append(pa.table({"id": pa.array([int(sys.argv[1])], pa.int32())}))
""")


def lv(store: str, warehouse: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--store", store, "run", "--warehouse", str(warehouse),
                                    *args], catch_exceptions=False)


def table_rows(catalog: Catalog, ref: str) -> list[int]:
    from pyiceberg.io.pyarrow import PyArrowFileIO  # noqa: F401 - pyarrow reader present
    from pyiceberg.table import StaticTable

    metadata = catalog.ref(ref).table("db.t").fields["metadata_location"]
    table = StaticTable.from_metadata(metadata)
    return sorted(table.scan().to_arrow().column("id").to_pylist())


@pytest.fixture
def lake(tmp_path: Path) -> tuple[str, Path]:
    return f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "warehouse"


def spark_job(tmp_path: Path) -> str:
    job = tmp_path / "job.py"
    job.write_text(SPARK_JOB)
    return str(job)


SUBMIT = ("spark-submit", "--master", "local[1]", "--driver-memory", "512m",
          "--conf", "spark.ui.enabled=false")


@pytest.mark.spark
@pytest.mark.slow
def test_spark_job_success_merges_and_log_shows_the_run(lake: tuple[str, Path],
                                                        tmp_path: Path) -> None:
    store, warehouse = lake
    result = lv(store, warehouse, "-m", "nightly load", "--", *SUBMIT, spark_job(tmp_path),
                "7", "0")
    assert result.exit_code == 0, result.output
    catalog = connect(store)
    assert table_rows(catalog, "main") == [7]
    assert [b.name for b in catalog.branches()] == ["main"]  # run branch deleted
    merge, *job_commits = list(catalog.branch("main").log(limit=4))[:4]
    run_id = merge.properties[RUN_ID]
    assert merge.message == "nightly load" and len(merge.parents) == 2
    assert "spark-submit" in merge.properties[RUN_COMMAND]
    assert "job.py 7 0" in merge.properties[RUN_COMMAND]
    # the job's own commits (namespace, table, append) carry the run id too
    assert [c.properties.get(RUN_ID) for c in job_commits[:3]] == [run_id] * 3
    # ...and the run's input: main's head when it started (lakeversion.run.input)
    assert merge.properties[RUN_INPUT] == merge.parents[0]
    assert [c.properties.get(RUN_INPUT) for c in job_commits[:3]] == [merge.parents[0]] * 3
    assert job_commits[0].properties["spark.app.id"].startswith("local-")
    log = CliRunner().invoke(cli, ["--store", store, "log", "-n", "2"])
    assert log.exit_code == 0
    assert [line.endswith(f"[run {run_id}]") for line in log.output.splitlines()] \
        == [True, True]
    assert f"run {run_id}: merged run/{run_id} into main" in result.output


@pytest.mark.spark
@pytest.mark.slow
def test_spark_job_that_exits_1_keeps_the_branch(lake: tuple[str, Path],
                                                 tmp_path: Path) -> None:
    store, warehouse = lake
    before = connect(store).branch("main").head.id
    result = CliRunner().invoke(cli, [
        "--store", store, "run", "--warehouse", str(warehouse), "--branch", "etl/broken",
        "--", *SUBMIT, spark_job(tmp_path), "5", "1"])
    assert result.exit_code == 1
    assert "run branch etl/broken kept" in result.stderr
    assert "job exited with code 1" in result.stderr
    catalog = connect(store)
    assert catalog.branch("main").head.id == before  # main untouched
    assert table_rows(catalog, "etl/broken") == [5]  # the job's writes, readable


@pytest.fixture
def lake_with_table(lake: tuple[str, Path]) -> tuple[str, Path]:
    """`db.t (id int)` on main with row 1, written by a first run (a Python job)."""
    store, warehouse = lake
    create = warehouse.parent / "create.py"
    create.write_text(textwrap.dedent("""
        import pyarrow as pa
        from pyiceberg.catalog.rest import RestCatalog
        from spark_lakeversion.runs import iceberg_catalog_properties

        catalog = RestCatalog("lv", **iceberg_catalog_properties())
        catalog.create_namespace("db")
        table = catalog.create_table("db.t", pa.schema([("id", pa.int32())]))
        table.append(pa.table({"id": pa.array([1], pa.int32())}))
    """))
    result = lv(store, warehouse, "--", sys.executable, str(create))
    assert result.exit_code == 0, result.output
    return store, warehouse


def test_failing_checks_exit_5_and_keep_the_branch(lake_with_table: tuple[str, Path],
                                                   tmp_path: Path) -> None:
    store, warehouse = lake_with_table
    catalog = connect(store)
    catalog.branch("main").add_check("positive", sql="SELECT * FROM db.t WHERE id <= 0")
    before = catalog.branch("main").head.id
    job = tmp_path / "append.py"
    job.write_text(PYICEBERG_JOB)
    result = CliRunner().invoke(cli, [
        "--store", store, "-o", "json", "run", "--warehouse", str(warehouse),
        "--branch", "etl/bad", "--", sys.executable, str(job), "-3", "etl/bad"])
    assert result.exit_code == 5, result.output
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "ChecksFailed"
    assert [r["name"] for r in error["reports"]] == ["positive"]
    assert "run branch etl/bad kept" in result.stderr
    assert catalog.branch("main").head.id == before
    assert table_rows(catalog, "main") == [1]
    assert table_rows(catalog, "etl/bad") == [-3, 1]
    assert catalog.branch("etl/bad").head.properties[RUN_ID]  # the job's commit


def test_keep_branch_keeps_it_after_success(lake_with_table: tuple[str, Path],
                                            tmp_path: Path) -> None:
    store, warehouse = lake_with_table
    job = tmp_path / "append.py"
    job.write_text(PYICEBERG_JOB)
    result = CliRunner().invoke(cli, [
        "--store", store, "-o", "json", "run", "--warehouse", str(warehouse),
        "--keep-branch", "--", sys.executable, str(job), "4", "run/"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["branch"] == f"run/{data['run_id']}" and data["branch_deleted"] is False
    catalog = connect(store)
    assert table_rows(catalog, "main") == [1, 4]
    assert catalog.branch(data["branch"]).exists()
    assert data["merge"]["new_head"] == catalog.branch("main").head.id


def test_bad_input_creates_no_branch(lake: tuple[str, Path]) -> None:
    store, warehouse = lake
    bad_name = lv(store, warehouse, "--branch", "no spaces", "--", sys.executable, "-c", "0")
    assert bad_name.exit_code == 1 and "invalid ref name" in bad_name.stderr
    failing = CliRunner().invoke(cli, [
        "--store", store, "-o", "json", "run", "--warehouse", str(warehouse), "--branch", "f",
        "--", sys.executable, "-c", "print('job output'); raise SystemExit(3)"])
    assert failing.exit_code == 3
    assert json.loads(failing.stdout) == {  # stdout: exactly one JSON document
        "run_id": json.loads(failing.stdout)["run_id"], "on": "main", "branch": "f",
        "branch_deleted": False, "merged": False, "exit_code": 3,
        "error": "the job exited with code 3",
        "input": connect(store).branch("main").head.id}
    assert "job output" in failing.stderr
    connect(store).branch("f").delete()
    missing = lv(store, warehouse, "--", "no-such-command-xyz")
    assert missing.exit_code == 1 and "command not found" in missing.stderr
    assert [b.name for b in connect(store).branches()] == ["main"]
