"""What a SQL check may say, decided from DuckDB's own parse of it (`json_serialize_sql`),
when the check is added and again before it runs.

A check is one query (`SELECT`, `WITH ... SELECT`, `FROM t`) that reads only the three
relations a gate hands it: `preview.db.t`, `target.db.t`, `source.db.t`, and `db.t` or `t`
(the preview), plus `changes.db.t`, the rows the merge changes (target -> preview, with
their `change` column). So, refused:
- a catalog other than `preview`, `target`, `source`, `changes` (`memory.`, `system.`, an
  `ATTACH`ed name), and any name holding a ref (`preview."db@secret".t`) or a path
  (`'x.parquet'`, a replacement scan);
- time travel (`AT (VERSION => ...)`, `AT (TIMESTAMP => ...)`): a check reads one state;
- table functions (`read_text`, `read_blob`, `glob`, `iceberg_scan`, `delta_scan`,
  `read_parquet`, `query`, ...) except the few that read nothing (`range`,
  `generate_series`, `unnest`), and the scalar functions that show the engine's settings.
DuckDB itself then runs confined (`sql.py`): this is the rule users see, that is the wall.
"""

from __future__ import annotations

import atexit
import functools
import json
import threading
from collections.abc import Iterator
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.versioning.gates.context import RELATIONS

#: the catalogs a check's SQL may name: the three states and `changes` (their row diff)
CATALOGS = (*RELATIONS, "changes")

#: table functions that read no file, no setting and no other relation
SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
#: scalar functions that would show the engine's configuration
UNSAFE_FUNCTIONS = frozenset({"current_setting", "which_secret", "getenv", "getvariable"})
#: DuckDB's own catalog views (the engine's settings, its attached files): not a relation
_SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp", "memory"})
_SYSTEM_TABLES = ("duckdb_", "pg_", "sqlite_", "pragma_")
#: characters no table of ours has in its name, but refs and paths do
_NOT_IN_NAMES = ("@", "/", "\\", ":", "#")


def duckdb_module() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        raise InvalidInput("SQL checks need DuckDB: "
                           "pip install 'spark-lakeversion[checks]'") from exc
    return duckdb


class _Parser:
    """One DuckDB database, kept for parsing only (a start costs ~15 ms, a parse well under
    one): it never runs a check's SQL, which reaches it only as a bound parameter of
    `json_serialize_sql` and through `extract_statements`, both of which only parse. No
    external access, no extension; one caller at a time; closed at exit."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.con: Any = None
        atexit.register(self.close)

    def get(self) -> Any:
        if self.con is None:
            self.con = duckdb_module().connect(config={
                "enable_external_access": False, "autoinstall_known_extensions": False,
                "autoload_known_extensions": False, "lock_configuration": True})
        return self.con

    def close(self) -> None:
        with self.lock:
            con, self.con = self.con, None
        if con is not None:
            con.close()


_PARSER = _Parser()


def parse(sql: str) -> dict[str, Any]:
    """DuckDB's parse tree of the one SELECT `sql` is, or `InvalidInput` with DuckDB's
    message and the user's SQL."""
    duckdb = duckdb_module()
    query = sql.strip().rstrip(";").strip()
    with _PARSER.lock:
        return _parse(duckdb, _PARSER.get(), query)


def _parse(duckdb: Any, con: Any, query: str) -> dict[str, Any]:
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidInput(f"the check's SQL does not parse: {_first_line(exc)}\n"
                           f"  in: {query}") from None
    select = duckdb.StatementType.SELECT
    if len(statements) != 1 or statements[0].type != select:
        raise InvalidInput("a SQL check is one query (SELECT or WITH ... SELECT) that "
                           f"selects the violating rows, not: {query}")
    found = con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    tree: dict[str, Any] = json.loads(found[0]) if found else {"error": True}
    if tree.get("error"):
        raise InvalidInput(f"the check's SQL does not parse: "
                           f"{tree.get('error_message', 'not a query')}\n  in: {query}")
    return tree


def check_sql(sql: str) -> list[tuple[str, str, str]]:
    """`InvalidInput` unless `sql` is one query reading only the three relations; else the
    (catalog, schema, table) names it reads, lower case, as written ('' where left out;
    its own CTEs aside). A gate runs the same stored checks again and again: the answer
    for a text is kept (a refusal is not, so it is given anew each time)."""
    return list(_checked(sql))


@functools.lru_cache(maxsize=1024)
def _checked(sql: str) -> tuple[tuple[str, str, str], ...]:
    names = []
    ctes: set[str] = set()
    for node in _nodes(parse(sql)):
        for cte in (node.get("cte_map") or {}).get("map") or ():
            ctes.add(str(cte.get("key", "")).lower())
        kind = node.get("type")
        if kind == "BASE_TABLE":
            _check_table(node, sql)
            names.append(tuple(str(node.get(f) or "").lower()
                               for f in ("catalog_name", "schema_name", "table_name")))
        elif kind == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "")).lower()
            if name not in SAFE_TABLE_FUNCTIONS:
                raise InvalidInput(
                    f"a check reads only {', '.join(CATALOGS)} (and db.t for the preview); "
                    f"the table function {name}() is not allowed in: {sql.strip()}")
        elif node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name in UNSAFE_FUNCTIONS or name.startswith("duckdb_"):
                raise InvalidInput(f"the function {name}() is not allowed in a check: "
                                   f"{sql.strip()}")
    return tuple(n for n in names  # type: ignore[misc]
                 if n[0] or n[1] or n[2] not in ctes)


def _check_table(node: dict[str, Any], sql: str) -> None:
    catalog = str(node.get("catalog_name") or "")
    schema = str(node.get("schema_name") or "")
    table = str(node.get("table_name") or "")
    shown = ".".join(part for part in (catalog, schema, table) if part)
    reads = f"a check reads only {', '.join(CATALOGS)} (and db.t for the preview)"
    if catalog and catalog.lower() not in CATALOGS:
        raise InvalidInput(f"{reads}; {shown} names the catalog {catalog!r}, in: "
                           f"{sql.strip()}")
    if any(c in schema or c in table for c in _NOT_IN_NAMES) or "." in table:
        raise InvalidInput(f"{reads}; {shown} names another ref or a file (db@REF, commit "
                           f"ids and paths are not readable from a check), in: {sql.strip()}")
    if schema.lower() in _SYSTEM_SCHEMAS or table.lower().startswith(_SYSTEM_TABLES):
        raise InvalidInput(f"{reads}; {shown} is the engine's own catalog, in: {sql.strip()}")
    if node.get("at_clause"):
        raise InvalidInput(f"{reads}, each at one state; time travel on {shown} is not "
                           f"allowed, in: {sql.strip()}")


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
