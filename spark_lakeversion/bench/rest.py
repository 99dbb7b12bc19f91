"""`lakeversion bench rest`: appends/s through our REST server vs pyiceberg's SqlCatalog.

Same client (pyiceberg), same data, same machine, same run: the only difference is the
catalog behind `table.append()`. By default the server runs as a `lakeversion serve`
subprocess (as in production: its CPU is not the client's); rounds alternate between the
two catalogs so drift (other load, page cache) hits both alike.

The loop runs on a local warehouse and on an S3 one (moto's server as a subprocess, one
bucket, both catalogs on the same endpoint; our server's settings come from its `--io`
environment and reach the client as vended credentials, SqlCatalog is given them).

`--auth`: the same append loop against two servers, one with an auth config of 100
principals x 10 grants each (the bench's principal is the last one, its matching grant its
last), one without authentication: what authentication, grant checks and the audit trail
cost per append (target ratio `AUTH_TARGET_RATIO`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.3
STORAGES = ("local", "s3")
AUTH_TARGET_RATIO = 1.05
AUTH_PRINCIPALS = 100
AUTH_GRANTS_EACH = 10


def sample_auth_config(principals: int = AUTH_PRINCIPALS, grants_each: int = AUTH_GRANTS_EACH
                       ) -> tuple[str, str]:
    """An auth config (TOML) of `principals` x `grants_each` grants, and the token of the
    last principal, whose only grant on `main` is its last."""
    from spark_lakeversion.auth.tokens import new_token, token_sha256

    lines: list[str] = []
    token = ""
    for i in range(principals):
        token = new_token()
        grants = [f'{{ refs = "team{i}-{j}-*", allow = ["read", "write", "create"] }}'
                  for j in range(grants_each - 1)]
        grants.append('{ refs = "m*n", allow = ["read", "write"] }' if i == principals - 1
                      else f'{{ refs = "team{i}/*", allow = ["read"] }}')
        lines.append(f'[[principal]]\nname = "p{i}"\ntoken_sha256 = "{token_sha256(token)}"\n'
                     f"grants = [{', '.join(grants)}]\n")
    return "\n".join(lines), token


def _timed_appends(table: Any, data: Any, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        table.append(data)
    return time.perf_counter() - start


def _measure(catalogs: dict[str, Any], data: Any, appends: int, rounds: int,
             warmup: int) -> dict[str, float]:
    """Seconds per catalog for `appends` appends, alternating rounds; rows checked after."""
    tables = {}
    for name, catalog in catalogs.items():
        catalog.create_namespace("bench")
        tables[name] = catalog.create_table("bench.t", schema=data.schema)
        _timed_appends(tables[name], data, warmup)
    seconds = {name: 0.0 for name in catalogs}
    per_round = max(1, appends // rounds)
    done = 0
    while done < appends:
        n = min(per_round, appends - done)
        for name in ("sql", "rest"):
            seconds[name] += _timed_appends(tables[name], data, n)
        done += n
    for name, catalog in catalogs.items():
        count = catalog.load_table("bench.t").scan().to_arrow().num_rows
        if count != (appends + warmup) * data.num_rows:
            raise RuntimeError(f"{name}: {count} rows after the run, expected "
                               f"{(appends + warmup) * data.num_rows}")
    return seconds


def _figures(prefix: str, appends: int, seconds: dict[str, float]) -> dict[str, Any]:
    ratio = seconds["rest"] / seconds["sql"]
    return {
        f"{prefix}rest_appends_per_s": round(appends / seconds["rest"], 2),
        f"{prefix}sqlcatalog_appends_per_s": round(appends / seconds["sql"], 2),
        f"{prefix}rest_ms_per_append": round(1000 * seconds["rest"] / appends, 2),
        f"{prefix}sqlcatalog_ms_per_append": round(1000 * seconds["sql"] / appends, 2),
        f"{prefix}ratio": round(ratio, 3),
        f"{prefix}meets_target": ratio <= TARGET_RATIO,
    }


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server as a subprocess on a free loopback port; yields its endpoint."""
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        raise RuntimeError("the S3 benchmark needs moto[server] and boto3: pip install "
                           "'spark-lakeversion[dev,s3]'") from None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(endpoint, timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(appends: int = 100, rows: int = 1000, rounds: int = 4, warmup: int = 3,
        in_process: bool = False, storage: str = "both", auth: bool = False, **_: Any
        ) -> dict[str, Any]:
    """Time `appends` appends of `rows` rows per catalog on each storage; the figures.
    Local figures keep their plain names, S3 ones are prefixed `s3_`. `auth`: instead,
    the access-control loop (`run_auth`)."""
    if auth:
        return run_auth(appends=max(appends, 200), rows=rows, rounds=max(rounds, 10),
                        warmup=warmup)
    import pyarrow as pa

    storages = STORAGES if storage == "both" else (storage,)
    data = pa.table({"id": pa.array(range(rows), pa.int64()),
                     "name": pa.array([f"row-{i}" for i in range(rows)])})
    out: dict[str, Any] = {
        "benchmark": "rest", "appends": appends, "rows_per_append": rows,
        "server": "in-process thread" if in_process else "lakeversion serve subprocess",
        "store": "sqlite", "target_ratio": TARGET_RATIO}
    for name in storages:
        workdir = Path(tempfile.mkdtemp(prefix=f"lakeversion-bench-rest-{name}-"))
        try:
            if name == "s3":
                with moto_s3() as endpoint:
                    seconds = _run_s3(workdir, endpoint, data, appends, rounds, warmup,
                                      in_process)
                out["s3_endpoint"] = "moto server (subprocess, loopback)"
                out.update(_figures("s3_", appends, seconds))
            else:
                seconds = _run_on(workdir, f"file://{workdir}", {}, data, appends, rounds,
                                  warmup, in_process)
                out.update(_figures("", appends, seconds))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return out


def _run_s3(workdir: Path, endpoint: str, data: Any, appends: int, rounds: int, warmup: int,
            in_process: bool) -> dict[str, float]:
    import boto3

    io = {"s3.endpoint": endpoint, "s3.region": "us-east-1", "s3.access-key-id": "bench",
          "s3.secret-access-key": "bench", "s3.path-style-access": "true"}
    boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
        aws_secret_access_key="bench").create_bucket(Bucket="bench")
    return _run_on(workdir, "s3://bench", io, data, appends, rounds, warmup, in_process)


