"""`lakeversion delta`: create or register Delta tables and show one at a ref.

A thin shell over the Python handle (`formats.delta.handle.DeltaHandle`, from the Python
API's `Reference.delta`); rows are read and written from Python. `show` and `log` of the
main CLI list Delta tables with their version like any table.
"""

from __future__ import annotations

from typing import Any

import click

from spark_lakeversion.api import Catalog
from spark_lakeversion.cli.output import emit, get_state, short
from spark_lakeversion.model import Commit


def _catalog(ctx: click.Context, warehouse: str | None,
             allowed: tuple[str, ...]) -> Catalog:
    base = get_state(ctx).catalog
    return Catalog(base.store, author=base.author, warehouse=warehouse,
                   allowed_locations=allowed)


def _emit_commit(ctx: click.Context, commit: Commit, what: str) -> None:
    emit(ctx, commit.to_dict(), lambda _: f"{what}: commit {short(commit.id)}")


@click.group()
def delta() -> None:
    """Delta Lake tables on branches."""


@delta.command()
@click.argument("table")
@click.option("--schema", required=True, metavar="JSON",
              help="Delta schema JSON ({\"type\": \"struct\", \"fields\": [...]}).")
@click.option("--partition-by", "partition_by", multiple=True, metavar="COLUMN")
@click.option("--branch", default="main", show_default=True)
@click.option("--warehouse", metavar="URI",
              help="Where new tables go (default <LAKEVERSION_HOME>/warehouse).")
@click.pass_context
def create(ctx: click.Context, table: str, schema: str, partition_by: tuple[str, ...],
           branch: str, warehouse: str | None) -> None:
    """Create an empty Delta table TABLE (db.name) on BRANCH."""
    catalog = _catalog(ctx, warehouse, ())
    commit = catalog.branch(branch).delta(table).create(schema, list(partition_by) or None)
    _emit_commit(ctx, commit, f"created Delta table {table} on {branch}")


@delta.command()
@click.argument("table")
@click.argument("location")
@click.option("--branch", default="main", show_default=True)
@click.option("--allowed-location", "allowed", multiple=True, metavar="URI",
              help="A root the table may lie under, besides the warehouse.")
@click.option("--warehouse", metavar="URI")
@click.pass_context
def register(ctx: click.Context, table: str, location: str, branch: str,
             allowed: tuple[str, ...], warehouse: str | None) -> None:
    """Register the existing Delta table at LOCATION as TABLE on BRANCH."""
    catalog = _catalog(ctx, warehouse, allowed)
    commit = catalog.branch(branch).delta(table).register(location)
    _emit_commit(ctx, commit, f"registered {location} as {table} on {branch}")


@delta.command()
@click.argument("table")
@click.option("--ref", default="main", show_default=True)
@click.pass_context
def show(ctx: click.Context, table: str, ref: str) -> None:
    """The Delta table TABLE at REF: its log, version and row count."""
    handle = get_state(ctx).catalog.ref(ref).delta(table)
    state = handle.state()
    data: dict[str, Any] = {"table": table, "ref": ref, "location": state.location,
                            "version": state.version, "root": state.root,
                            "writer": state.writer, "rows": handle.to_arrow().num_rows}
    emit(ctx, data, lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()))
