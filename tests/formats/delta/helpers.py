"""Helpers of the Delta suite: rows as sorted tuples (through deltalake and through an
independent reader), data files on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.handle import DeltaHandle

ID_P_V_ARROW = pa.schema([("id", pa.int64()), ("p", pa.string()), ("v", pa.int64())])


def data(*rows: tuple[int, str, int]) -> pa.Table:
    return pa.table({"id": [r[0] for r in rows], "p": [r[1] for r in rows],
                     "v": [r[2] for r in rows]}, schema=ID_P_V_ARROW)


def rows(handle: DeltaHandle) -> list[tuple[Any, ...]]:
    """The handle's rows through deltalake, as sorted (id, p, v) tuples."""
    table = handle.to_arrow()
    return sorted(zip(*(table.column(c).to_pylist() for c in ("id", "p", "v"))))


def _duckdb() -> Any:
    import duckdb

    extensions = Path(duckdb.__file__).parent.parent / "duckdb_ext" / "extensions"
    return duckdb.connect(config={"extension_directory": str(extensions),
                                  "autoinstall_known_extensions": False,
                                  "autoload_known_extensions": False})


def _live_paths(location: str, version: int
                ) -> list[tuple[str, dict[str, str | None], str]]:
    """Replay the JSON commits 0..version of a local log: live (local path, partition,
    the path as the log writes it)."""
    root = unquote(location[len("file://"):])
    live: dict[str, tuple[str, dict[str, str | None], str]] = {}
    for v in range(version + 1):
        with open(os.path.join(root, "_delta_log", f"{v:020d}.json"), encoding="utf-8") as f:
            for line in f:
                action = json.loads(line)
                if "add" in action:
                    path = action["add"]["path"]
                    local = unquote(path[len("file://"):]) if path.startswith("file://") \
                        else os.path.join(root, unquote(path))
                    live[local] = (local, action["add"]["partitionValues"], path)
                elif "remove" in action:
                    path = action["remove"]["path"]
                    local = unquote(path[len("file://"):]) if path.startswith("file://") \
                        else os.path.join(root, unquote(path))
                    live.pop(local, None)
    return list(live.values())


def independent_rows(state: DeltaState) -> list[tuple[Any, ...]]:
    """The rows of a state read without deltalake: DuckDB's delta extension for a table's
    log at its newest version when the log names its files relatively; otherwise (branch
    logs and merged logs name files by absolute URI, which that extension wrongly prefixes
    with the table root; older versions) the JSON log is replayed here and the files read
    with DuckDB's read_parquet."""
    con = _duckdb()
    try:
        files = _live_paths(state.location, state.version)
        if _is_latest(state) and not any("://" in raw for _, _, raw in files):
            con.execute("LOAD delta")
            got = con.execute(
                f"SELECT id, p, v FROM delta_scan('{state.location}')").fetchall()
        else:
            got = _read_files(con, files)
        return sorted(tuple(r) for r in got)
    finally:
        con.close()


def _is_latest(state: DeltaState) -> bool:
    log = Path(unquote(state.location[7:])) / "_delta_log"
    versions = [int(n[:20]) for n in os.listdir(log) if n.endswith(".json")]
    return max(versions) == state.version


def _read_files(con: Any, files: list[tuple[str, dict[str, str | None], str]]
                ) -> list[Any]:
    out: list[Any] = []
    for path, partition, _ in files:
        columns = [r[0] for r in con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()]
        p = "p" if "p" in columns else "?::VARCHAR"
        params = [] if "p" in columns else [partition.get("p")]
        out.extend(con.execute(f"SELECT id, {p}, v FROM read_parquet('{path}')",
                               params).fetchall())
    return out


def data_files(root: str) -> set[str]:
    """Parquet files under a table root (branch directories included)."""
    base = Path(unquote(root[len("file://"):]))
    return {str(p) for p in base.rglob("*.parquet") if "_delta_log" not in p.parts}


def write_log(root: Path, version: int, actions: list[dict[str, Any]]) -> None:
    """One hand-written JSON commit of a Delta log (for logs delta-rs would not write)."""
    log = root / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    info = {"commitInfo": {"timestamp": 1_700_000_000_000 + version, "operation": "WRITE"}}
    text = "".join(json.dumps(a) + "\n" for a in [info, *actions])
    (log / f"{version:020d}.json").write_text(text)


def delta_metadata(table_id: str, fields: list[dict[str, Any]],
                   partition_columns: list[str] | None = None,
                   configuration: dict[str, str] | None = None) -> dict[str, Any]:
    schema = {"type": "struct", "fields": fields}
    return {"metaData": {"id": table_id, "format": {"provider": "parquet", "options": {}},
                         "schemaString": json.dumps(schema),
                         "partitionColumns": partition_columns or [],
                         "configuration": configuration or {}, "createdTime": 0}}


def add_action(path: str, records: int, partition: dict[str, str | None] | None = None,
               stats: dict[str, Any] | None = None, size: int = 100) -> dict[str, Any]:
    return {"add": {"path": path, "partitionValues": partition or {}, "size": size,
                    "modificationTime": 0, "dataChange": True,
                    "stats": json.dumps({"numRecords": records, **(stats or {})})}}
