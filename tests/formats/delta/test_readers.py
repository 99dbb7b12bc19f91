"""Every Delta reader reads every branch state, locally and on S3: our handles (their
DataFusion scan and `handle.table`'s pyarrow reader), deltalake's own `DeltaTable(uri)`
(`to_pyarrow_table`, `to_pyarrow_dataset`, `QueryBuilder`) and DuckDB's `delta_scan`.

A branch log names its parent's files by a relative path with ``..`` (`log.add_path`).
Measured with deltalake 1.6.6 and DuckDB 1.4.4, two plain readers cannot follow a path out
of the log's directory in any form (README, "Reading Delta branches"): deltalake's pyarrow
reader (it percent-encodes ``..`` and prefixes URIs with the table root), and DuckDB's
`delta_scan` on S3 (it sends ``..`` to S3 literally). For a state whose files all lie in its
log's directory (the table's own log, merges included, and a branch log once its parent's
files are rewritten) they read it too. Whatever a reader cannot read, it refuses: no reader
returns wrong rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.handle import DeltaHandle
from tests.formats.delta.helpers import (
    ID_P_V_ARROW,
    DeltaLake,
    Rows,
    data,
    independent_rows,
    live_files,
    newest_version,
    sorted_rows,
)

BASE = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "a", 40)]
Reader = Callable[[], Rows]


def _query(table: Any) -> Rows:
    from deltalake import QueryBuilder

    return sorted_rows(QueryBuilder().register("t", table).execute("SELECT * FROM t"))


def readers(lake: DeltaLake, handle: DeltaHandle) -> dict[str, tuple[Reader, bool]]:
    """Each reader of `handle`'s state and whether it must read it (else it must fail)."""
    from deltalake import DeltaTable

    state = handle.state()
    files = live_files(state, lake.io)
    inside = all(uri.startswith(state.location + "/") for uri, _ in files)
    # DuckDB reads relative paths out of the log's directory on local files only, and
    # joins absolute URIs (logs written before) onto the table root anywhere
    duckdb_reads = inside or (lake.local and not any("://" in raw for _, raw in files))

    def plain() -> Any:
        return DeltaTable(state.location, version=state.version,
                          storage_options=lake.storage_options(state.location))

    def duckdb() -> Rows:
        con = lake.duckdb()
        try:
            return sorted(con.execute(
                f"SELECT id, p, v FROM delta_scan('{state.location}')").fetchall())
        finally:
            con.close()

    out: dict[str, tuple[Reader, bool]] = {
        "handle.to_arrow": (lambda: sorted_rows(handle.to_arrow()), True),
        "handle.table.to_pyarrow_table": (
            lambda: sorted_rows(handle.table.to_pyarrow_table()), True),
        "handle.table.to_pyarrow_dataset": (
            lambda: sorted_rows(handle.table.to_pyarrow_dataset().to_table()), True),
        "handle.table QueryBuilder": (lambda: _query(handle.table), True),
        "deltalake to_pyarrow_table": (lambda: sorted_rows(plain().to_pyarrow_table()),
                                       inside),
        "deltalake to_pyarrow_dataset": (
            lambda: sorted_rows(plain().to_pyarrow_dataset().to_table()), inside),
        "deltalake QueryBuilder": (lambda: _query(plain()), True),
    }
    # delta_scan reads a log's newest version only (it takes no version)
    if state.version == newest_version(state.location, lake.io):
        out["duckdb delta_scan"] = (duckdb, duckdb_reads)
    return out


def check(lake: DeltaLake, handle: DeltaHandle, expected: Rows) -> dict[str, bool]:
    """Every reader that must read the state returns exactly `expected`; the others fail.
    Which readers read it, by name."""
    assert independent_rows(handle.state(), lake.io) == sorted(expected)
    seen: dict[str, bool] = {}
    for name, (read, must) in readers(lake, handle).items():
        if must:
            assert read() == sorted(expected), name
        else:
            with pytest.raises(Exception):  # noqa: B017 - any refusal, never wrong rows
                read()
        seen[name] = must
    return seen


