"""SQL checks: DuckDB, attached to our own Iceberg REST catalog at the merge preview.

Dialect: DuckDB SQL, one query (a `SELECT` or `WITH ... SELECT`) that selects the rows
violating the check, as in dbt tests; it passes when it returns no rows. Names:
- `db.table` (and a bare `table` of the first changed table's namespace): the preview;
- `target.db.table`: the target at the head the merge was planned on;
- `source.db.table`: the source's head;
- `preview.db.table`: the preview, spelled out.

DuckDB's iceberg extension plans the scan through the catalog and reads only the columns
and files the query needs (projection and filter pushdown into the Parquet scan): no table
is materialised in Python. The report keeps the violation count and up to
`MAX_SAMPLES` rows. Check SQL is an admin setting (adding a check is an admin operation):
it runs with the server's file access.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import CheckReport, CheckSpec, CheckStatus
from spark_lakeversion.versioning.gates.context import GateContext

MAX_SAMPLES = 10
_COUNT_COLUMN = "__lakeversion_violations"


def extension_directory() -> str:
    """Where the pip packages duckdb-ext-iceberg/-avro/-httpfs put the extensions."""
    try:
        import duckdb_ext
    except ImportError as exc:
        raise InvalidInput("SQL checks need DuckDB's extensions: "
                           "pip install 'spark-lakeversion[checks]'") from exc
    return str(Path(list(duckdb_ext.__path__)[0]) / "extensions")


def connect() -> Any:
    """A DuckDB connection with the iceberg, avro and httpfs extensions loaded (no
    download: the extension directory comes from pip)."""
    try:
        import duckdb
    except ImportError as exc:
        raise InvalidInput("SQL checks need DuckDB: "
                           "pip install 'spark-lakeversion[checks]'") from exc
    con = duckdb.connect(config={"extension_directory": extension_directory(),
                                 "autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    for ext in ("httpfs", "avro", "iceberg"):
        con.execute(f"LOAD {ext}")
    return con


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


def attach(con: Any, uri: str, token: str, catalogs: dict[str, str]) -> None:
    """Attach each ref (alias -> ref or commit id) of our Iceberg REST catalog."""
    con.execute(f"CREATE OR REPLACE SECRET lakeversion (TYPE iceberg, TOKEN {_quote(token)})")
    for alias, ref in catalogs.items():
        con.execute(f"ATTACH {_quote(ref)} AS {_ident(alias)} "
                    f"(TYPE iceberg, ENDPOINT {_quote(uri)}, SECRET lakeversion)")


def detach(con: Any, aliases: list[str]) -> None:
    con.execute("USE memory")
    for alias in aliases:
        con.execute(f"DETACH DATABASE IF EXISTS {_ident(alias)}")


class _Pool:
    """Idle DuckDB connections: loading the extensions costs ~1.5 s per new database, so
    a connection is reused by the next check once its catalogs are detached. A check that
    was interrupted (timeout) or failed to clean up is not given back."""

    def __init__(self) -> None:
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def take(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return connect()

    def give_back(self, con: Any) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(con)
                return
        _close_quietly(con)


MAX_IDLE = 4
_POOL = _Pool()


def violations(con: Any, sql: str) -> tuple[int, list[dict[str, Any]]]:
    """Run a check query once: (how many rows it selects, the first `MAX_SAMPLES`)."""
    query = sql.strip().rstrip(";").strip()
    import duckdb

    statements = con.extract_statements(query)  # a parse error is the check's error
    select = duckdb.StatementType.SELECT  # type: ignore[attr-defined]
    if len(statements) != 1 or statements[0].type != select:
        raise InvalidInput("a SQL check is one query (SELECT or WITH ... SELECT) that "
                           "selects the violating rows")
    cursor = con.execute(f"SELECT *, count(*) OVER () AS {_COUNT_COLUMN} FROM ({query}) "
                         f"AS violations LIMIT {MAX_SAMPLES}")
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    count = int(rows[0][-1]) if rows else 0
    samples = [{n: _jsonable(v) for n, v in zip(names[:-1], row[:-1], strict=True)}
               for row in rows]
    return count, samples


def run_sql_check(context: GateContext, spec: CheckSpec,
                  on_cancel: Callable[[Callable[[], None]], None]) -> CheckReport:
    from spark_lakeversion.checks.endpoint import endpoint_for

    started = time.monotonic()
    endpoint = endpoint_for(context.store)
    con = _POOL.take()
    cancelled: list[bool] = []

    def cancel() -> None:
        cancelled.append(True)
        con.interrupt()

    on_cancel(cancel)
    catalogs = {"preview": context.preview, "target": context.target_head,
                "source": context.source_head}
    reusable = False
    try:
        attach(con, endpoint.uri, endpoint.token, catalogs)
        namespace = _default_namespace(context)
        if namespace is not None:
            con.execute(f"USE preview.{_ident(namespace)}")
        count, samples = violations(con, spec.spec)
    finally:
        try:
            detach(con, list(catalogs))
            reusable = not cancelled
        except Exception:  # noqa: BLE001 - a connection in an unknown state is dropped
            reusable = False
        if reusable:
            _POOL.give_back(con)
        else:
            _close_quietly(con)
    took = int((time.monotonic() - started) * 1000)
    if count:
        return CheckReport(spec.name, CheckStatus.FAILED, count, tuple(samples), took,
                           f"{count} violating row(s)")
    return CheckReport(spec.name, CheckStatus.PASSED, 0, (), took, "no violating rows")


def _default_namespace(context: GateContext) -> str | None:
    for entry in context.changes:
        if len(entry.key.elements) > 1:
            return entry.key.elements[0]
    for key, _ in context.store.list_keys(context.preview):
        if len(key.elements) == 1:
            return key.elements[0]
    return None


def _close_quietly(con: Any) -> None:
    closer = threading.Thread(target=con.close, daemon=True)
    closer.start()
    closer.join(5)
