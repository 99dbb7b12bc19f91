"""`lakeversion spark-submit [--branch dev] [--server URL] [--catalog lv] -- job.py [args]`.

Before Spark starts, the server is asked whether it answers, accepts the token and has the
branch (`spark_lakeversion.preflight`): a failure is one line and a typed exit code.
Progress lines (branch, job started, job finished) go to stderr; Spark logs at WARN.
"""

from __future__ import annotations

import click

from spark_lakeversion.cli.output import get_state
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.spark.submit import DEFAULT_LOG_LEVEL, LOG_LEVELS


@click.command("spark-submit", context_settings={"ignore_unknown_options": True,
                                                 "allow_interspersed_args": False})
@click.option("--branch", default="main", show_default=True,
              help="Branch the job's unqualified table names read and write.")
@click.option("--create-branch", is_flag=True,
              help="Create --branch (from --from) if it does not exist.")
@click.option("--from", "from_", default="main", show_default=True, metavar="REF",
              help="Where --create-branch starts the branch.")
@click.option("--server", envvar="LAKEVERSION_SERVER_URL", metavar="URL",
              help="lakeversion server; without it an embedded one runs for the job.")
@click.option("--catalog", default="lv", show_default=True, help="Spark catalog name.")
@click.option("--warehouse", metavar="PATH", help="Embedded server's table location.")
@click.option("--token", envvar="LAKEVERSION_TOKEN", help="Bearer token for the server.")
@click.option("--master", help="Spark master (spark-submit's default otherwise).")
@click.option("--name", help="Spark application name (default: the job file's name).")
@click.option("--conf", "confs", multiple=True, metavar="KEY=VALUE",
              help="Extra Spark setting; repeatable.")
@click.option("--spark-log-level", default=DEFAULT_LOG_LEVEL, show_default=True,
              type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="Spark's log level (spark.log.level).")
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED, required=True)
@click.pass_context
def spark_submit(ctx: click.Context, branch: str, create_branch: bool, from_: str,
                 server: str | None, catalog: str, warehouse: str | None, token: str | None,
                 master: str | None, name: str | None, confs: tuple[str, ...],
                 spark_log_level: str, job_args: tuple[str, ...]) -> None:
    """Run a real spark-submit with lakeversion configured; exits with the job's code.

    Arguments after `--` go to spark-submit as given (spark-submit options, then the job
    and its arguments). The root `--store` is used by the embedded server, or as the
    server itself when it is an http:// URL. The branch must exist (or pass
    --create-branch); the server and token are checked before Spark starts.
    """
    from spark_lakeversion.spark.submit import run

    extra: dict[str, str] = {}
    for item in confs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--conf takes KEY=VALUE, not {item!r}")
        extra[key] = value
    root = ctx.find_root().obj
    store: str | None = getattr(root, "store_url", None)
    if store and store.startswith(("http://", "https://")) and not server:
        server, store = store, None
    quiet = get_state(ctx).json

    def progress(line: str) -> None:
        if not quiet:
            click.echo(f"lakeversion: {line}", err=True)

    result = run(list(job_args), branch=branch, server=server, store=store,
                 warehouse=warehouse, catalog=catalog, token=token, master=master, name=name,
                 conf=extra, log_level=spark_log_level,
                 create_from=from_ if create_branch else None, progress=progress)
    ctx.exit(result.returncode)
