"""`GET /api/v1/diff/rows/plan`: the row diff planned for Spark names each side's commit and
only the files live on that side, reads no row, needs read on both refs and answers bad
input with a typed 400 (the Spark run itself: tests/spark/test_row_diff_engines.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from spark_lakeversion.api import connect
from spark_lakeversion.errors import Forbidden, InvalidInput, KeyNotFound, RefNotFound
from spark_lakeversion.formats.iceberg.rows import row_changes
from spark_lakeversion.rows.plan import schema_of
from tests.lake import ServerLake
from tests.rows.helpers import team_reader_server, update


def test_plan_names_only_the_files_live_on_one_side(lake: ServerLake) -> None:
    lake.store.create_ref("dev")
    update(lake, "dev", "db.k", 7, "seven")
    store = connect(lake.server.url).store
    plan = store.plan_row_diff("main", "dev", "db.k", columns=["v"], limit=5)
    main, dev = (store.resolve(r).commit_id for r in ("main", "dev"))
    assert (plan["from_commit"], plan["to_commit"]) == (main, dev)
    changes = row_changes(lake.store.get_content("main", "db.k"),
                          lake.store.get_content("dev", "db.k"), lake.store.io_properties)
    by_side = {s["side"]: s for s in plan["scans"]}
    assert set(by_side) == {"before", "after"}
    assert by_side["before"]["files"] == sorted(f.path for f in changes.before.files)
    assert by_side["after"]["files"] == sorted(f.path for f in changes.after.files)
    assert by_side["before"]["namespace"] == [f"db@{main}"] and by_side["after"]["name"] == "k"
    # 4 data files on main, one rewritten on dev: 3 shared, never named
    assert plan["statistics"]["files_skipped"] == 3 and plan["statistics"]["files_read"] == 0
    assert plan["identifier"] == ["id"] and plan["dialect"] == "spark"
    assert schema_of(plan["schema"]).names == ["change", "v"]
    assert plan["query"].endswith("LIMIT 5") and "`v`" in plan["query"]
    assert all(s.startswith("CREATE OR REPLACE TEMPORARY VIEW `lv_") for s in plan["statements"])
    duck = store.plan_row_diff("main", "dev", "db.k", summary=True, dialect="duckdb")
    assert all(s.startswith('CREATE TEMP TABLE "lv_') for s in duck["statements"])
    assert schema_of(duck["schema"]).names == ["partition", "inserted", "deleted", "updated"]


def test_plan_bad_input_is_typed(lake: ServerLake) -> None:
    store = connect(lake.server.url).store
    with pytest.raises(RefNotFound):
        store.plan_row_diff("main", "nope", "db.k")
    with pytest.raises(KeyNotFound):
        store.plan_row_diff("main", "main", "db.none")
    with pytest.raises(InvalidInput, match="unknown column"):
        store.plan_row_diff("main", "main", "db.k", columns=["nope"])
    url = f"{lake.server.api_url}/diff/rows/plan"
    base = {"from": "main", "to": "main", "table": "db.k"}
    for extra, says in (({"dialect": "gpu"}, "unknown row engine"), ({"limit": "x"}, "limit"),
                        ({"limit": "9" * 30}, "limit"), ({"summary": "maybe"}, "summary")):
        answer = httpx.get(url, params={**base, **extra})
        assert answer.status_code == 400, (extra, answer.text)
        assert answer.json()["error"]["type"] == "InvalidInput" and says in answer.text


def test_plan_needs_read_on_both_refs(tmp_path: Path) -> None:
    """A plan names data files: a reader of one side only gets 403 naming none."""
    from spark_lakeversion.versioning.http import RestVersionStore

    with team_reader_server(tmp_path) as (server, tokens):
        viewer = RestVersionStore(server.url, tokens["viewer"])
        with pytest.raises(Forbidden):
            viewer.plan_row_diff("main", "team-1", "db.k")
        assert viewer.plan_row_diff("team-1", "team-1", "db.k")["scans"] == []
        answer = httpx.get(f"{server.api_url}/diff/rows/plan", params={
            "from": "team-1", "to": "main", "table": "db.k"},
            headers={"Authorization": f"Bearer {tokens['viewer']}"})
        assert answer.status_code == 403 and ".parquet" not in answer.text
        plan = RestVersionStore(server.url, tokens["root"]).plan_row_diff("main", "team-1",
                                                                         "db.k")
        assert len(plan["scans"]) == 2
