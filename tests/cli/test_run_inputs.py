"""`lakeversion run` remembers its inputs: `lakeversion.run.input` on its commits and in its
JSON, the command that branches from exactly them after a failure (each failure said
once), and `--from-inputs RUN_ID` to re-run a job from them."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.api import connect
from spark_lakeversion.cli.main import cli
from spark_lakeversion.runs import RUN_ID, RUN_INPUT
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server

#: appends argv[1] to db.t on the run's branch; prints the rows it started from
JOB = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from pyiceberg.catalog.rest import RestCatalog
    from spark_lakeversion.runs import iceberg_catalog_properties

    table = RestCatalog("lv", **iceberg_catalog_properties()).load_table("db.t")
    print("saw", sorted(table.scan().to_arrow().column("id").to_pylist()))
    table.append(pa.table({"id": pa.array([int(sys.argv[1])], pa.int32())}))
""")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """`db.t (id int)` with row 1 on main, and a check refusing negative ids."""
    srv = start_embedded_server(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "wh"))
    rest = RestCatalog("setup", uri=srv.url + "/iceberg")
    rest.create_namespace("db")
    table = rest.create_table("db.t", pa.schema([("id", pa.int32())]))
    table.append(pa.table({"id": pa.array([1], pa.int32())}))
    connect(srv.url).branch("main").add_check("positive", sql="SELECT * FROM db.t WHERE id <= 0")
    yield srv
    srv.stop()


@pytest.fixture
def job(tmp_path: Path) -> str:
    path = tmp_path / "append.py"
    path.write_text(JOB)
    return str(path)


def lv(url: str, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--store", url, *args])
    assert "Traceback" not in result.output
    return result


def rows(url: str, ref: str) -> list[int]:
    table = RestCatalog("r", uri=url + "/iceberg", warehouse=ref).load_table("db.t")
    return sorted(table.scan().to_arrow().column("id").to_pylist())


def test_a_run_records_its_input(server: EmbeddedServer, job: str) -> None:
    catalog = connect(server.url)
    before = catalog.branch("main").head.id
    result = lv(server.url, "-o", "json", "run", "--", sys.executable, job, "4")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input"] == before and data["merged"] is True
    merge, append = list(catalog.branch("main").log(limit=2))
    assert merge.properties[RUN_INPUT] == before == append.properties[RUN_INPUT]
    assert merge.properties[RUN_ID] == data["run_id"] == append.properties[RUN_ID]


def test_a_failed_run_says_it_once_and_how_to_branch_from_its_inputs(
        server: EmbeddedServer, job: str) -> None:
    catalog = connect(server.url)
    before = catalog.branch("main").head.id
    result = lv(server.url, "run", "--branch", "etl/bad", "--", sys.executable, job, "-3")
    assert result.exit_code == 5  # the checks refused the merge
    err = result.stderr
    assert err.count("error: ") == 1  # the root's, not repeated by the run's own lines
    assert err.count("checks failed") <= 1
    assert err.count("kept for inspection") == 1
    [command] = [line.split("branch from exactly them: ", 1)[1]
                 for line in err.splitlines() if "branch from exactly them" in line]
    assert command.endswith(f"--from {before}")
    assert catalog.branch("main").head.id == before
    assert catalog.branch("etl/bad").head.properties[RUN_INPUT] == before
    # the printed command, as printed, branches from exactly the run's inputs
    args = shlex.split(command)
    assert args[0] == "lakeversion"
    assert lv(server.url, *args[1:]).exit_code == 0
    assert catalog.branch(args[args.index("create") + 1]).head.id == before


def test_rerun_from_the_inputs_of_an_earlier_run(server: EmbeddedServer, job: str) -> None:
    catalog = connect(server.url)
    failed = lv(server.url, "-o", "json", "run", "--", sys.executable, job, "-3")
    assert failed.exit_code == 5
    first = json.loads(failed.stdout)
    assert first["error"]["type"] == "ChecksFailed"
    [kept] = [b.name for b in catalog.branches() if b.name.startswith("run/")]
    first_input = catalog.branch(kept).head.properties[RUN_INPUT]
    run_id = catalog.branch(kept).head.properties[RUN_ID]
    # main moves on (a good run); the re-run still starts from what the failed run saw
    assert lv(server.url, "run", "--", sys.executable, job, "5").exit_code == 0
    main_head = catalog.branch("main").head.id
    rerun = lv(server.url, "-o", "json", "run", "--from-inputs", run_id, "--",
               sys.executable, job, "-3")
    assert rerun.exit_code == 0, rerun.output
    data = json.loads(rerun.stdout)
    assert data["input"] == first_input and data["merged"] is False
    assert data["branch_deleted"] is False and data["merge"] is None
    assert "saw [1]" in rerun.stderr  # the job's output: the inputs, not main's [1, 5]
    assert rows(server.url, data["branch"]) == [-3, 1]
    assert catalog.branch(data["branch"]).head.properties[RUN_INPUT] == first_input
    assert catalog.branch("main").head.id == main_head  # nothing merged


def test_unknown_run_id_is_a_typed_error_and_creates_nothing(server: EmbeddedServer,
                                                             job: str) -> None:
    catalog = connect(server.url)
    before = [(b.name, b.head.id) for b in catalog.branches()]
    result = lv(server.url, "run", "--from-inputs", "20260101T000000-abcdef", "--",
                sys.executable, job, "1")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: no run '20260101T000000-abcdef': no commit in the last 1000 of any branch "
        "carries it (runs record their inputs since lakeversion.run.input)"]
    assert [(b.name, b.head.id) for b in catalog.branches()] == before


