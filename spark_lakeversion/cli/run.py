"""`lakeversion run [--on main] [--branch NAME] [--keep-branch] -- COMMAND...`: a
transactional run (see `spark_lakeversion.runs`).

The command runs on a fresh branch; exit code 0 merges the branch into `--on` through the
target's gates and deletes it (unless `--keep-branch`); anything else keeps the branch,
says which one and what failed, and exits with the job's own code (or the merge error's
typed code: 3 for a conflict, 5 for failed checks).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click

from spark_lakeversion.cli.output import emit, get_state, render_merge_result, short
from spark_lakeversion.errors import InvalidInput, LakeVersionError


class JobFailed(Exception):
    """The run's command exited non-zero (not a LakeVersionError: the job's code wins)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the job exited with code {code}")
        self.code = code


def is_spark_submit(command: tuple[str, ...]) -> bool:
    return Path(command[0]).name == "spark-submit"


def run_job(command: tuple[str, ...], *, branch: str, server_url: str, run_id: str,
            token: str | None, catalog: str, quiet_stdout: bool = False) -> int:
    """Run the command with the run's branch and server; its exit code. With
    `quiet_stdout` (``--output json``: stdout is ours) the job's output goes to stderr."""
    from spark_lakeversion.runs import RUN_COMMAND, RUN_ID, run_environment

    env = run_environment(branch, server_url, run_id)
    if is_spark_submit(command):
        from spark_lakeversion.spark.submit import run as spark_submit

        executable = command[0] if os.sep in command[0] else None
        done = spark_submit(list(command[1:]), branch=branch, server=server_url,
                            catalog=catalog, token=token, env=env, executable=executable,
                            properties={RUN_ID: run_id, RUN_COMMAND: shlex.join(command)},
                            capture=quiet_stdout)
    else:
        try:
            done = subprocess.run(list(command), env={**os.environ, **env}, check=False,
                                  text=True, capture_output=quiet_stdout)
        except FileNotFoundError:
            raise InvalidInput(f"command not found: {command[0]!r}") from None
        except PermissionError:
            raise InvalidInput(f"command is not executable: {command[0]!r}") from None
    if quiet_stdout:
        for output in (done.stdout, done.stderr):
            if output:
                click.echo(output.rstrip("\n"), err=True)
    return done.returncode


@click.command("run", context_settings={"ignore_unknown_options": True,
                                        "allow_interspersed_args": False})
@click.option("--on", "on", default="main", show_default=True, metavar="BRANCH",
              help="Branch the run starts from and merges into.")
@click.option("--branch", "branch", metavar="NAME",
              help="Run branch name (default: run/<run id>).")
@click.option("--keep-branch", is_flag=True, help="Keep the run branch after a success too.")
@click.option("-m", "--message", help="Merge commit message (default: run <id>).")
@click.option("--warehouse", metavar="PATH", help="Embedded server's table location.")
@click.option("--catalog", default="lv", show_default=True,
              help="Spark catalog name (spark-submit commands).")
@click.option("--token", envvar="LAKEVERSION_TOKEN", help="Bearer token for the server.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.pass_context
def run(ctx: click.Context, on: str, branch: str | None, keep_branch: bool,
        message: str | None, warehouse: str | None, catalog: str, token: str | None,
        command: tuple[str, ...]) -> None:
    """Run COMMAND on a new branch; merge it into --on only if COMMAND succeeds.

    `spark-submit ...` commands get the catalog configured as by `lakeversion
    spark-submit`; any other command gets LAKEVERSION_BRANCH, LAKEVERSION_SERVER_URL and
    LAKEVERSION_RUN_ID in its environment (`session()` and `connect()` read them). With a
    local --store an embedded server runs for the run's duration.
    """
    from spark_lakeversion.api import connect
    from spark_lakeversion.runs import Run
    from spark_lakeversion.spark import start_server

    if not is_spark_submit(command) and shutil.which(command[0]) is None:
        raise InvalidInput(f"command not found or not executable: {command[0]!r}")
    state = get_state(ctx)
    store = state.store_url
    embedded = None
    if store and store.startswith(("http://", "https://")):
        server_url = store.rstrip("/")
    else:
        embedded = start_server(store, warehouse, token)
        server_url = embedded.url
    lake = connect(server_url)
    try:
        job = Run(lake, on, branch=branch, keep_branch=keep_branch, message=message,
                  command=shlex.join(command))
        try:
            with job:
                code = run_job(command, branch=job.branch.name, server_url=server_url,
                               run_id=job.id, token=token, catalog=catalog,
                               quiet_stdout=state.json)
                if code != 0:
                    raise JobFailed(code)
        except JobFailed as failed:
            _failed(ctx, job, str(failed))
            if state.json:
                emit(ctx, {"run_id": job.id, "on": on, "branch": job.branch.name,
                           "branch_deleted": False, "merged": False,
                           "exit_code": failed.code, "error": str(failed)})
            ctx.exit(failed.code)
        except LakeVersionError as error:
            _failed(ctx, job, f"{error.code}: {error.message}")
            raise
        result = job.merge_result
        assert result is not None
        data: dict[str, Any] = {"run_id": job.id, "on": on, "branch": job.branch.name,
                                "branch_deleted": job.branch_deleted, "merged": True,
                                "exit_code": 0, "merge": result.to_dict()}

        def text(_: Any) -> str:
            kept = "deleted" if job.branch_deleted else "kept"
            return (f"run {job.id}: {render_merge_result(result, 'merge')}\n"
                    f"run branch {job.branch.name} {kept}; {on} is at "
                    f"{short(result.new_head or result.target_head_before or '')}")

        emit(ctx, data, text)
    finally:
        lake.close()
        if embedded is not None:
            embedded.stop()


def _failed(ctx: click.Context, job: Any, what: str) -> None:
    """Say which branch was kept and why, on stderr (stdout stays the job's and JSON's)."""
    click.echo(f"run {job.id} failed ({what}): nothing was merged into {job.on.name}; "
               f"run branch {job.branch.name} kept for inspection "
               f"(lakeversion show {job.branch.name})", err=True)
