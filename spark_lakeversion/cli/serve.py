"""`lakeversion serve`: the Iceberg REST catalog (`/iceberg`) and `/api/v1` over one store."""

from __future__ import annotations

import logging

import click

from spark_lakeversion.server.app import DEFAULT_HOST, DEFAULT_PORT


@click.command()
@click.option("--store", "store_url", metavar="URL",
              help="Version store URL (default: the global --store, $LAKEVERSION_STORE, or "
                   "./lakehouse/store.db).")
@click.option("--warehouse", metavar="URI",
              help="Where new tables are written (default <LAKEVERSION_HOME>/warehouse).")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Interface to bind; loopback unless you mean to expose it.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", envvar="LAKEVERSION_TOKEN", metavar="TOKEN",
              help="Require `Authorization: Bearer TOKEN` on every request "
                   "(env LAKEVERSION_TOKEN).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.pass_context
def serve(ctx: click.Context, store_url: str | None, warehouse: str | None, host: str,
          port: int, token: str | None, log_level: str) -> None:
    """Run the HTTP server until interrupted."""
    import uvicorn

    from spark_lakeversion.server.app import create_app

    if store_url is None and ctx.obj is not None:
        store_url = getattr(ctx.obj, "store_url", None)
    if store_url and store_url.startswith(("http://", "https://")):
        raise click.BadParameter("serve needs a database store (sqlite:///..., postgresql...), "
                                 "not another server", param_hint="--store")
    logging.basicConfig(level=log_level.upper())
    app = create_app(store_url, warehouse, token)
    shown = _without_password(app.state.store.url)
    click.echo(f"lakeversion serving http://{host}:{port} (Iceberg REST: "
               f"http://{host}:{port}/iceberg, API: http://{host}:{port}/api/v1, store: "
               f"{shown})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                lifespan="off")


def _without_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url.split("@")[-1]


if __name__ == "__main__":  # `python -m spark_lakeversion.cli.serve` without the CLI group
    serve()
