"""`spark-submit` with lakeversion configured: jars, extensions, catalog, branch, server.

The job itself needs no lakeversion code: `SparkSession.builder.getOrCreate()` inside it
already has catalog `lv` on the chosen branch. Without a server URL an embedded server runs
for the job's duration. Commits carry the job's Spark application id and name (the catalog
sends them as commit properties).

Before Spark starts, `run` asks the server (`spark_lakeversion.preflight`): a missing
branch, an unreachable server or a refused token is one typed error, not a JVM stack
trace a minute later. Spark logs at WARN unless told otherwise (`spark.log.level`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.preflight import preflight as check_server
from spark_lakeversion.runs import BRANCH_ENV, SERVER_ENV
from spark_lakeversion.spark import spark_conf
from spark_lakeversion.versioning import default_store_url

#: Spark's log levels (`spark.log.level`); WARN keeps a job's output to what matters
LOG_LEVELS = ("ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "TRACE", "OFF")
DEFAULT_LOG_LEVEL = "WARN"
LOG_LEVEL_CONF = "spark.log.level"


def spark_submit_executable() -> Path:
    """$SPARK_HOME/bin/spark-submit, else the one inside the pyspark package."""
    home = os.environ.get("SPARK_HOME")
    if home and (Path(home) / "bin" / "spark-submit").is_file():
        return Path(home) / "bin" / "spark-submit"
    import pyspark

    path = Path(pyspark.__file__).resolve().parent / "bin" / "spark-submit"
    if not path.is_file():
        raise InvalidInput("spark-submit not found: install pyspark or set SPARK_HOME")
    return path


def build_command(job_args: Sequence[str], server_url: str, *, branch: str = "main",
                  catalog: str = "lv", token: str | None = None, master: str | None = None,
                  name: str | None = None, conf: Mapping[str, str] | None = None,
                  properties: Mapping[str, str] | None = None,
                  executable: str | Path | None = None,
                  log_level: str = DEFAULT_LOG_LEVEL) -> list[str]:
    """The spark-submit command line: our `--conf`s, then the caller's options and job.
    `properties` are stamped on the job's commits; `log_level` is Spark's (a
    ``spark.log.level`` in `conf` wins)."""
    if not job_args:
        raise InvalidInput("spark-submit needs a job: lakeversion spark-submit -- job.py [args]")
    if log_level.upper() not in LOG_LEVELS:
        raise InvalidInput(f"Spark log level {log_level!r} is not one of "
                           f"{', '.join(LOG_LEVELS)}")
    settings = spark_conf(server_url, branch=branch, catalog=catalog, token=token,
                          properties=properties)
    settings[LOG_LEVEL_CONF] = log_level.upper()
    settings.update(conf or {})
    cmd = [str(executable or spark_submit_executable())]
    if master:
        cmd += ["--master", master]
    # the job is the first application file; spark-submit options before it take values
    job = next((a for a in job_args if a.endswith((".py", ".jar", ".R"))),
               next((a for a in job_args if not a.startswith("-")), job_args[0]))
    cmd += ["--name", name or Path(job).stem]
    for key, value in settings.items():
        cmd += ["--conf", f"{key}={value}"]
    return cmd + list(job_args)


def run(job_args: Sequence[str], *, branch: str = "main", server: str | None = None,
        store: str | None = None, warehouse: str | None = None, catalog: str = "lv",
        token: str | None = None, master: str | None = None, name: str | None = None,
        conf: Mapping[str, str] | None = None, capture: bool = False,
        properties: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None, executable: str | Path | None = None,
        log_level: str = DEFAULT_LOG_LEVEL, preflight: bool = True,
        create_from: str | None = None, progress: Callable[[str], None] | None = None,
        create_option: str = "--create-branch") -> subprocess.CompletedProcess[str]:
    """Run the job to completion; an embedded server (if any) stops when it ends.
    `env` adds variables to the job's environment (a run's contract). With `preflight`
    the server is asked first (`spark_lakeversion.preflight`; `create_from` creates a
    missing branch; `create_option` is how the caller's surface says so in an error);
    `progress` hears what happens (branch, job started, job finished)."""
    say = progress or (lambda _: None)
    embedded = None
    if not server:
        from spark_lakeversion.server.embedded import start_embedded_server

        embedded = start_embedded_server(store, warehouse, token, stop_at_exit=True)
    url = server or embedded.url  # type: ignore[union-attr]
    try:
        cmd = build_command(job_args, url, branch=branch, catalog=catalog, token=token,
                            master=master, name=name, conf=conf, properties=properties,
                            executable=executable, log_level=log_level)
        if preflight:
            where = server or store or default_store_url()  # as the user names it
            ref = check_server(url, branch, token=token, create_from=create_from,
                               store=where, create_option=create_option)
            say(f"branch {branch} at {ref.head[:12]} in {where}")
        job_env = dict(os.environ)
        job_env.update(env or {})
        job_env[SERVER_ENV] = url
        job_env[BRANCH_ENV] = branch
        job_env.setdefault("PYSPARK_PYTHON", sys.executable)
        job_env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        say(f"job started: spark-submit {shlex.join(job_args)}")
        started = time.monotonic()
        done = subprocess.run(cmd, env=job_env, text=True, capture_output=capture,
                              check=False)
        say(f"job finished: exit code {done.returncode} after "
            f"{time.monotonic() - started:.1f} s")
        return done
    finally:
        if embedded is not None:
            embedded.stop()
