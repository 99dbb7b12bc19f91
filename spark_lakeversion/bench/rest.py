"""`lakeversion bench rest`: appends/s through our REST server vs pyiceberg's SqlCatalog.

Same client (pyiceberg), same data, same machine, same run: the only difference is the
catalog behind `table.append()`. By default the server runs as a `lakeversion serve`
subprocess (as in production: its CPU is not the client's); rounds alternate between the
two catalogs so drift (other load, page cache) hits both alike.

`--auth`: the same append loop against two servers, one with an auth config of 100
principals x 10 grants each (the bench's principal is the last one, its matching grant its
last), one without authentication: what authentication, grant checks and the audit trail
cost per append (target ratio `AUTH_TARGET_RATIO`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.3
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


def run(appends: int = 100, rows: int = 1000, rounds: int = 4, warmup: int = 3,
        in_process: bool = False, auth: bool = False, **_: Any) -> dict[str, Any]:
    """Time `appends` appends of `rows` rows per catalog; return the figures."""
    if auth:
        return run_auth(appends=max(appends, 200), rows=rows, rounds=max(rounds, 10),
                        warmup=warmup)
    import pyarrow as pa
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.catalog.sql import SqlCatalog

    data = pa.table({"id": pa.array(range(rows), pa.int64()),
                     "name": pa.array([f"row-{i}" for i in range(rows)])})
    workdir = Path(tempfile.mkdtemp(prefix="lakeversion-bench-rest-"))
    proc: subprocess.Popen[bytes] | None = None
    embedded = None
    try:
        store = f"sqlite:///{workdir / 'store.db'}"
        if in_process:
            from spark_lakeversion.server.embedded import start_embedded_server

            embedded = start_embedded_server(store, warehouse=str(workdir / "rest-wh"))
            url = embedded.url
        else:
            from spark_lakeversion.cli.serve import serve_in_subprocess

            proc, url = serve_in_subprocess(store, workdir / "rest-wh")
        rest = RestCatalog("lakeversion", uri=url + "/iceberg")
        sql = SqlCatalog("sql", uri=f"sqlite:///{workdir / 'sqlcatalog.db'}",
                         warehouse=(workdir / "sql-wh").as_uri())
        (workdir / "sql-wh").mkdir()
        tables = {}
        for name, catalog in (("rest", rest), ("sql", sql)):
            catalog.create_namespace("bench")
            tables[name] = catalog.create_table("bench.t", schema=data.schema)
            _timed_appends(tables[name], data, warmup)
        seconds = {"rest": 0.0, "sql": 0.0}
        per_round = max(1, appends // rounds)
        done = 0
        while done < appends:
            n = min(per_round, appends - done)
            for name in ("sql", "rest"):
                seconds[name] += _timed_appends(tables[name], data, n)
            done += n
        for name, catalog in (("rest", rest), ("sql", sql)):
            count = catalog.load_table("bench.t").scan().to_arrow().num_rows
            if count != (appends + warmup) * rows:
                raise RuntimeError(f"{name}: {count} rows after the run, expected "
                                   f"{(appends + warmup) * rows}")
        rest_rate = appends / seconds["rest"]
        sql_rate = appends / seconds["sql"]
        ratio = seconds["rest"] / seconds["sql"]
        return {
            "benchmark": "rest",
            "appends": appends,
            "rows_per_append": rows,
            "server": "in-process thread" if in_process else "lakeversion serve subprocess",
            "store": "sqlite",
            "rest_appends_per_s": round(rest_rate, 2),
            "sqlcatalog_appends_per_s": round(sql_rate, 2),
            "rest_ms_per_append": round(1000 * seconds["rest"] / appends, 2),
            "sqlcatalog_ms_per_append": round(1000 * seconds["sql"] / appends, 2),
            "ratio": round(ratio, 3),
            "target_ratio": TARGET_RATIO,
            "meets_target": ratio <= TARGET_RATIO,
        }
    finally:
        if embedded is not None:
            embedded.stop()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def run_auth(appends: int = 200, rows: int = 1000, rounds: int = 10, warmup: int = 3
             ) -> dict[str, Any]:
    """The same append loop through a server with 100 principals x 10 grants and through
    one without authentication, rounds alternating; both `lakeversion serve` subprocesses."""
    import pyarrow as pa
    from pyiceberg.catalog.rest import RestCatalog

    from spark_lakeversion.cli.serve import serve_in_subprocess

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
