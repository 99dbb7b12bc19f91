"""SQL checks: DuckDB over exactly the three states a gate hands it, and nothing else.

Dialect: DuckDB SQL, one query (a `SELECT` or `WITH ... SELECT`) that selects the rows
violating the check, as in dbt tests; it passes when it returns no rows. Names:
- `db.table` (and a bare `table` of the first changed table's namespace): the preview;
- `target.db.table`: the target at the head the merge was planned on;
- `source.db.table`: the source's head;
- `preview.db.table`: the preview, spelled out;
- `changes.db.table`: the rows the merge changes (target -> preview), `change` column
  first (`insert`, `delete`, `update_before`, `update_after`): read before the lock from
  only the files live on one side (`checks/changes.py`), so its cost follows the change.

Least authority: each check gets a new DuckDB database in which `preview`, `target` and
`source` are in-memory catalogs of views over `iceberg_scan` of exactly the metadata file
of each Iceberg table of that state (a Delta table: its rows at that version, read through
deltalake before the lock, so held in memory: Delta checks suit tables that fit).
Then `allowed_directories` is set to exactly those tables' locations, external access is
disabled (no other file, no HTTP, no `INSTALL`, `LOAD` of a new extension, `COPY`,
`ATTACH` of a file), spilling is capped at zero bytes (nothing is written) and the
configuration is locked (no `SET`, `PRAGMA`, `RESET`), before
the check's SQL, validated by `sql_rules.check_sql` first, runs. S3 tables are read with
the server's FileIO credentials, through a DuckDB secret scoped to those locations.

A check that reads only `changes.db.t` (`reads_only_changes`) gets a bare database (made
ahead, as the others' are, and fit for the row diff within the store's budget then):
no extension loaded, no view, `allowed_directories` empty; its
relations are the row diffs' Arrow tables, computed in it and registered before the same
lock (the diff's DuckDB reads of the changed Parquet files, `rows.native`, happen before
it too, with paths from the manifests, never the check's SQL). So its cost is the diff's,
not a database start with extensions.

DuckDB's iceberg extension reads only the columns and files the query needs: no table is
materialised in Python. The report keeps the violation count and up to `MAX_SAMPLES` rows.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from spark_lakeversion.checks.changes import CHANGES, changes_table
from spark_lakeversion.checks.sql_rules import check_sql, duckdb_module
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.fileio import duckdb_s3_secret
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.log import open_table
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.model import CheckReport, CheckSpec, CheckStatus, Content, Key
from spark_lakeversion.rows.engine import prepare, spill_directory
from spark_lakeversion.versioning.gates.context import RELATIONS, GateContext

MAX_SAMPLES = 10
_COUNT_COLUMN = "__lakeversion_violations"
#: loaded into every check's database before it is confined (delta only when needed)
EXTENSIONS = ("httpfs", "avro", "iceberg")


def extension_directory() -> str:
    """Where the pip packages duckdb-ext-iceberg/-avro/-httpfs/-delta put the extensions."""
    try:
        import duckdb_ext
    except ImportError as exc:
        raise InvalidInput("SQL checks need DuckDB's extensions: "
                           "pip install 'spark-lakeversion[checks]'") from exc
    return str(Path(list(duckdb_ext.__path__)[0]) / "extensions")


def connect(extensions: Sequence[str] = EXTENSIONS, rows_budget: int | None = None) -> Any:
    """A new DuckDB database with `extensions` loaded (default: iceberg, avro and httpfs; no
    download: the extension directory comes from pip, and nothing loads itself), not yet
    confined, with a spill directory of its own (never made unless a row diff spills in
    it). With `rows_budget`, fit for a `changes.` diff within it (`rows.engine.prepare`).
    Without extensions it starts in ~15 ms; with them ~0.3-0.6 s."""
    duckdb = duckdb_module()
    con = duckdb.connect(config={"extension_directory": extension_directory(),
                                 "autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False,
                                 "temp_directory": spill_directory()})
    for ext in extensions:
        con.execute(f"LOAD {ext}")
    if rows_budget is not None:
        prepare(con, rows_budget)
    for alias in (*RELATIONS, CHANGES):  # empty until `confine` fills them: ahead of time
        con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {_ident(alias)}")
    return con


def reads_only_changes(names: Sequence[tuple[str, str, str]]) -> bool:
    """Whether a query (its `check_sql` names) reads only `changes.db.t` relations: Arrow
    from the row diff, registered into the database, so no extension and no table file
    is needed (the database is confined all the same)."""
    return all(catalog == CHANGES for catalog, _, _ in names)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _local(uri: str) -> str:
    """A location as DuckDB opens it: `file://` URIs as plain paths."""
    return uri[len("file://"):] if uri.startswith("file://") else uri


def _directories(location: str) -> list[str]:
    """`allowed_directories` entries for one table location (a local one under both
    spellings: manifests name their files as `file://` URIs)."""
    base = location.rstrip("/") + "/"
    if base.startswith("file://"):
        return [_local(base), base]
    if base.startswith("/"):
        return [base, "file://" + base]
    return [base]


def changed_tables(context: GateContext, names: Sequence[tuple[str, str, str]],
                   con: Any = None) -> dict[Key, pa.Table]:
    """The row diffs (target -> preview) of the tables the query names as `changes.db.t`,
    read before the lock through the formats' row readers (only the changed files), in
    the check's own database `con` when given."""
    keys = set(context.relations.get("preview", {})) | set(context.relations.get("target", {}))
    wanted = {(s, t) for c, s, t in names if c == CHANGES}
    return {key: changes_table(context, key, con) for key in sorted(keys)
            if (".".join(key.elements[:-1]).lower(), key.elements[-1].lower()) in wanted}


