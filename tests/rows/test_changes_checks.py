"""`changes.db.t` in SQL checks and `ctx.changes("db.t")` in Python checks: the rows a merge
changes (target -> preview). They pass and fail as expected and read only the changed
files: with a shared data file gone from disk, they still run, while the same check over
the whole table cannot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pytest

from spark_lakeversion.checks.sql_rules import check_sql
from spark_lakeversion.errors import ChecksFailed, InvalidInput
from spark_lakeversion.model import CheckKind, CheckSpec
from spark_lakeversion.server.embedded import start_embedded_server
from tests.lake import ServerLake
from tests.rows.helpers import KEYED_ARROW, create_keyed

NEW_NULLS = ("SELECT id FROM changes.db.k "
             "WHERE change IN ('insert', 'update_after') AND v IS NULL")
#: the same over the whole table (no file statistics can skip a file for it)
ALL_NULLS = "SELECT id FROM db.k WHERE v IS NULL OR lower(v) = ''"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[ServerLake]:
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               check_modules=["tests.rows.helpers"]) as server:
        lake = ServerLake(server, tmp_path / "wh")
        create_keyed(lake, "db.k", {i: f"v{i}" for i in range(20)}, files=4)
        yield lake


def set_v(lake: ServerLake, ref: str, key: int, value: str | None) -> None:
    lake.catalog(ref).load_table("db.k").overwrite(
        pa.table({"id": [key], "v": [value]}, schema=KEYED_ARROW), overwrite_filter=f"id = {key}")


def untouched_file(lake: ServerLake, key: int) -> Path:
    """The data file of main holding `key`."""
    for task in lake.catalog("main").load_table("db.k").scan(row_filter=f"id = {key}") \
            .plan_files():
        return Path(urlparse(task.file.file_path).path)
    raise AssertionError(key)


def test_changes_checks_pass_fail_and_read_only_changed_files(keyed: ServerLake) -> None:
    store = keyed.store
    store.add_check(CheckSpec("main", "sql_new_nulls", CheckKind.SQL, NEW_NULLS))
    store.add_check(CheckSpec("main", "py_new_nulls", CheckKind.PYTHON,
                              "tests.rows.helpers:no_null_v_in_new_rows"))
    store.add_check(CheckSpec("main", "all_nulls", CheckKind.SQL, ALL_NULLS))
    store.create_ref("dev")
    set_v(keyed, "dev", 3, "three")
    result = store.merge("dev", "main")
    assert {c["name"]: c["status"] for c in result.checks} == {
        "sql_new_nulls": "passed", "py_new_nulls": "passed", "all_nulls": "passed"}

    store.create_ref("dev2")
    set_v(keyed, "dev2", 7, None)
    gone = untouched_file(keyed, 15)  # neither side touches it
    gone.rename(gone.with_suffix(".away"))
    with pytest.raises(ChecksFailed) as caught:
        store.merge("dev2", "main")
    reports = {r["name"]: r for r in caught.value.reports}
    assert reports["sql_new_nulls"]["status"] == "failed"
    assert reports["sql_new_nulls"]["samples"] == [{"id": 7}]
    assert reports["py_new_nulls"]["status"] == "failed"
    assert reports["py_new_nulls"]["message"] == "2 changed row(s); null v in ids [7]"
    # the same check over the whole table needs the file the changes never opened
    assert reports["all_nulls"]["status"] == "error"
    assert gone.name in reports["all_nulls"]["message"]


def test_only_the_changes_catalog_is_added_to_what_sql_may_name() -> None:
    assert check_sql(NEW_NULLS) == [("changes", "db", "k")]
    for sql in ("SELECT * FROM changez.db.k", 'SELECT * FROM changes."db@secret".k',
                "SELECT * FROM changes.db.k AT (VERSION => 1)",
                "SELECT * FROM read_parquet('changes.parquet')"):
        with pytest.raises(InvalidInput):
            check_sql(sql)


def test_changes_of_a_table_in_no_state_is_an_error_report(keyed: ServerLake) -> None:
    store = keyed.store
    with pytest.raises(InvalidInput, match="changes"):
        store.add_check(CheckSpec("main", "none", CheckKind.SQL,
                                  "SELECT * FROM changes.db.nothing"))


def test_one_check_run_plans_each_tables_diff_once(keyed: ServerLake,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two SQL checks and a Python check of `changes.db.k` in one merge: the row diff is
    planned and read once for all three, and each sees it whole; the next merge plans its
    own."""
    from spark_lakeversion.checks import changes

    planned: list[str] = []
    real = changes.row_changes_of

    def counting(*args: object, **kwargs: object) -> object:
        planned.append(str(args[2]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(changes, "row_changes_of", counting)
    store = keyed.store
    store.add_check(CheckSpec("main", "sql_new_nulls", CheckKind.SQL, NEW_NULLS))
    store.add_check(CheckSpec("main", "sql_changed", CheckKind.SQL,
                              "SELECT id FROM changes.db.k WHERE change = 'delete'"))
    store.add_check(CheckSpec("main", "py_new_nulls", CheckKind.PYTHON,
                              "tests.rows.helpers:no_null_v_in_new_rows"))
    planned.clear()  # adding a SQL check runs it once on the branch as it is
    store.create_ref("dev")
    set_v(keyed, "dev", 3, None)
    with pytest.raises(ChecksFailed) as caught:
        store.merge("dev", "main")
    reports = {r["name"]: r for r in caught.value.reports}
    assert reports["sql_new_nulls"]["samples"] == [{"id": 3}]
    assert reports["sql_changed"]["status"] == "passed"
    assert reports["py_new_nulls"]["message"] == "2 changed row(s); null v in ids [3]"
    assert planned == ["db.k"]
    set_v(keyed, "dev", 3, "three")
    assert store.merge("dev", "main").checks
    assert planned == ["db.k", "db.k"]