def _run_on(workdir: Path, base: str, io: dict[str, str], data: Any, appends: int,
            rounds: int, warmup: int, in_process: bool) -> dict[str, float]:
    """Our server over `base`/rest-wh against SqlCatalog over `base`/sql-wh."""
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.catalog.sql import SqlCatalog

    store = f"sqlite:///{workdir / 'store.db'}"
    proc: subprocess.Popen[bytes] | None = None
    embedded = None
    try:
        if in_process:
            from spark_lakeversion.server.embedded import start_embedded_server

            embedded = start_embedded_server(store, warehouse=f"{base}/rest-wh", io=io)
            url = embedded.url
        else:
            from spark_lakeversion.server.embedded import serve_in_subprocess

            proc, url = serve_in_subprocess(store, f"{base}/rest-wh", io=io)
        if base.startswith("file://"):
            (workdir / "sql-wh").mkdir()
        catalogs = {
            "rest": RestCatalog("lakeversion", uri=url + "/iceberg"),  # storage: vended
            "sql": SqlCatalog("sql", uri=f"sqlite:///{workdir / 'sqlcatalog.db'}",
                              warehouse=f"{base}/sql-wh", **io),
        }
        return _measure(catalogs, data, appends, rounds, warmup)
    finally:
        if embedded is not None:
            embedded.stop()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_auth(appends: int = 200, rows: int = 1000, rounds: int = 10, warmup: int = 3
             ) -> dict[str, Any]:
    """The same append loop through a server with 100 principals x 10 grants and through
    one without authentication, rounds alternating; both `lakeversion serve` subprocesses."""
    import pyarrow as pa
    from pyiceberg.catalog.rest import RestCatalog

    from spark_lakeversion.server.embedded import serve_in_subprocess

    data = pa.table({"id": pa.array(range(rows), pa.int64()),
                     "name": pa.array([f"row-{i}" for i in range(rows)])})
    workdir = Path(tempfile.mkdtemp(prefix="lakeversion-bench-rest-auth-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        config_text, token = sample_auth_config()
        (workdir / "auth.toml").write_text(config_text)
        tables = {}
        for name, extra, props in (
                ("auth", ["--auth-config", str(workdir / "auth.toml")], {"token": token}),
                ("none", [], {})):
            proc, url = serve_in_subprocess(f"sqlite:///{workdir / name}.db",
                                            workdir / f"{name}-wh", extra_args=extra)
            procs.append(proc)
            catalog = RestCatalog(name, uri=url + "/iceberg", **props)
            catalog.create_namespace("bench")
            tables[name] = catalog.create_table("bench.t", schema=data.schema)
            _timed_appends(tables[name], data, warmup)
        seconds = {"auth": 0.0, "none": 0.0}
        per_round = max(1, appends // rounds)
        done = 0
        while done < appends:
            n = min(per_round, appends - done)
            order = ("auth", "none") if (done // per_round) % 2 == 0 else ("none", "auth")
            for name in order:
                seconds[name] += _timed_appends(tables[name], data, n)
            done += n
        ratio = seconds["auth"] / seconds["none"]
        return {
            "benchmark": "rest --auth",
            "appends": appends,
            "rows_per_append": rows,
            "principals": AUTH_PRINCIPALS,
            "grants_per_principal": AUTH_GRANTS_EACH,
            "server": "lakeversion serve subprocess (each)",
            "store": "sqlite",
            "auth_ms_per_append": round(1000 * seconds["auth"] / appends, 2),
            "no_auth_ms_per_append": round(1000 * seconds["none"] / appends, 2),
            "ratio": round(ratio, 3),
            "target_ratio": AUTH_TARGET_RATIO,
            "meets_target": ratio <= AUTH_TARGET_RATIO,
        }
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
