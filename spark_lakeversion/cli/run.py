"""`lakeversion run [--on main] [--branch NAME] [--keep-branch] -- COMMAND...`: a
transactional run (see `spark_lakeversion.runs`).

Before anything is created, the server is asked (`spark_lakeversion.preflight`): it must
answer, accept the token and know `--on`. The command runs on a fresh branch from `--on`'s
head, the run's input; exit code 0 merges the branch into `--on` through the target's
gates and deletes it (unless `--keep-branch`); anything else keeps the branch, says once
which one and what failed, prints the command that branches from exactly the run's
inputs, and exits with the job's own code (or the merge error's typed code: 3 for a
conflict, 5 for failed checks). `--from-inputs RUN_ID` re-runs a job from an earlier
run's inputs on a new branch, which is kept and not merged: a reproduction to look at.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spark_lakeversion.cli.output import emit, get_state, render_merge_result, short
from spark_lakeversion.errors import InvalidInput, LakeVersionError
from spark_lakeversion.spark.submit import DEFAULT_LOG_LEVEL, LOG_LEVELS

if TYPE_CHECKING:
    from spark_lakeversion.runs import Run


class JobFailed(Exception):
    """The run's command exited non-zero (not a LakeVersionError: the job's code wins)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the job exited with code {code}")
        self.code = code


def is_spark_submit(command: tuple[str, ...]) -> bool:
    return Path(command[0]).name == "spark-submit"


def run_job(command: tuple[str, ...], *, branch: str, server_url: str, run_id: str,
            token: str | None, catalog: str, quiet_stdout: bool = False,
            run_input: str | None = None, log_level: str = "WARN") -> int:
    """Run the command with the run's branch and server; its exit code. With
    `quiet_stdout` (``--output json``: stdout is ours) the job's output goes to stderr."""
    from spark_lakeversion.runs import RUN_COMMAND, RUN_ID, RUN_INPUT, run_environment

    env = run_environment(branch, server_url, run_id, run_input)
    properties = {RUN_ID: run_id, RUN_COMMAND: shlex.join(command)}
    if run_input:
        properties[RUN_INPUT] = run_input
    if is_spark_submit(command):
        from spark_lakeversion.spark.submit import run as spark_submit

        executable = command[0] if os.sep in command[0] else None
        done = spark_submit(list(command[1:]), branch=branch, server=server_url,
                            catalog=catalog, token=token, env=env, executable=executable,
                            properties=properties, capture=quiet_stdout,
                            log_level=log_level, preflight=False)
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
@click.option("--from-inputs", "from_inputs", metavar="RUN_ID",
              help="Start from the inputs of run RUN_ID instead of --on's head; the new "
                   "branch is kept and nothing is merged.")
@click.option("-m", "--message", help="Merge commit message (default: run <id>).")
@click.option("--warehouse", metavar="PATH", help="Embedded server's table location.")
@click.option("--catalog", default="lv", show_default=True,
              help="Spark catalog name (spark-submit commands).")
