"""Helpers of the Delta suite: rows as sorted tuples (through deltalake and through
independent readers), data files on local disk or S3."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

from spark_lakeversion.api import Catalog
from spark_lakeversion.fileio import deltalake_storage_options, duckdb_s3_secret
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.handle import DeltaHandle

ID_P_V_ARROW = pa.schema([("id", pa.int64()), ("p", pa.string()), ("v", pa.int64())])
Rows = list[tuple[Any, ...]]
#: `db.events`' rows on main in the suites that start it with `principals_lake`
BASE = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "a", 40)]


@contextmanager
def principals_lake(tmp_path: Path, monkeypatch: Any
                    ) -> Iterator[tuple[Callable[[str], Catalog], Catalog]]:
    """A server with the principals of `write_auth_config` (grants are the server's):
    `db.events` made by admin on main with `BASE`, and branch etl-1 appending (5, b, 50).
    Yields `as_(principal)` (a client catalog as that principal; closed at the end) and
    admin's."""
    from spark_lakeversion.api import connect
    from spark_lakeversion.auth import load_auth_config
    from spark_lakeversion.server.embedded import start_embedded_server
    from tests.server.access_helpers import write_auth_config

    config = tmp_path / "auth.toml"
    tokens = write_auth_config(config)
    warehouse = str(tmp_path / "wh")
    opened: list[Catalog] = []
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}", warehouse=warehouse,
                               auth=load_auth_config(config)) as srv:
        def as_(principal: str) -> Catalog:
            monkeypatch.setenv("LAKEVERSION_TOKEN", tokens[principal])
            opened.append(connect(srv.url, warehouse=warehouse))
            return opened[-1]

        admin = as_("admin")
        main = admin.branch("main").delta("db.events")
        main.create(ID_P_V_ARROW, partition_by=["p"])
        main.append(data(*BASE))
        admin.branch("etl-1").create("main")
        admin.branch("etl-1").delta("db.events").append(data((5, "b", 50)))
        try:
            yield as_, admin
        finally:
            for catalog in opened:
                catalog.close()


@dataclass
class DeltaLake:
    """One test's catalog over a local or S3 warehouse, with what plain readers need to
    reach its files (the catalog's FileIO properties, which the store was opened with)."""

    catalog: Catalog
    io: Mapping[str, str]
    store_url: str

    def open_again(self) -> Catalog:
        """A second catalog over the same store and warehouse (another writer)."""
        from spark_lakeversion.wiring import open_store

        return Catalog(open_store(self.store_url, io=self.io),
                       warehouse=self.catalog.warehouse)

    @property
    def local(self) -> bool:
        return self.catalog.warehouse.startswith("file:")

    def storage_options(self, location: str) -> dict[str, str] | None:
        return deltalake_storage_options(location, self.io)

    def duckdb(self) -> Any:
        con = _duckdb()
        con.execute("LOAD delta")
        if not self.local:
            con.execute("LOAD httpfs")
            bucket = self.catalog.warehouse.split("/")[2]
            con.execute(duckdb_s3_secret(self.io, [f"s3://{bucket}"]))
        return con


def data(*rows: tuple[int, str, int]) -> pa.Table:
    return pa.table({"id": [r[0] for r in rows], "p": [r[1] for r in rows],
                     "v": [r[2] for r in rows]}, schema=ID_P_V_ARROW)


def sorted_rows(table: Any) -> Rows:
    """(id, p, v) tuples of an Arrow table or reader, sorted."""
    table = pa.table(table)
    return sorted(zip(*(table.column(c).to_pylist() for c in ("id", "p", "v"))))


def rows(handle: DeltaHandle) -> Rows:
    """The handle's rows through deltalake, as sorted (id, p, v) tuples."""
    return sorted_rows(handle.to_arrow())


def _duckdb() -> Any:
    import duckdb

    extensions = Path(duckdb.__file__).parent.parent / "duckdb_ext" / "extensions"
    return duckdb.connect(config={"extension_directory": str(extensions),
                                  "autoinstall_known_extensions": False,
                                  "autoload_known_extensions": False})


def _read(uri: str, io: Mapping[str, str] | None) -> bytes:
    from spark_lakeversion.formats.delta import storage

    data = storage.read_bytes(uri, io)
    assert data is not None, uri
    return data


