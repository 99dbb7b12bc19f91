"""No stray network calls: the demo, every example and README's Python example touch
nothing outside loopback (issue 25). Each runs in its own process under the audit hook of
`netguard/sitecustomize.py`; Spark's examples run under the same guard in
tests/spark/test_examples.py."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.examples.helpers import EXAMPLES, REPO, run_example, run_guarded
from tests.netguard import STRAY_CALLS

#: run here in full (cheap: no Spark, no Airflow)
RUN = ["delta_branches.py", "access_control.py", "transactional_run.py"]
#: run in full, under the same guard, by tests/spark/test_examples.py (with their output)
RUN_WITH_SPARK = ["quickstart.py", "write_audit_publish.py", "store_walkthrough.py",
                  "views_on_branches.py"]
#: jobs and DAGs that need spark-submit or an Airflow scheduler: imported under the guard
IMPORT_ONLY = ["spark_submit_job.py", "airflow_spark_job.py", "airflow_dag.py"]


def test_every_example_is_guarded() -> None:
    assert sorted(RUN + RUN_WITH_SPARK + IMPORT_ONLY) == sorted(
        p.name for p in EXAMPLES.glob("*.py"))


def test_the_guard_catches_a_stray_call_even_when_it_is_caught(tmp_path: Path) -> None:
    snippet = ("import socket\n"
               "for target in (('192.0.2.1', 80), ('169.254.169.254', 80)):\n"
               "    try:\n"
               "        socket.create_connection(target, timeout=0.2)\n"
               "    except OSError:\n"
               "        pass\n")
    with pytest.raises(AssertionError, match="non-loopback network calls"):
        run_guarded(["-c", snippet], tmp_path)
    assert "169.254.169.254" in (tmp_path / "netguard.log").read_text()
    with pytest.raises(AssertionError, match="example.com"):
        run_guarded(["-c", "import socket\ntry:\n    socket.getaddrinfo('example.com', 80)\n"
                           "except OSError:\n    pass\n"], tmp_path)
    loopback = ("import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\n"
                "socket.create_connection(s.getsockname()).close()\n"
                "socket.getaddrinfo('localhost', 80)\n")
    run_guarded(["-c", loopback], tmp_path)  # loopback is allowed


def test_the_suite_wide_guard_sees_a_connection_elsewhere() -> None:
    try:
        socket.create_connection(("192.0.2.1", 9), timeout=0.05).close()
    except OSError:
        pass
    assert STRAY_CALLS == ["socket.connect ('192.0.2.1', 9)"]
    STRAY_CALLS.clear()  # seen: the autouse fixture of tests/conftest.py would fail this test


@pytest.mark.parametrize("script", RUN)
def test_example_runs_offline(script: str, tmp_path: Path) -> None:
    assert run_example(script, tmp_path).strip()


@pytest.mark.parametrize("script", IMPORT_ONLY)
def test_job_and_dag_examples_import_offline(script: str, tmp_path: Path) -> None:
    run_guarded(["-c", "import runpy, sys; runpy.run_path(sys.argv[1], run_name='imported')",
                 str(EXAMPLES / script)], tmp_path)


def test_demo_shows_a_real_conflict_offline(tmp_path: Path) -> None:
    out = run_guarded(["-m", "spark_lakeversion.cli.main", "demo"], tmp_path).stdout
    assert "ROW_CONFLICT on sales.orders" in out  # a delete against an update of id 2
    assert "cannot be compared" not in out and "Kernel error" not in out
    assert list(tmp_path.iterdir()) == []  # the throwaway store and warehouse are gone


def _readme_python_api_example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_python_example_prints_what_its_comments_say(tmp_path: Path) -> None:
    code = _readme_python_api_example()
    out = run_guarded(["-c", code], tmp_path).stdout.splitlines()
    promised = [m.group(1).strip() for line in code.splitlines()
                if line.startswith("print(") and (m := re.search(r"#\s*(.+)$", line))]
    promised.append("INVALID_NAME")  # printed inside the `except` at the end
    printed = [line for line in out if not re.match(r"[0-9a-f]{12} ", line)]
    assert printed == promised
    assert (tmp_path / "lake.db").is_file() and (tmp_path / "lake" / "sales").is_dir()
