"""`lakeversion serve`: the Iceberg REST catalog (`/iceberg`) and `/api/v1` over one store."""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.iceberg.catalog.settings import AppendSettings
from spark_lakeversion.limits import DEFAULT_LIMITS, Limits, iter_limits
from spark_lakeversion.server.app import DEFAULT_HOST, DEFAULT_PORT

if TYPE_CHECKING:
    from spark_lakeversion.auth.config import AuthConfig

#: the environment variable a server and its clients read the token from
ENV_TOKEN = "LAKEVERSION_TOKEN"


def io_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--io PROP=VALUE` (repeatable) and `--io-config FILE`: the FileIO properties the
    server opens table files with (`spark_lakeversion.fileio`)."""
    command = click.option(
        "--io-config", "io_config", metavar="FILE", envvar="LAKEVERSION_IO_CONFIG",
        help="A properties file of FileIO properties (PROP=VALUE lines; env "
             "LAKEVERSION_IO_CONFIG); --io options override it.")(command)
    return click.option(
        "--io", "io_options", multiple=True, metavar="PROP=VALUE",
        help="A FileIO property (repeatable), e.g. s3.endpoint=http://127.0.0.1:9000, "
             "s3.region, s3.access-key-id, s3.secret-access-key, s3.path-style-access=true. "
             "Over the standard AWS_... and PYICEBERG_S3__... environment.")(command)


def io_config_from_cli(options: tuple[str, ...], config_file: str | None) -> FileIOConfig:
    """The FileIO configuration from the CLI (a bad option is a usage error)."""
    from spark_lakeversion.errors import InvalidInput

    try:
        return FileIOConfig.from_sources(options, config_file)
    except InvalidInput as exc:
        raise click.BadParameter(exc.message, param_hint="--io/--io-config") from None


def limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One `--max-...` option per field of `Limits`, defaulting to its default."""
    for name, default in reversed(list(iter_limits(DEFAULT_LIMITS))):
        help_text = next(f.metadata.get("help", "") for f in fields(Limits) if f.name == name)
        command = click.option(Limits.option(name), name, default=default, show_default=True,
                               type=click.IntRange(min=1), help=help_text or None)(command)
    return command


@click.command()
@click.option("--store", "store_url", metavar="URL",
              help="Version store URL (default: the global --store, $LAKEVERSION_STORE, or "
                   "./lakehouse/store.db).")
@click.option("--warehouse", metavar="URI",
              help="Where new tables are written (default <LAKEVERSION_HOME>/warehouse).")
@click.option("--allowed-location", "allowed_locations", multiple=True, metavar="URI",
              help="Another root under which tables may live (repeatable); the warehouse "
                   "always is one. Locations outside every root are refused.")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Interface to bind; loopback unless you mean to expose it.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option("--auth-config", "auth_config", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Principals, token hashes and per-ref grants (TOML; see README, "
                   "\"Access control\").")
@click.option("--token-file", "token_file", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="One all-powerful token, read from FILE (recommended over --token).")
@click.option("--token", metavar="TOKEN",
              help="One all-powerful token (visible in `ps`: prefer --token-file or the "
                   "environment LAKEVERSION_TOKEN).")
@click.option("--insecure", is_flag=True,
              help="Allow a non-loopback --host without any authentication.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--check-module", "check_modules", multiple=True, metavar="NAME",
              envvar="LAKEVERSION_CHECK_MODULES",
              help="A Python module whose functions checks may name as module:function "
                   "(repeatable; its submodules too). Installed entry points of group "
                   "spark_lakeversion.checks are always allowed (env "
                   "LAKEVERSION_CHECK_MODULES).")
@click.option("--webhook-allow", "webhook_allow", multiple=True, metavar="HOST[:PORT]",
              envvar="LAKEVERSION_WEBHOOK_ALLOW",
              help="A host (glob, repeatable) webhooks may reach although it is loopback, "
                   "link-local or private; other webhooks must resolve to public addresses "
                   "(env LAKEVERSION_WEBHOOK_ALLOW).")
@click.option("--no-rebase-appends", "no_rebase_appends", is_flag=True,
              help="Answer every stale Iceberg append 409, as other catalogs do, instead of "
                   "rebasing pure appends onto the head (per table: the property "
                   "lakeversion.rebase-appends=false).")
@click.option("--group-commit-max", "group_commit_max", default=AppendSettings.group_max,
              show_default=True, type=click.IntRange(1, 1000),
              help="Most appends to one table committed together in one store commit.")
@click.option("--group-commit-wait", "group_commit_wait", default=AppendSettings.group_wait_s,
              show_default=True, type=click.FloatRange(0, 600),
              help="Longest a queued append waits for its turn (seconds), then commits alone.")
@io_options
@limit_options
@click.pass_context
def serve(ctx: click.Context, store_url: str | None, warehouse: str | None,
          allowed_locations: tuple[str, ...], host: str, port: int,
          auth_config: Path | None, token_file: Path | None, token: str | None,
          insecure: bool, log_level: str, check_modules: tuple[str, ...],
          webhook_allow: tuple[str, ...], io_options: tuple[str, ...],
          io_config: str | None, no_rebase_appends: bool, group_commit_max: int,
          group_commit_wait: float, **limit_values: int) -> None:
    """Run the HTTP server until interrupted (limits: see README, "Limits")."""
    from spark_lakeversion.server.app import create_app
    from spark_lakeversion.server.embedded import serve_forever

    if store_url is None and ctx.obj is not None:
        store_url = getattr(ctx.obj, "store_url", None)
    if store_url and store_url.startswith(("http://", "https://")):
        raise click.BadParameter("serve needs a database store (sqlite:///..., postgresql...), "
                                 "not another server", param_hint="--store")
    logging.basicConfig(level=log_level.upper())
    from spark_lakeversion.errors import InvalidInput

    limits = Limits(**limit_values)
    io = io_config_from_cli(io_options, io_config)
    auth = server_auth(auth_config, token_file, token, host, insecure)
    try:
        app = create_app(store_url, warehouse, None, limits, allowed_locations, auth, io,
                         check_modules, webhook_allow,
                         AppendSettings(rebase=not no_rebase_appends,
                                        group_max=group_commit_max,
                                        group_wait_s=group_commit_wait))
    except InvalidInput as exc:
        raise click.BadParameter(exc.message, param_hint="--warehouse/--allowed-location/"
                                 "--check-module/--webhook-allow") from None
    roots = app.state.ctx.roots.describe()
    shown = _without_password(app.state.ctx.store.url)
    who = "no authentication" if auth is None else \
        f"{len(auth.principals)} principal(s)" if auth_config else "one token"
    click.echo(f"lakeversion serving http://{host}:{port} (Iceberg REST: "
               f"http://{host}:{port}/iceberg, API: http://{host}:{port}/api/v1, store: "
               f"{shown}, allowed locations: {roots}, access: {who}, file io: "
               f"{io.describe()})", err=True)
    serve_forever(app, host, port, log_level=log_level)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_auth(auth_config: Path | None, token_file: Path | None, token: str | None,
                host: str, insecure: bool) -> AuthConfig | None:
    """Who may call: `--auth-config`, `--token-file`, `--token`, else the environment's
    `LAKEVERSION_TOKEN`. An empty token is an error, never "no auth"; with no auth at all
    only a loopback host may be bound, unless `--insecure`. Messages never hold a token."""
    from spark_lakeversion.auth.config import AuthConfig, load_auth_config
    from spark_lakeversion.errors import InvalidInput

    given = [n for n, v in (("--auth-config", auth_config), ("--token-file", token_file),
                            ("--token", token)) if v is not None]
    if len(given) > 1:
        raise click.UsageError(f"give one of {', '.join(given)}")
    try:
        if auth_config is not None:
            return load_auth_config(auth_config)
        if token_file is not None:
            try:
                text = token_file.read_text(encoding="utf-8")
            except (OSError, UnicodeError) as exc:
                raise InvalidInput(f"cannot read --token-file {token_file}: "
                                   f"{type(exc).__name__}") from None
            return AuthConfig.single(text.strip("\r\n"), f"--token-file {token_file}")
        if token is not None:
            click.echo("warning: --token is visible to every local user in `ps`; prefer "
                       "--token-file or LAKEVERSION_TOKEN", err=True)
            return AuthConfig.single(token, "--token")
        if ENV_TOKEN in os.environ:
            return AuthConfig.single(os.environ[ENV_TOKEN], ENV_TOKEN)
    except InvalidInput as exc:
        raise click.BadParameter(exc.message, param_hint=given[0] if given else ENV_TOKEN
                                 ) from None
    if not is_loopback(host) and not insecure:
        raise click.BadParameter(
            f"{host} is not a loopback address and no authentication is configured: give "
            "--auth-config, --token-file or LAKEVERSION_TOKEN (or --insecure to serve "
            "everyone on the network)", param_hint="--host")
    return None


def _without_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url.split("@")[-1]


if __name__ == "__main__":  # `python -m spark_lakeversion.cli.serve` without the CLI group
    serve()