def _resolve(location: str, path: str) -> str:
    """An add path resolved by RFC 3986's rules (`urllib`, not the package's resolver)."""
    from urllib.parse import urljoin, urlsplit

    if "://" in path or path.startswith("file:"):
        return "file://" + unquote(urlsplit(path).path) if path.startswith("file:") \
            else unquote(path)
    scheme, _, rest = location.partition("://")
    authority, _, base = rest.partition("/")
    resolved = urlsplit(urljoin(f"http://h/{base}/", path)).path  # dot segments too
    return f"{scheme}://{authority}{unquote(resolved)}"


def _live_paths(location: str, version: int, io: Mapping[str, str] | None
                ) -> list[tuple[str, dict[str, str | None], str]]:
    """Replay the JSON commits 0..version of a log: live (file URI, partition, the path
    as the log writes it)."""
    live: dict[str, tuple[str, dict[str, str | None], str]] = {}
    for v in range(version + 1):
        text = _read(f"{location}/_delta_log/{v:020d}.json", io).decode()
        for line in text.splitlines():
            action = json.loads(line)
            if "add" in action:
                uri = _resolve(location, action["add"]["path"])
                live[uri] = (uri, action["add"]["partitionValues"], action["add"]["path"])
            elif "remove" in action:
                live.pop(_resolve(location, action["remove"]["path"]), None)
    return list(live.values())


def independent_rows(state: DeltaState | DeltaHandle,
                     io: Mapping[str, str] | None = None) -> Rows:
    """The rows of a state (a handle's: opened with its FileIO properties) read without
    deltalake: the JSON log replayed here and each file read with pyarrow's Parquet reader
    (the partition value from the log)."""
    import pyarrow.parquet as pq

    from spark_lakeversion.fileio import pyarrow_filesystem

    if isinstance(state, DeltaHandle):
        state, io = state.state(), state.io_properties
    out: Rows = []
    for uri, partition, _ in _live_paths(state.location, state.version, io):
        fs = pyarrow_filesystem(uri, io)
        path = uri.split("://", 1)[1]
        table = pq.read_table(path, filesystem=fs)
        ps = table.column("p").to_pylist() if "p" in table.column_names \
            else [partition.get("p")] * table.num_rows
        out.extend(zip(table.column("id").to_pylist(), ps, table.column("v").to_pylist()))
    return sorted(out)


def all_files(root: str, io: Mapping[str, str] | None) -> set[str]:
    """Every file under a location, as URIs (S3 listed with boto3)."""
    if root.startswith("file:"):
        base = Path(unquote(root[len("file://"):]))
        return {"file://" + str(p) for p in base.rglob("*") if p.is_file()}
    from spark_lakeversion.fileio import boto3_s3_client

    bucket, _, prefix = root[len("s3://"):].partition("/")
    pages = boto3_s3_client(io).get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
    return {f"s3://{bucket}/{item['Key']}" for page in pages
            for item in page.get("Contents") or ()}


def data_files(handle: DeltaHandle) -> set[str]:
    """Parquet files under a handle's table root (branch directories included), as URIs."""
    return {f for f in all_files(handle.state().root, handle.io_properties)
            if f.endswith(".parquet") and "/_delta_log/" not in f}


def live_files(state: DeltaState, io: Mapping[str, str] | None = None
               ) -> list[tuple[str, str]]:
    """A state's live files (URI, the path as its log writes it), replaying its log here."""
    return [(uri, raw) for uri, _, raw in _live_paths(state.location, state.version, io)]


def newest_version(location: str, io: Mapping[str, str] | None = None) -> int:
    from spark_lakeversion.formats.delta import log

    version = log.latest_version(location, io)
    assert version is not None
    return version


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


def plain_rows(lake: DeltaLake, root: str) -> dict[str, Rows]:
    """The table root read by readers that know nothing of refs: DuckDB's `delta_scan`
    (the log's newest version) and deltalake's `DeltaTable(root)`."""
    from deltalake import DeltaTable

    con = lake.duckdb()
    try:
        duck = sorted(con.execute(f"SELECT id, p, v FROM delta_scan('{root}')").fetchall())
    finally:
        con.close()
    table = DeltaTable(root, storage_options=lake.storage_options(root))
    return {"duckdb": duck, "deltalake": sorted_rows(table.to_pyarrow_table())}


def own_log(lake: DeltaLake, root: str) -> dict[str, bytes | None]:
    """Every file of the table's own log, by name, with its bytes."""
    from spark_lakeversion.formats.delta import log, storage

    prefix = f"{log.log_dir(root)}/"
    return {f[len(prefix):]: storage.read_bytes(f, lake.io)
            for f in all_files(root, lake.io) if f.startswith(prefix)}