@click.option("--token", envvar="LAKEVERSION_TOKEN", help="Bearer token for the server.")
@click.option("--spark-log-level", default=DEFAULT_LOG_LEVEL, show_default=True,
              type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="Spark's log level (spark-submit commands).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.pass_context
def run(ctx: click.Context, on: str, branch: str | None, keep_branch: bool,
        from_inputs: str | None, message: str | None, warehouse: str | None, catalog: str,
        token: str | None, spark_log_level: str, command: tuple[str, ...]) -> None:
    """Run COMMAND on a new branch; merge it into --on only if COMMAND succeeds.

    `spark-submit ...` commands get the catalog configured as by `lakeversion
    spark-submit`; any other command gets LAKEVERSION_BRANCH, LAKEVERSION_SERVER_URL,
    LAKEVERSION_RUN_ID and LAKEVERSION_RUN_INPUT in its environment (`session()` and
    `connect()` read them). With a local --store an embedded server runs for the run's
    duration. The run records its input (--on's head when it started) as commit property
    lakeversion.run.input.
    """
    from spark_lakeversion.api import Catalog
    from spark_lakeversion.preflight import preflight
    from spark_lakeversion.runs import Run, find_run_input
    from spark_lakeversion.server.embedded import start_embedded_server
    from spark_lakeversion.versioning import default_store_url
    from spark_lakeversion.versioning.http import RestVersionStore

    if not is_spark_submit(command) and shutil.which(command[0]) is None:
        raise InvalidInput(f"command not found or not executable: {command[0]!r}")
    state = get_state(ctx)
    store = state.store_url
    embedded = None
    if store and store.startswith(("http://", "https://")):
        server_url = store.rstrip("/")
    else:
        embedded = start_embedded_server(store, warehouse, token, stop_at_exit=True)
        server_url = embedded.url

    def progress(line: str) -> None:
        if not state.json:
            click.echo(line, err=True)

    lake: Catalog | None = None
    try:
        preflight(server_url, on, token=token, store=store or default_store_url(),
                  create_option=None)
        lake = Catalog(RestVersionStore(server_url, token=token))
        inputs = find_run_input(lake, from_inputs) if from_inputs else None
        job = Run(lake, on, branch=branch, keep_branch=keep_branch, message=message,
                  command=shlex.join(command), inputs=inputs, publish=inputs is None)
        try:
            with job:
                progress(f"run {job.id}: branch {job.branch.name} from "
                         f"{'the inputs of run ' + str(from_inputs) if inputs else on} at "
                         f"{short(job.base_head)}")
                progress(f"run {job.id}: job started: {shlex.join(command)}")
                code = run_job(command, branch=job.branch.name, server_url=server_url,
                               run_id=job.id, token=token, catalog=catalog,
                               quiet_stdout=state.json, run_input=job.base_head,
                               log_level=spark_log_level)
                progress(f"run {job.id}: job finished: exit code {code}")
                if code != 0:
                    raise JobFailed(code)
                if job.publish:
                    progress(f"run {job.id}: merging {job.branch.name} into {on} "
                             f"(checks: {on}'s merge gates)")
        except JobFailed as failed:
            _failed(job, str(failed), state.store_url)
            if state.json:
                emit(ctx, {**_document(job, on), "exit_code": failed.code,
                           "error": str(failed)})
            ctx.exit(failed.code)
        except LakeVersionError:
            if job.branch_created:  # the run made its branch: say where, once
                _failed(job, None, state.store_url)
            raise
        result = job.merge_result
        data: dict[str, Any] = {**_document(job, on), "exit_code": 0,
                                "merge": result.to_dict() if result else None}

        def text(_: Any) -> str:
            if result is None:
                return (f"run {job.id}: job succeeded on {job.branch.name} (from the inputs "
                        f"of run {from_inputs}, {short(job.base_head)}); kept, nothing "
                        f"merged (lakeversion merge {job.branch.name} --into {on})")
            kept = "deleted" if job.branch_deleted else "kept"
            return (f"run {job.id}: {render_merge_result(result, 'merge')}\n"
                    f"run branch {job.branch.name} {kept}; {on} is at "
                    f"{short(result.new_head or result.target_head_before or '')}")

        emit(ctx, data, text)
    finally:
        if lake is not None:
            lake.close()
        if embedded is not None:
            embedded.stop()


def _document(job: Run, on: str) -> dict[str, Any]:
    """The run's `-o json` fields every outcome shares."""
    return {"run_id": job.id, "on": on, "branch": job.branch.name,
            "branch_deleted": job.branch_deleted, "merged": job.succeeded and job.publish,
            "input": job.base_head}


def _failed(job: Run, what: str | None, store: str | None) -> None:
    """Say once, on stderr (stdout stays the job's and JSON's), which branch was kept, and
    how to branch from exactly the run's inputs. `what`: the failure, unless the root
    prints it (a typed error)."""
    why = f" ({what})" if what else ""
    done = f"nothing was merged into {job.on.name}" if job.publish else "nothing is merged"
    at = f"--store {shlex.quote(store)} " if store else ""
    click.echo(f"run {job.id} failed{why}: {done}; run branch "
               f"{job.branch.name} kept for inspection (lakeversion {at}show "
               f"{job.branch.name})\n"
               f"run {job.id} inputs: {job.base_head}; branch from exactly them: "
               f"lakeversion {at}branch create inputs/{job.id} --from {job.base_head}",
               err=True)