def test_an_existing_run_branch_is_refused_not_kept(server: EmbeddedServer, job: str) -> None:
    catalog = connect(server.url)
    catalog.branch("etl/taken").create()
    result = lv(server.url, "run", "--branch", "etl/taken", "--", sys.executable, job, "2")
    assert result.exit_code == 1  # already exists
    assert result.stderr.count("error: ") == 1 and "etl/taken" in result.stderr
    assert "kept for inspection" not in result.stderr
    assert "saw" not in result.output  # the job never ran


def test_rerun_from_inputs_gc_collected_is_refused(server: EmbeddedServer, job: str) -> None:
    """The gc fence holds for re-runs: inputs outside gc's retained history cannot come
    back (their files may be gone); refused with HistoryCollected, nothing created."""
    from datetime import timedelta

    from spark_lakeversion.versioning.http import RestVersionStore

    catalog = connect(server.url)
    first = lv(server.url, "-o", "json", "run", "--", sys.executable, job, "2")
    assert first.exit_code == 0, first.output
    run_id = json.loads(first.stdout)["run_id"]
    assert lv(server.url, "run", "--", sys.executable, job, "3").exit_code == 0
    rest = RestVersionStore(server.url)
    rest.gc_on_server(older_than=timedelta(hours=1), keep_commits_since=timedelta(0),
                      dry_run=False)
    rest.close()
    before = [(b.name, b.head.id) for b in catalog.branches()]
    rerun = lv(server.url, "run", "--from-inputs", run_id, "--", sys.executable, job, "9")
    assert rerun.exit_code == 3, rerun.output
    [line] = rerun.stderr.splitlines()
    assert line.startswith("error: commit ") and "outside gc's retained history" in line
    assert "saw" not in rerun.output and "kept for inspection" not in rerun.stderr
    assert [(b.name, b.head.id) for b in catalog.branches()] == before


def test_a_failed_job_is_said_once(server: EmbeddedServer) -> None:
    result = lv(server.url, "run", "--", sys.executable, "-c", "raise SystemExit(4)")
    assert result.exit_code == 4  # the job's own code
    lines = result.stderr.splitlines()
    assert sum("the job exited with code 4" in line for line in lines) == 1
    assert sum("kept for inspection" in line for line in lines) == 1
    assert not any(line.startswith("error: ") for line in lines)


def test_a_recorded_input_that_is_no_commit_id_is_not_followed(server: EmbeddedServer,
                                                               job: str) -> None:
    """Properties are client-written: an input recorded as a ref expression is no input."""
    server.store.commit("main", [], message="forged", author="x",
                        properties={RUN_ID: "forged-1", RUN_INPUT: "main~1"})
    result = lv(server.url, "run", "--from-inputs", "forged-1", "--", sys.executable, job,
                "1")
    assert result.exit_code == 2 and "no run 'forged-1'" in result.stderr
    assert [b.name for b in connect(server.url).branches()] == ["main"]