def confine(con: Any, relations: Mapping[str, Mapping[Key, Content]], io: Mapping[str, str],
            namespace: str | None, names: Sequence[tuple[str, str, str]] | None = None,
            changes: Mapping[Key, pa.Table] | None = None) -> None:
    """Fill the three catalogs of views (of the tables `names` may mean; None: all) and
    the `changes` catalog of row diffs (`changed_tables`), then lock DuckDB down to the
    tables' files. `con` comes from `connect`, which attached the four catalogs."""
    tables = [(alias, key, content) for alias in RELATIONS
              for key, content in sorted(relations.get(alias, {}).items())
              if content.type in (ICEBERG_TABLE, DELTA_TABLE)
              and (names is None or _named(alias, key,
                                           [n for n in names if n[0] != CHANGES]))]
    locations = [_location(key, content) for _, key, content in tables]
    s3 = sorted({loc.rstrip("/") + "/" for loc in locations if loc.startswith("s3://")})
    if s3:  # before any view: a view reads its metadata file when it is created
        con.execute(duckdb_s3_secret(io, s3))
    for number, (key, rows) in enumerate(sorted((changes or {}).items())):
        schema, table = ".".join(key.elements[:-1]) or "main", key.elements[-1]
        name = f"__lakeversion_changes_{number}"
        con.register(name, _plain(rows))
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {CHANGES}.{_ident(schema)}")
        con.execute(f"CREATE VIEW {CHANGES}.{_ident(schema)}.{_ident(table)} AS "
                    f"SELECT * FROM temp.main.{_ident(name)}")
    for number, (alias, key, content) in enumerate(tables):
        schema, table = ".".join(key.elements[:-1]) or "main", key.elements[-1]
        if content.type is ICEBERG_TABLE:
            metadata = str(content.fields.get("metadata_location") or "")
            source = f"iceberg_scan({_quote(_local(metadata))})"
        else:
            state = DeltaState.of(content, key)
            name = f"__lakeversion_delta_{number}"
            # read here, before the lock, through deltalake's scan (DuckDB's delta reader on
            # S3 and deltalake's pyarrow reader cannot follow a branch log's `../` paths)
            con.register(name, _plain(pa.table(open_table(state.location, state.version,
                                                          io=io).scan())))
            source = f"temp.main.{_ident(name)}"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(alias)}.{_ident(schema)}")
        con.execute(f"CREATE VIEW {_ident(alias)}.{_ident(schema)}.{_ident(table)} AS "
                    f"SELECT * FROM {source}")
    # `db.t` and a bare `t` name the preview's tables
    con.execute(f"CREATE SCHEMA IF NOT EXISTS preview.{_ident(namespace or 'main')}")
    allowed = sorted({d for loc in locations for d in _directories(loc)})
    # no spill file from here on: nothing is written (a diff's spill directory, if it made
    # one, is its own and goes with the database; DuckDB will not move a used one)
    con.execute("SET max_temp_directory_size = '0KiB'")
    con.execute("SET allowed_directories = [" + ", ".join(_quote(d) for d in allowed) + "]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    con.execute(f"USE preview.{_ident(namespace or 'main')}")


def _named(alias: str, key: Key, names: Sequence[tuple[str, str, str]]) -> bool:
    """Whether a name of the query may mean `key` of `alias` (generously: a view too many
    costs one metadata read, a view too few an error)."""
    schema, table = ".".join(key.elements[:-1]).lower(), key.elements[-1].lower()
    return any(t == table and (not c or c == alias) and (not s or s in (schema, alias))
               for c, s, t in names)


def _plain(table: pa.Table) -> pa.Table:
    """deltalake's view types as plain ones (pyarrow filters no `string_view`)."""
    views = {pa.string_view(): pa.large_string(), pa.binary_view(): pa.large_binary()}
    schema = pa.schema([f.with_type(views.get(f.type, f.type)) for f in table.schema])
    return table.cast(schema) if schema != table.schema else table


def _location(key: Key, content: Content) -> str:
    """The directory a table's files live under (Delta: its root, branch logs included)."""
    if content.type is DELTA_TABLE:
        return DeltaState.of(content, key).root
    metadata = str(content.fields.get("metadata_location") or "")
    return str(content.fields.get("location") or metadata.rsplit("/metadata/", 1)[0])


class _Spares:
    """New databases made ahead in the background by `make` (with the extensions: ~0.3 s
    each; bare: ~15 ms): a confined database is used by one check and closed, never
    reused, so a spare holds nothing of any merge."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._ready: list[Any] = []
        self._lock = threading.Lock()
        self._making = 0
        self._closed = False
        atexit.register(self.close)

    def close(self, wait_s: float = 5.0) -> None:
        """At exit: close the spares, after the ones being made (bounded). A DuckDB
        database still open, or still being opened by a daemon thread, when the interpreter
        finalizes aborts the process ("terminate called without an active exception")."""
        deadline = time.monotonic() + wait_s
        while True:
            with self._lock:
                self._closed = True
                ready, self._ready = self._ready, []
                making = self._making
            for con in ready:
                _close_quietly(con)
            if not making or time.monotonic() > deadline:
                return
            time.sleep(0.01)

    def wait_ready(self, timeout_s: float) -> bool:
        """Whether every spare is ready, and none still being made, within `timeout_s`
        (benchmarks time a check's own work, not the start of a database a real gate makes
        ahead, nor one being made beside the check)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.refill()
            with self._lock:
                if len(self._ready) >= SPARES and not self._making:
                    return True
            time.sleep(0.01)
        return False

    def take(self, refill: bool = True) -> Any:
        """A spare (or a new database when none is ready); with `refill`, another is
        started in the background at once, else the caller calls `refill` when its work is
        done (a bare database starts in ~15 ms: not worth competing with the check for the
        cores)."""
        with self._lock:
            con = self._ready.pop() if self._ready else None
        if refill:
            self.refill()
        return con if con is not None else self._make()

    def refill(self) -> None:
        """Start making one more spare in the background, unless enough are ready or being
        made."""
        with self._lock:
            if self._closed or len(self._ready) + self._making >= SPARES:
                return
            self._making += 1

        def make() -> None:
            try:
                con = self._make()
            except Exception:  # noqa: BLE001 - the next check connects itself
                con = None
            with self._lock:
                self._making -= 1
                keep = con is not None and not self._closed
                if keep:
                    self._ready.append(con)
            if con is not None and not keep:
                _close_quietly(con)

        threading.Thread(target=make, name="lakeversion-duckdb-spare", daemon=True).start()


SPARES = 2
#: databases with the extensions, for checks reading a state's tables
_SPARES = _Spares(connect)
#: bare databases (no extension), for checks reading only `changes.`, per row budget
_BARE: dict[int, _Spares] = {}
_BARE_LOCK = threading.Lock()


def _bare(rows_budget: int) -> _Spares:
    """The spare bare databases fit for row work within `rows_budget` (a store's
    `Limits.max_row_memory_bytes`), made on first use."""
    with _BARE_LOCK:
        spares = _BARE.get(rows_budget)
        if spares is None:
            spares = _BARE[rows_budget] = _Spares(lambda: connect((), rows_budget))
        return spares


def wait_for_spare(timeout_s: float = 60.0) -> bool:
    """Whether every spare database of each kind is ready within `timeout_s`, once the
    check databases still being closed are (for benchmarks: a timed check runs beside
    neither a database start nor the close of the one before it)."""
    _await_closing(timeout_s)
    with _BARE_LOCK:
        bare = list(_BARE.values())
    return _SPARES.wait_ready(timeout_s) and all(s.wait_ready(timeout_s) for s in bare)


def violations(con: Any, sql: str) -> tuple[int, list[dict[str, Any]]]:
    """Run a check query once: (how many rows it selects, the first `MAX_SAMPLES`).
    An error names the user's SQL and DuckDB's message, never the wrapper around it."""
    duckdb = duckdb_module()
    query = sql.strip().rstrip(";").strip()
    try:
        cursor = con.execute(f"SELECT *, count(*) OVER () AS {_COUNT_COLUMN} FROM "
                             f"({query}) AS violations LIMIT {MAX_SAMPLES}")
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise InvalidInput(f"{_own_error(con, query, exc)}\n  in: {query}") from None
    count = int(rows[0][-1]) if rows else 0
    samples = [{n: _jsonable(v) for n, v in zip(names[:-1], row[:-1], strict=True)}
               for row in rows]
    return count, samples


def _own_error(con: Any, query: str, exc: Exception) -> str:
    """DuckDB's message about the user's own SQL, not the wrapper `violations` runs it
    in: the query alone is bound again (only after a failure, so a passing check pays
    one statement), and its error, if it has one, is the answer."""
    duckdb = duckdb_module()
    try:
        con.sql(query)
    except duckdb.Error as own:
        exc = own
    except Exception:  # noqa: BLE001 - the wrapper's error stands
        pass
    text = str(exc).split("\nLINE ", 1)[0].strip()
    return text.splitlines()[0] if _COUNT_COLUMN in text else text


def open_check_database(context: GateContext, names: Sequence[tuple[str, str, str]],
                        on_cancel: Callable[[Callable[[], None]], None] = lambda _: None
                        ) -> Any:
    """The confined database a check whose query reads `names` runs in (close it after).
    `changes.` only: a bare one (no extension, no view, no directory allowed; ~15 ms to
    start); else one with the extensions (~0.5 s to start); each made ahead."""
    budget = context.store.limits.max_row_memory_bytes
    bare = reads_only_changes(names)
    con = _bare(budget).take(refill=False) if bare else _SPARES.take()
    on_cancel(con.interrupt)
    try:
        if not bare and any(catalog == CHANGES for catalog, _, _ in names):
            prepare(con, budget)
        confine(con, context.relations, context.io, _default_namespace(context), names,
                changed_tables(context, names, con))
    except BaseException:
        _close_quietly(con)
        raise
    return con


def run_sql_check(context: GateContext, spec: CheckSpec,
                  on_cancel: Callable[[Callable[[], None]], None]) -> CheckReport:
    started = time.monotonic()
    names = check_sql(spec.spec)  # again when run: one stored before the rule is refused
    con = open_check_database(context, names, on_cancel)
    try:
        count, samples = violations(con, spec.spec)
    finally:
        # a bare spare taken is replaced once the answer is in (`_Spares.take`)
        _close_later(con, _bare(context.store.limits.max_row_memory_bytes).refill
                     if reads_only_changes(names) else None)
    took = int((time.monotonic() - started) * 1000)
    if count:
        return CheckReport(spec.name, CheckStatus.FAILED, count, tuple(samples), took,
                           f"{count} violating row(s)")
    return CheckReport(spec.name, CheckStatus.PASSED, 0, (), took, "no violating rows")


def _default_namespace(context: GateContext) -> str | None:
    for entry in context.changes:
        if len(entry.key.elements) > 1:
            return ".".join(entry.key.elements[:-1])
    for key in sorted(context.relations.get("preview", {})):
        if len(key.elements) > 1:
            return ".".join(key.elements[:-1])
    return None


def _close_quietly(con: Any) -> None:
    closer = threading.Thread(target=con.close, daemon=True)
    closer.start()
    closer.join(5)


#: check databases being closed after their answers were given
_CLOSING: set[threading.Thread] = set()
_CLOSING_LOCK = threading.Lock()


def _close_later(con: Any, then: Callable[[], None] | None = None) -> None:
    """Close a check's database in the background: the gate has its answer, and freeing a
    database (a few ms) need not delay the merge. At exit, the closes under way are
    awaited (bounded), as a database still closing when the interpreter finalizes aborts
    the process. `then` runs after the close."""
    def close() -> None:
        try:
            con.close()
            if then is not None:
                then()
        except Exception:  # noqa: BLE001 - nothing to free then
            pass
        finally:
            with _CLOSING_LOCK:
                _CLOSING.discard(threading.current_thread())

    closer = threading.Thread(target=close, name="lakeversion-duckdb-close", daemon=True)
    with _CLOSING_LOCK:
        _CLOSING.add(closer)
    closer.start()


@atexit.register
def _await_closing(wait_s: float = 5.0) -> None:
    deadline = time.monotonic() + wait_s
    with _CLOSING_LOCK:
        closing = list(_CLOSING)
    for closer in closing:
        closer.join(max(0.0, deadline - time.monotonic()))
