"""`lakeversion bench contention`: many pyiceberg writers on ONE table against as many
writers on as many tables (issue 24).

Each writer is a process of its own (stock pyiceberg `RestCatalog`, its own retries turned
off so the bench counts them): it appends a small batch, and on a 409 reloads the table
and tries again as pyiceberg would (4 retries, 100 ms doubling back-off with jitter), then
gives up. Rounds alternate between the two layouts for `duration` seconds of each, so
drift hits both alike; each round writes fresh tables (pyiceberg's own work per append
grows with the table's snapshots, which one table collects `writers` times faster: that is
not contention). Afterwards every acknowledged append is looked for in its table:
`lost` counts those missing, `duplicates` those present twice. Each layout also reports
where the CPU went (`cpu`): the writers' own CPU time and the servers' per acknowledged
append (Linux: read from /proc), and the cores both used together; with the load average
around the scenario, they say whether the machine, the clients or the server set the pace.

Scenarios (each a fresh store and `lakeversion serve` subprocess):
- `rebase`: SQLite store, the server's defaults (appends rebased and grouped); its ratio
  is the top-level `ratio` (target `TARGET_RATIO`);
- `no_rebase`: the same with `--no-rebase-appends` (every other catalog's behaviour);
- `postgres`: two servers on one PostgreSQL database, writers split between them.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.8
SCENARIOS = ("rebase", "no_rebase", "postgres")
POSTGRES_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: the client's retries, as pyiceberg's defaults (commit.retry.*)
CLIENT_RETRIES = 4
CLIENT_MIN_WAIT_S = 0.1
ROWS_PER_APPEND = 10
#: the id space of one round's writer: writer w of round r appends ids from
#: (r * WRITERS_MAX + w) * PER_WRITER
PER_WRITER = 1_000_000
WRITERS_MAX = 1000


class _Skipped(Exception):
    """A scenario that cannot run here (PostgreSQL is not reachable)."""


def _worker(index: int, commands: Any, results: Any) -> None:
    """One writer process: runs the rounds it is sent, reports what was acknowledged."""
    import pyarrow as pa
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.exceptions import CommitFailedException

    schema = pa.schema([pa.field("id", pa.int64()), pa.field("writer", pa.int32())])
    catalogs: dict[str, Any] = {}
    results.put(("ready", index))
    while True:
        command = commands.get()
        if command is None:
            return
        url, table_name, start_at, duration, first_id = command
        catalog = catalogs.get(url)
        if catalog is None:
            catalog = catalogs[url] = RestCatalog(f"w{index}", uri=url + "/iceberg")
        table = catalog.load_table(table_name)
        acked: list[int] = []
        latencies: list[float] = []
        retries = gave_up = errors = 0
        next_id = first_id
        time.sleep(max(0.0, start_at - time.time()))
        cpu_started = time.process_time()
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            batch = pa.table({"id": list(range(next_id, next_id + ROWS_PER_APPEND)),
                              "writer": [index] * ROWS_PER_APPEND}, schema=schema)
            started = time.perf_counter()
            for attempt in range(CLIENT_RETRIES + 1):
                try:
                    table.append(batch)
                except CommitFailedException:
                    if attempt == CLIENT_RETRIES:
                        gave_up += 1
                        break
                    retries += 1
                    wait = CLIENT_MIN_WAIT_S * 2 ** attempt
                    time.sleep(wait + random.uniform(0, 0.1 * wait))
                    table = catalog.load_table(table_name)
                    continue
                except Exception:  # noqa: BLE001 - counted: the outcome is unknown
                    errors += 1
                    table = catalog.load_table(table_name)
                    break
                acked.append(next_id)
                latencies.append(time.perf_counter() - started)
                break
            next_id += ROWS_PER_APPEND
        results.put(("done", index, acked, latencies, retries, gave_up, errors,
                     time.process_time() - cpu_started))


@dataclass
class _Layout:
    """What one layout (one table, or one table per writer) measured over its rounds."""

    seconds: float = 0.0
    acked: dict[str, list[int]] = field(default_factory=dict)  # table -> first ids
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    gave_up: int = 0
    errors: int = 0
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = 0.0

    def figures(self) -> dict[str, Any]:
        count = sum(len(v) for v in self.acked.values())
        ordered = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not ordered:
                return None
            return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

        return {"appends": count,
                "appends_per_s": round(count / self.seconds, 2) if self.seconds else 0.0,
                "p50_ms": round(1000 * statistics.median(ordered), 1) if ordered else None,
                "p99_ms": pct(0.99),
                "retries_per_append": round(self.retries / count, 3) if count else None,
                "gave_up": self.gave_up, "errors": self.errors,
                "cpu": self._cpu(count)}

    def _cpu(self, count: int) -> dict[str, float | None]:
        server = self.server_cpu_s
        return {"client_ms_per_append": round(1000 * self.client_cpu_s / count, 1)
                if count else None,
                "server_ms_per_append": round(1000 * server / count, 1)
                if count and server is not None else None,
                "cores_used": round((self.client_cpu_s + server) / self.seconds, 2)
                if self.seconds and server is not None else None}


class _Writers:
    """`count` writer processes, started once per run and driven round by round."""

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(count)]
        self.procs = [ctx.Process(target=_worker, args=(i, q, self.results), daemon=True)
                      for i, q in enumerate(self.commands)]
        for p in self.procs:
            p.start()
        for _ in self.procs:
            self.results.get(timeout=120)  # ("ready", i)

    def round(self, urls: list[str], tables: list[str], duration: float, round_no: int,
              layout: _Layout, servers: Sequence[int] = ()) -> None:
        start_at = time.time() + 1.0  # every writer loads its table first
        for i, queue in enumerate(self.commands):
            first_id = (round_no * WRITERS_MAX + i) * PER_WRITER
            queue.put((urls[i % len(urls)], tables[i % len(tables)], start_at, duration,
                       first_id))
        server_started = _cpu_seconds(servers)
        for _ in self.commands:
            _, i, acked, latencies, retries, gave_up, errors, cpu = self.results.get(
                timeout=duration + 600)
            layout.client_cpu_s += cpu
            layout.acked.setdefault(tables[i % len(tables)], []).extend(acked)
            layout.latencies.extend(latencies)
            layout.retries += retries
            layout.gave_up += gave_up
            layout.errors += errors
        server_done = _cpu_seconds(servers)
        layout.server_cpu_s = None if layout.server_cpu_s is None or server_started is None \
            or server_done is None else layout.server_cpu_s + server_done - server_started
        layout.seconds += duration

    def close(self) -> None:
        for queue in self.commands:
            queue.put(None)
        for p in self.procs:
            p.join(30)
            if p.is_alive():
                p.kill()


def _cpu_seconds(pids: Sequence[int]) -> float | None:
    """CPU time (user + system) the processes used so far; None where /proc is not."""
    total = 0.0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


def _check(url: str, layouts: list[_Layout]) -> tuple[int, int]:
    """(lost, duplicates): acknowledged appends missing from their table, or there twice."""
    from pyiceberg.catalog.rest import RestCatalog

    catalog = RestCatalog("check", uri=url + "/iceberg")
    lost = duplicates = 0
    expected: dict[str, list[int]] = {}
    for layout in layouts:
        for table, ids in layout.acked.items():
            expected.setdefault(table, []).extend(ids)
    for table, ids in expected.items():
        column = catalog.load_table(table).scan().to_arrow()["id"].to_pylist()
        present = Counter(v for v in column if v % ROWS_PER_APPEND == 0)  # first ids
        for first_id in ids:
            seen = present.get(first_id, 0)
            lost += seen == 0
            duplicates += seen > 1
    return lost, duplicates


def _scenario(name: str, writers: _Writers, count: int, duration: float, rounds: int,
              workdir: Path) -> dict[str, Any]:
    """One scenario: its servers, tables, alternating rounds and the check afterwards."""
    from pyiceberg.catalog.rest import RestCatalog

    from spark_lakeversion.server.embedded import serve_in_subprocess

    schemas: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if name == "postgres":
            import psycopg

            schema = f"lvbench_{uuid.uuid4().hex[:10]}"
            try:
                with psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'CREATE SCHEMA "{schema}"')
            except psycopg.Error as exc:
                raise _Skipped(f"PostgreSQL on 127.0.0.1:5432: {exc}") from None
            schemas.append(schema)
            store = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
            servers = 2
        else:
            store = f"sqlite:///{workdir / name}.db"
            servers = 1
        extra = ["--no-rebase-appends"] if name == "no_rebase" else []
        urls = []
        for _ in range(servers):
            proc, url = serve_in_subprocess(store, workdir / f"{name}-wh", extra_args=extra)
            procs.append(proc)
            urls.append(url)
        catalog = RestCatalog("setup", uri=urls[0] + "/iceberg")
        catalog.create_namespace("bench")
        import pyarrow as pa

        schema_arrow = pa.schema([pa.field("id", pa.int64()), pa.field("writer", pa.int32())])
        layouts = {"one_table": _Layout(), "own_tables": _Layout()}
        load_before = round(os.getloadavg()[0], 1)
        per_round = duration / rounds
        round_no = 0
        for _ in range(rounds):
            for layout, count_tables in (("one_table", 1), ("own_tables", count)):
                # fresh tables each round: pyiceberg's client work grows with a table's
                # snapshots, which one table collects `count` times faster
                tables = [f"bench.r{round_no}_t{i}" for i in range(count_tables)]
                for table in tables:
                    catalog.create_table(table, schema=schema_arrow,
                                         properties={"commit.retry.num-retries": "0"})
                writers.round(urls, tables, per_round, round_no, layouts[layout],
                              [p.pid for p in procs])
                round_no += 1
        lost, duplicates = _check(urls[0], list(layouts.values()))
        one_fig, own_fig = layouts["one_table"].figures(), layouts["own_tables"].figures()
        ratio = (one_fig["appends_per_s"] / own_fig["appends_per_s"]
                 if own_fig["appends_per_s"] else 0.0)
        return {"servers": servers, "store": "postgresql" if schemas else "sqlite",
                "rebase": name != "no_rebase", "ratio": round(ratio, 3),
                "load_average": [load_before, round(os.getloadavg()[0], 1)],
                "one_table": one_fig, "own_tables": own_fig,
                "lost": lost, "duplicates": duplicates}
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if schemas:
            import psycopg

            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run(duration: float = 30.0, writers: int = 8, rounds: int = 6,
        scenarios: str = ",".join(SCENARIOS), **_: Any) -> dict[str, Any]:
    """The figures: per scenario, each layout's appends/s, p50/p99 commit latency (ms,
    retries included), retries per append and give-ups; the top-level `ratio` is the
    `rebase` scenario's (one table / own tables), `lost` every scenario's sum."""
    from spark_lakeversion.errors import InvalidInput

    chosen = [s.strip().replace("-", "_") for s in scenarios.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown or not chosen:
        raise InvalidInput(f"unknown scenario(s) {unknown or scenarios!r}: choose from "
                           f"{', '.join(SCENARIOS)}")
    if not 1 <= writers <= WRITERS_MAX:
        raise InvalidInput(f"writers must be 1..{WRITERS_MAX}")
    out: dict[str, Any] = {"benchmark": "contention", "writers": writers,
                           "seconds_per_layout": duration, "rounds": rounds,
                           "rows_per_append": ROWS_PER_APPEND, "target_ratio": TARGET_RATIO,
                           "client_retries": CLIENT_RETRIES}
    workdir = Path(tempfile.mkdtemp(prefix="lakeversion-bench-contention-"))
    pool = _Writers(writers)
    try:
        for name in chosen:
            try:
                out[name] = _scenario(name, pool, writers, duration, rounds, workdir)
            except (ImportError, _Skipped) as exc:
                out[name] = {"skipped": str(exc)}
    finally:
        pool.close()
        shutil.rmtree(workdir, ignore_errors=True)
    measured = [out[n] for n in chosen if "lost" in out[n]]
    out["ratio"] = out["rebase"]["ratio"] if "ratio" in out.get("rebase", {}) else None
    out["meets_target"] = out["ratio"] is not None and out["ratio"] >= TARGET_RATIO
    out["lost"] = sum(m["lost"] for m in measured)
    out["duplicates"] = sum(m["duplicates"] for m in measured)
    return out