def test_every_reader_reads_every_branch_state(lake: DeltaLake) -> None:
    cat = lake.catalog
    main = cat.branch("main").delta("db.events")
    main.create(ID_P_V_ARROW, partition_by=["p"])
    check(lake, main, [])
    main.append(data((1, "a", 10), (2, "a", 20), (3, "b", 30)))
    main.append(data((4, "a", 40)))
    assert all(check(lake, main, BASE).values())  # the table's own log: everyone reads
    cat.branch("dev").create()
    dev = cat.branch("dev").delta("db.events")
    check(lake, dev, BASE)
    dev.append(data((5, "c", 50)))  # the first write: a branch log naming main's files
    assert dev.state().location != main.state().location
    seen = check(lake, dev, [*BASE, (5, "c", 50)])
    assert seen["deltalake QueryBuilder"] and not seen["deltalake to_pyarrow_table"]
    assert seen.get("duckdb delta_scan") is lake.local
    check(lake, main, BASE)
    dev.delete("id = 2")  # a parent's file: our rewrite
    expected = [(1, "a", 10), (3, "b", 30), (4, "a", 40), (5, "c", 50)]
    check(lake, dev, expected)
    dev.update({"v": "v + 1"}, "p = 'b'")
    expected = [(1, "a", 10), (3, "b", 31), (4, "a", 40), (5, "c", 50)]
    check(lake, dev, expected)
    dev.merge(data((4, "a", 400), (9, "z", 90)), on="id")
    expected = [(1, "a", 10), (3, "b", 31), (4, "a", 400), (5, "c", 50), (9, "z", 90)]
    check(lake, dev, expected)
    check(lake, main, BASE)
    main.append(data((6, "d", 60)))  # main moves on: the merge replays on main's log
    check(lake, main, [*BASE, (6, "d", 60)])
    result = cat.store.merge("dev", "main")
    assert result.successful and not result.fast_forward
    merged = [*expected, (6, "d", 60)]
    assert main.state().location == main.state().root
    assert all(check(lake, main, merged).values())  # branch files: _branches/dev-.../...
    cat.tag("merged").create(from_="main")
    dev.overwrite(data((7, "b", 70), (8, "e", 80)))  # every live file now in dev's log dir
    assert all(check(lake, dev, [(7, "b", 70), (8, "e", 80)]).values())
    dev.rollback("merged")
    check(lake, dev, merged)
    main.rollback("main~2")
    check(lake, main, BASE)
    cat.branch("ff").create(from_="main")
    ff = cat.branch("ff").delta("db.events")
    ff.append(data((10, "a", 100)))
    result = cat.store.merge("ff", "main")  # ff's change: the next version of main's log
    assert not result.fast_forward and result.no_ff_reason
    assert main.state().location == main.state().root
    assert all(check(lake, main, [*BASE, (10, "a", 100)]).values())
    check(lake, cat.ref("merged").delta("db.events"), merged)


def test_logs_naming_parent_files_by_absolute_uri_stay_readable(
        lake: DeltaLake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Branch logs written before named their parent's files by absolute URI: our handles
    (and deltalake's QueryBuilder) still read them, and the branch writes on."""
    cat = lake.catalog
    main = cat.branch("main").delta("db.events")
    main.create(ID_P_V_ARROW, partition_by=["p"])
    main.append(data((1, "a", 10), (2, "a", 20), (3, "b", 30)))
    main.append(data((4, "a", 40)))
    cat.branch("dev").create()
    dev = cat.branch("dev").delta("db.events")
    real = log.add_path
    with monkeypatch.context() as patched:  # the old form: every file by absolute URI
        patched.setattr(log, "add_path", lambda location, uri: uri)
        dev.append(data((5, "c", 50)))
    assert log.add_path is real
    state = dev.state()
    first = log.commit_actions(state.location, 0, lake.io)
    assert all("://" in a["add"]["path"] for a in first if "add" in a)
    seen = check(lake, dev, [*BASE, (5, "c", 50)])
    assert seen["handle.table.to_pyarrow_table"] and seen["deltalake QueryBuilder"]
    dev.delete("id = 1")
    expected = [(2, "a", 20), (3, "b", 30), (4, "a", 40), (5, "c", 50)]
    check(lake, dev, expected)
    assert cat.store.merge("dev", "main").successful
    check(lake, main, expected)
