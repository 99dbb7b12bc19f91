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


def test_changes_read_plain_parquet_in_duckdb_only_the_changed_files(
        keyed: ServerLake, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `changes.` table of plain Parquet files (no delete applies) is read by DuckDB
    itself: the Arrow reader is never asked, only the changed files are opened, and the
    rows are those of the paged row diff."""
    from spark_lakeversion.formats.iceberg.rows import IcebergSide
    from spark_lakeversion.model import Key
    from spark_lakeversion.rows.diff import RowDiff, diff_table
    from spark_lakeversion.versioning.rowdiff import row_changes_of

    store = keyed.store
    store.create_ref("dev")
    set_v(keyed, "dev", 3, None)
    set_v(keyed, "dev", 17, "seventeen")
    key = Key.of("db.k")
    before, after = (store.get_contents(ref, [key])[key] for ref in ("main", "dev"))
    with RowDiff(row_changes_of(before, after, key, {})) as paged:
        expected = paged.rows()

    def never(*_: object, **__: object) -> None:
        raise AssertionError("the Arrow reader was asked for plain Parquet rows")

    monkeypatch.setattr(IcebergSide, "batches", never)
    changes = row_changes_of(before, after, key, {})
    rows = diff_table(changes)
    assert rows.equals(expected)
    assert rows.to_pylist() == [
        {"change": "update_before", "id": 3, "v": "v3"},
        {"change": "update_after", "id": 3, "v": None},
        {"change": "update_before", "id": 17, "v": "v17"},
        {"change": "update_after", "id": 17, "v": "seventeen"}]
    changed = {f.path for side in (changes.before, changes.after) for f in side.files}
    assert changes.counter.paths() == changed
    # each overwrite replaced one of main's 4 files (by its other rows and the new one);
    # the 2 files both sides share are never opened
    assert (len(changes.before.files), len(changes.after.files)) == (2, 4)
    assert changes.skipped == 2


def test_a_checks_database_keeps_no_name_for_the_changed_files(keyed: ServerLake) -> None:
    """The diff of a `changes.` check runs in the check's own database before it is
    confined: afterwards that database names no view or table of the changed files (the
    check's SQL reads the diff, never the files), and keeps the row budget as its memory
    limit and its own spill directory, never made unless the diff spilled."""
    from spark_lakeversion.checks.changes import changes_table
    from spark_lakeversion.checks.sql import connect

    store = keyed.store
    store.create_ref("dev")
    set_v(keyed, "dev", 3, None)
    head = {ref: store.get_ref(ref).head for ref in ("main", "dev")}
    context = store.check_context(head["dev"], "dev", head["dev"], "main", head["main"],
                                  tuple(store.diff("main", "dev")))
    con = connect((), store.limits.max_row_memory_bytes)
    try:
        rows = changes_table(context, "db.k", con)
        assert rows.column("change").to_pylist() == ["update_before", "update_after"]
        assert con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal"
                           ).fetchall() == []
        assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == []
        budget = store.limits.max_row_memory_bytes // (1024 * 1024)
        setting = con.execute("SELECT current_setting('memory_limit'), "
                              "current_setting('temp_directory')").fetchone()
        assert setting[0] in (f"{budget}.0 MiB", f"{budget / 1024:.1f} GiB")
        assert Path(setting[1]).parent.name.startswith("lakeversion-rows-")
        assert not Path(setting[1]).exists()
    finally:
        con.close()


def _plain_side(paths: list[str], schema: pa.Schema) -> object:
    from spark_lakeversion.rows.source import FileRef, RowSide

    class Plain(RowSide):
        arrow = schema

        def plain_parquet(self) -> list[str] | None:
            return paths

        def batches(self, files: object = None, *, partition: bool = False) -> object:
            return iter(())

    return Plain([FileRef(p) for p in paths])


def test_native_reads_only_files_it_reads_as_the_row_reader_would(tmp_path: Path) -> None:
    """DuckDB reads a side itself only where that gives what the format's reader gives: a
    Parquet file without field ids (which DuckDB would read as nulls), a file lacking one
    of its side's columns, a nested column whose element has no field id, a file that is
    not Parquet, a path DuckDB would take as a glob, or a type outside the plain ones, all
    send the side back to its Arrow reader."""
    import duckdb
    import pyarrow.parquet as pq

    from spark_lakeversion.rows.native import native_source
    from spark_lakeversion.rows.schema import with_field_id

    schema = pa.schema([with_field_id(pa.field("id", pa.int64()), 1),
                        with_field_id(pa.field("v", pa.string()), 2)])
    rows = pa.table({"id": [1, 2], "v": ["a", None]})
    pq.write_table(rows.cast(schema), tmp_path / "ids.parquet")
    pq.write_table(rows, tmp_path / "no_ids.parquet")
    pq.write_table(rows.select(["id"]).cast(schema.remove(1)), tmp_path / "no_v.parquet")
    (tmp_path / "not.parquet").write_bytes(b"PAR1 not a footer PAR1")
    nested = pa.schema([*schema, with_field_id(pa.field("tags", pa.list_(pa.string())), 3)])
    pq.write_table(pa.table({"id": [1], "v": ["a"], "tags": [["x"]]}, nested),
                   tmp_path / "nested_element_without_id.parquet")
    (tmp_path / "glob[1]").mkdir()
    pq.write_table(rows.cast(schema), tmp_path / "glob[1]" / "ids.parquet")
    con = duckdb.connect()
    try:
        source = native_source(_plain_side([str(tmp_path / "ids.parquet")], schema),
                               schema)  # type: ignore[arg-type]
        assert source is not None
        assert con.execute(source).fetchall() == [(1, "a"), (2, None)]
        for name in ("no_ids.parquet", "no_v.parquet", "glob[1]/ids.parquet", "not.parquet",
                     "nested_element_without_id.parquet"):
            side = _plain_side([str(tmp_path / "ids.parquet"), str(tmp_path / name)], schema)
            assert native_source(side, schema) is None, name  # type: ignore[arg-type]
        stamped = pa.schema([*schema, with_field_id(pa.field("t", pa.timestamp("us")), 3)])
        side = _plain_side([str(tmp_path / "ids.parquet")], schema)
        assert native_source(side, stamped) is None  # type: ignore[arg-type]
    finally:
        con.close()


def test_a_changes_check_whose_diff_spills_past_the_budget_still_answers(
        tmp_path: Path) -> None:
    """A `changes.` diff whose carried-over rows outgrow the row budget spills to the check
    database's own directory. DuckDB will not move a spill directory it has used, so
    confinement must not try to (it did: every such check was an error, `Cannot switch
    temporary directory`). Checks of both kinds of database answer, reading only changes
    and changes beside the table, and nothing of the spill is left once the merge is done."""
    from spark_lakeversion.limits import Limits
    from spark_lakeversion.rows.engine import spill_directory

    rows = 400_000
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               limits=Limits(max_row_memory_bytes=64 * 1024 * 1024)) as server:
        lake = ServerLake(server, tmp_path / "wh")
        create_keyed(lake, "db.k", {i: f"{i:0>100}" for i in range(rows)})
        store = lake.store
        store.create_ref("dev")
        # ten rows updated in one file of all of them: copy-on-write carries the others over
        lake.catalog("dev").load_table("db.k").overwrite(pa.table(
            {"id": list(range(10)), "v": [f"{i:x>100}" for i in range(10)]},
            schema=KEYED_ARROW), overwrite_filter="id < 10")
        store.add_check(CheckSpec("main", "new_nulls", CheckKind.SQL, NEW_NULLS))
        store.add_check(CheckSpec("main", "beside_the_table", CheckKind.SQL,
                                  "SELECT c.id FROM changes.db.k c JOIN db.k t USING (id) "
                                  "WHERE c.change = 'update_after' AND c.v <> t.v"))
        result = store.merge("dev", "main")
        assert {c["name"]: (c["status"], c["message"]) for c in result.checks} == {
            "new_nulls": ("passed", "no violating rows"),
            "beside_the_table": ("passed", "no violating rows")}
        assert lake.catalog("main").load_table("db.k").scan(
            row_filter="id = 7").to_arrow().column("v").to_pylist() == [f"{7:x>100}"]
    from spark_lakeversion.checks.sql import _await_closing

    _await_closing()
    spills = Path(spill_directory()).parent
    assert [p for p in spills.iterdir()] == []
