"""The seed's DAG (`examples/airflow_dag.py`) run as README says, with real spark-submits:
the commands of README's "Run the seed's DAG", in an Airflow home of their own (a good run
publishes; a run whose data fails main's check fails the merge task and keeps its
branch), and the example run as a script (`dag.test()` in a throwaway home)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.airflow.metadata import DAG_ID, RUN_ID, TASK_ID
from spark_lakeversion.api import connect

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README_PORT = "8181"


def readme_commands() -> list[str]:
    """The shell block of README's "Run the seed's DAG", line by line."""
    section = (ROOT / "README.md").read_text().split("### Run the seed's DAG", 1)[1]
    return section.split("```bash\n", 1)[1].split("\n```", 1)[0].splitlines()


def clean_env() -> dict[str, str]:
    """This process's environment without the Airflow settings of the other tests, with
    the virtualenv's scripts first (what `. .venv/bin/activate` does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def amounts(url: str, ref: str) -> list[float]:
    table = RestCatalog("r", uri=url + "/iceberg", warehouse=ref).load_table("db.orders")
    return sorted(table.scan().to_arrow().column("amount").to_pylist())


def task_states(airflow_home: Path, run_id: str) -> dict[str, str]:
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        return dict(db.execute("SELECT task_id, state FROM task_instance WHERE run_id = ?",
                               (run_id,)).fetchall())


def test_readme_commands_publish_then_refuse(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the clone's examples/
    env = {**clean_env(), "PWD": str(tmp_path)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    commands = [line.replace(README_PORT, port) for line in readme_commands()]
    assert commands[0].startswith("make setup")  # done: this test runs in that venv
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    server = None
    try:
        for line in commands[1:]:
            if line.startswith("export "):
                for item in shlex.split(line[len("export "):]):
                    key, _, value = item.partition("=")
                    env[key] = os.path.expandvars(value.replace("$PWD", str(tmp_path)))
            elif line.endswith("&"):
                server = subprocess.Popen(line.rstrip("& "), shell=True, env=env,
                                          cwd=tmp_path, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True)
                wait_for(url)
            else:
                done[line] = subprocess.run(line, shell=True, env=env, cwd=tmp_path,
                                            text=True, capture_output=True, timeout=600)
        home = Path(env["AIRFLOW_HOME"])
        assert home == tmp_path / "airflow-home"
        good, check, bad, branches = [done[c] for c in commands[-4:]]
        # the first run publishes: every task succeeded, the rows on main, no branch left
        assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
        assert "state=success" in good.stdout + good.stderr
        catalog = connect(url)
        main = catalog.branch("main")
        published = main.head
        assert published.properties[DAG_ID] == "lakeversion_pipeline"
        assert published.properties[TASK_ID] == "merge"
        append = catalog.store.get_commit(published.parents[1])
        assert append.properties[TASK_ID] == "spark_submit"
        assert append.properties[RUN_ID] == published.properties[RUN_ID]
        assert len(amounts(url, "main")) == 100  # the DAG's default rows
        # the bad run: refused by the check, main untouched, the branch kept, merge failed
        assert check.returncode == 0, check.stderr
        assert bad.returncode == 1 and "DagRun failed" in bad.stderr
        assert main.head.id == published.id
        [kept] = [b.name for b in catalog.branches() if b.name.startswith("etl/")]
        assert "." not in kept and ":" not in kept
        assert min(amounts(url, kept)) == -99.0
        assert kept in branches.stdout
        bad_run = catalog.branch(kept).head.properties[RUN_ID]
        assert task_states(home, bad_run) == {
            "create_branch": "success", "spark_submit": "success", "merge": "failed",
            "delete_branch": "upstream_failed"}
        assert f"SELECT * FROM lv.`db@{kept}`.orders" in bad.stdout + bad.stderr
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/refs", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"lakeversion serve did not answer at {url}")


def test_example_as_a_script(tmp_path: Path) -> None:
    script = str(ROOT / "examples" / "airflow_dag.py")
    env = clean_env()
    good = subprocess.run([sys.executable, script], env=env, cwd=tmp_path, text=True,
                          capture_output=True, timeout=600)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    assert re.search(r"^run manual__\S+: state success$", good.stdout, re.M)
    assert re.search(r"^published on main: commit [0-9a-f]{40}$", good.stdout, re.M)
    bad = subprocess.run([sys.executable, script, "--bad"], env=env, cwd=tmp_path,
                         text=True, capture_output=True, timeout=600)
    assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-3000:]
    assert re.search(r"^run manual__\S+: state failed$", bad.stdout, re.M)
    branch = re.search(r"^check refused the merge of (etl/\S+) into main:$", bad.stdout,
                       re.M)
    assert branch is not None, bad.stdout
    kept = branch.group(1)
    assert "." not in kept
    assert re.search(r"^  FAILED   no_negative_amounts  violations=1 ", bad.stdout, re.M)
    assert '{"id": -1, "amount": -99.0}' in bad.stdout
    assert f"run failed: branch {kept} is kept for inspection" in bad.stdout
    assert f"  read db.orders as: SELECT * FROM lv.`db@{kept}`.orders" in bad.stdout
    assert list(tmp_path.iterdir()) == []  # nothing left in the working directory
