"""The run's environment contract on the Python side: `connect()` joins the run's server,
its branch and stamps the run id on what it commits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.api import connect
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import Content, ContentType
from spark_lakeversion.runs import RUN_ID, iceberg_catalog_properties
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    srv = start_embedded_server(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "wh"))
    yield srv
    srv.stop()


def test_connect_uses_the_run_server_branch_and_id(server: EmbeddedServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    connect(server.url).branch("run/x1").create()
    monkeypatch.setenv("LAKEVERSION_SERVER_URL", server.url)
    monkeypatch.setenv("LAKEVERSION_BRANCH", "run/x1")
    monkeypatch.setenv("LAKEVERSION_RUN_ID", "x1")
    monkeypatch.setenv("LAKEVERSION_STORE", "sqlite:///:memory:")  # the server wins
    catalog = connect()
    assert catalog.default_branch == "run/x1"
    head = catalog.branch().head  # no name: the run's branch
    assert head.id == connect(server.url).branch("run/x1").head.id
    with catalog.branch().transaction("add ns1") as tx:
        tx.put("ns1", Content(ContentType.NAMESPACE, "ns-1", {"properties": {}}))
    commit = tx.commit
    assert commit is not None and commit.properties[RUN_ID] == "x1"
    assert iceberg_catalog_properties() == {
        "uri": server.url + "/iceberg", "warehouse": "run/x1",
        "header.X-Lakeversion-Properties": '{"lakeversion.run.id": "x1"}'}


def test_outside_a_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LAKEVERSION_SERVER_URL", "LAKEVERSION_BRANCH", "LAKEVERSION_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    catalog = connect(f"sqlite:///{tmp_path / 'x.db'}")
    assert catalog.default_branch == "main" and catalog.properties == {}
    with pytest.raises(InvalidInput, match="LAKEVERSION_SERVER_URL"):
        iceberg_catalog_properties()


def test_transactional_run_example() -> None:
    """`examples/transactional_run.py` as a user runs it (own process)."""
    import subprocess
    import sys

    example = Path(__file__).resolve().parents[1] / "examples" / "transactional_run.py"
    done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    first, second, third = done.stdout.splitlines()
    assert "merged into main" in first and first.endswith("deleted: True")
    assert "refused: ChecksFailed" in second and second.endswith("kept: True")
    assert third == "main has 2 orders"


def namespace(name: str, **properties: str) -> Content:
    return Content(ContentType.NAMESPACE, f"ns-{name}", {"properties": properties})


def test_run_merges_into_a_protected_branch(server: EmbeddedServer) -> None:
    """Protection refuses direct writes; a run's merge is the way in."""
    from spark_lakeversion.errors import ProtectedBranch

    catalog = connect(server.url)
    catalog.branch("main").protect()
    with pytest.raises(ProtectedBranch), catalog.branch("main").transaction("x") as direct:
        direct.put("direct", namespace("direct"))
    with catalog.run(on="main") as run, run.branch.transaction("add sales") as tx:
        tx.put("sales", namespace("sales"))
    assert "sales" in {str(k) for k in catalog.branch("main").entries()}
    assert run.succeeded and not run.branch.exists()
    # through the gate (no checks on main: its summary says so), as a merge commit
    assert run.merge_result is not None and run.merge_result.fast_forward is False
    merge = catalog.branch("main").head
    assert len(merge.parents) == 2 and merge.properties["lakeversion.checks"] == "none"


def test_run_whose_merge_conflicts_keeps_the_branch(server: EmbeddedServer) -> None:
    from spark_lakeversion.errors import ConflictError

    catalog = connect(server.url)
    with pytest.raises(ConflictError) as conflict, catalog.run(on="main") as run:
        with run.branch.transaction("on the run") as tx:
            tx.put("shared", namespace("shared", owner="run"))
        with catalog.branch("main").transaction("meanwhile on main") as tx:
            tx.put("shared", namespace("shared2", owner="main"))
    main = catalog.branch("main")
    assert main.table("shared").fields["properties"] == {"owner": "main"}
    assert run.branch.table("shared").fields["properties"] == {"owner": "run"}
    assert run.error is conflict.value and not run.succeeded
    assert run.merge_result is not None and not run.merge_result.successful


def test_spark_conf_refuses_bad_property_names() -> None:
    from spark_lakeversion.spark import spark_conf

    for bad in ("", "a=b", "with space"):
        with pytest.raises(InvalidInput, match="commit property"):
            spark_conf("http://127.0.0.1:9", properties={bad: "v"}, shim_jar="x.jar")


def test_run_branch_names_and_spark_sql_names() -> None:
    from spark_lakeversion.runs import ref_safe, run_branch_name
    from spark_lakeversion.spark import sql_name

    assert ref_safe("manual__2026-12-06T06:23:16.267591+00:00") \
        == "manual__2026-12-06T06-23-16-267591"
    assert ref_safe("scheduled__2026-01-01T00:00:00+02:00") \
        == "scheduled__2026-01-01T00-00-00-02-00"
    assert ref_safe("...") == "run"
    assert run_branch_name("20261126T021800-3f9a1c") == "run/20261126T021800-3f9a1c"
    assert "." not in run_branch_name("a.b.c", prefix="etl")
    assert sql_name("db.orders", "etl/x-1") == "lv.`db@etl/x-1`.orders"
    assert sql_name(["a", "b", "my table"], "v1.0", "cat") == "cat.`a@v1.0`.b.`my table`"
    assert sql_name("db.t`x", "dev") == "lv.`db@dev`.`t``x`"
    with pytest.raises(InvalidInput):
        sql_name("t", "dev")
