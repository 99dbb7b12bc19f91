"""`lakeversion token new` and `lakeversion audit`: access control's commands."""

from __future__ import annotations

from datetime import timezone

import click

from spark_lakeversion.cli.output import emit, get_state


@click.group()
def token() -> None:
    """Make tokens for `lakeversion serve --auth-config`."""


@token.command("new")
@click.option("--name", default="NAME", show_default=True,
              help="The principal's name, for the printed config lines.")
def token_new(name: str) -> None:
    """Print a new random token, then the config lines holding only its SHA-256.

    Give the token to the principal (e.g. in a file for `--token-file`, or the environment
    `LAKEVERSION_TOKEN`); put the lines in the auth config."""
    from spark_lakeversion.auth.tokens import new_token, token_sha256

    value = new_token()
    digest = token_sha256(value)
    if get_state().json:
        emit(None, {"token": value, "token_sha256": digest, "name": name})
        return
    click.echo(value)
    click.echo(f'# [[principal]]\n# name = "{name}"\ntoken_sha256 = "{digest}"', err=True)


@click.command()
@click.option("--since", metavar="WHEN",
              help="Only records from then on: a duration back from now (1d, 3h) or an "
                   "ISO-8601 time.")
@click.option("--principal", metavar="NAME", help="Only this principal's records.")
@click.option("-n", "--max-count", "limit", type=click.IntRange(1, 10_000), default=10_000,
              show_default=True, help="At most this many (the newest).")
@click.pass_context
def audit(ctx: click.Context, since: str | None, principal: str | None, limit: int) -> None:
    """Who did what to which ref, when, and how it ended (done, denied, failed); needs an
    admin grant over every ref when the store is a server with access control."""
    from spark_lakeversion.gc.durations import parse_since

    state = get_state(ctx)
    start = parse_since(since) if since is not None else None
    records = state.catalog.store.audit(start, principal, limit)
    if state.json:
        emit(ctx, {"records": [r.to_dict() for r in records]})
        return
    for r in records:
        when = r.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        detail = f"  {r.detail}" if r.detail else ""
        click.echo(f"{when}  {r.outcome.value:<6}  {r.principal}  {r.operation}  "
                   f"{r.ref or '-'}{detail}")
    if not records:
        click.echo("no audit records", err=True)


__all__ = ["audit", "token"]
