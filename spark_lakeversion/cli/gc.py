"""`lakeversion gc`: reclaim the files no ref, tag or retained commit reaches any more.

The command is a thin shell over `spark_lakeversion.gc.collect_garbage`; the report it
prints (text, or the JSON document of `GcReport.to_dict()`) is the same one the Python API
returns and `POST /api/v1/gc` answers.

Exit codes: those of every command (`spark_lakeversion.cli.output`), plus
`EXIT_SKIPPED_TABLES` (5): gc completed, but left some tables alone (a location outside the
allowed roots or shared with another table, or unreadable history); the report names them.
"""

from __future__ import annotations

from typing import Any

import click

from spark_lakeversion.cli.output import OUTPUT_FORMATS, emit, get_state
from spark_lakeversion.cli.serve import io_config_from_cli, io_options
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.gc.collect import collect_garbage, runs_on_server
from spark_lakeversion.gc.durations import (
    DEFAULT_KEEP_COMMITS_SINCE,
    DEFAULT_OLDER_THAN,
    check_grace,
    parse_duration,
)
from spark_lakeversion.gc.report import GcReport
from spark_lakeversion.locations import AllowedRoots

#: gc completed but skipped tables it could not safely collect (see the report)
EXIT_SKIPPED_TABLES = 5

_MAX_LISTED = 200  # text output lists at most this many files (JSON lists all)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _duration_text(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length and seconds % length == 0:
            return f"{int(seconds // length)}{unit}"
    return f"{seconds:g}s"


def render_report(report: GcReport) -> str:
    """People's view of a gc run: what was found, then what was (or would be) deleted."""
    lines = [
        f"gc over {report.refs} ref(s), {report.retained_commits} retained commit(s) "
        f"(history kept {_duration_text(report.keep_commits_since.total_seconds())}), "
        f"{report.tables} table(s) in {report.table_states} state(s)",
        f"listed {report.files_listed} file(s) under {len(report.locations)} location(s); "
        f"{report.files_reachable} file(s) reachable",
        f"read {report.metadata_files_read} metadata file(s), {report.manifest_lists_read} "
        f"manifest list(s), {report.manifests_read} manifest(s) "
        f"({report.manifests_total} distinct; at most {report.max_reads_per_file} read "
        f"per file)",
    ]
    if report.kept_young:
        lines.append(f"kept {report.kept_young} unreferenced file(s) younger than "
                     f"{_duration_text(report.older_than.total_seconds())} "
                     f"({human_bytes(report.bytes_kept_young)}): maybe in-flight writes")
    if report.rechecks:
        lines.append(f"refs moved during gc: re-checked {report.rechecks} time(s), spared "
                     f"{report.spared_by_recheck} file(s)")
    if not report.garbage:
        lines.append("nothing to delete")
    elif report.dry_run:
        lines.append(f"dry run: would delete {len(report.garbage)} file(s), "
                     f"{human_bytes(report.garbage_bytes)}; nothing was deleted")
    else:
        lines.append(f"deleted {report.deleted} file(s), {human_bytes(report.bytes_reclaimed)} "
                     "reclaimed")
    for info in report.garbage[:_MAX_LISTED]:
        lines.append(f"  {info.path}  {human_bytes(info.size)}")
    if len(report.garbage) > _MAX_LISTED:
        lines.append(f"  ... and {len(report.garbage) - _MAX_LISTED} more (--output json "
                     "lists them all)")
    for error in report.errors:
        lines.append(f"warning: {error['path']}: {error['error']}")
    if report.skipped_tables:
        lines.append(f"skipped {len(report.skipped_tables)} table(s): nothing under their "
                     "locations was listed or deleted")
    for entry in report.skipped_tables:
        keys = ", ".join(entry.get("keys") or []) or "(no retained key)"
        lines.append(f"  table {entry['content_id']} {keys}")
        for reason in entry.get("reasons") or []:
            lines.append(f"    {reason}")
    return "\n".join(lines)


@click.command("gc")
@click.option("--older-than", "older_than", default=_duration_text(
                  DEFAULT_OLDER_THAN.total_seconds()), show_default=True, metavar="DURATION",
              help="Grace period: unreferenced files younger than this are kept (in-flight "
                   "writes). 30s, 15m, 3h, 1d, 2w.")
@click.option("--keep-commits-since", "keep_commits_since",
              default=_duration_text(DEFAULT_KEEP_COMMITS_SINCE.total_seconds()),
              show_default=True, metavar="DURATION",
              help="History retention: commits (and ref#time) this recent stay readable; "
                   "ref heads always do.")
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@click.option("--force", is_flag=True,
              help="Allow --older-than below the 1h minimum (local store only): writes in "
                   "flight longer than it may fail to commit.")
@click.option("--warehouse", default=None, metavar="URI",
              help="The warehouse gc may list and delete under (default: the one "
                   "`lakeversion serve` uses). Not with a server store (it uses its own).")
@click.option("--allowed-location", "allowed_locations", multiple=True, metavar="URI",
              help="A further root gc may list and delete under (repeatable), as given to "
                   "`lakeversion serve --allowed-location`.")
@click.option("--output", "-o", "output", type=click.Choice(OUTPUT_FORMATS), default=None,
              help="text or json (same as the global --output).")
@io_options
@click.pass_context
def gc(ctx: click.Context, older_than: str, keep_commits_since: str, dry_run: bool,
       force: bool, warehouse: str | None, allowed_locations: tuple[str, ...],
       output: str | None, io_options: tuple[str, ...], io_config: str | None) -> None:
    """Delete files under table locations that no ref, tag or retained commit reaches.

    Reachability covers every branch and tag, every commit newer than
    --keep-commits-since, and every file their table formats reach (Iceberg: metadata,
    manifest lists, manifests, data and delete files, statistics). Files younger than
    --older-than are never deleted (below 1h only with --force). Only locations under
    the warehouse and --allowed-location roots that belong to exactly one table are listed;
    other tables are reported as skipped (exit code 5).
    """
    state = get_state(ctx)
    if output is not None:
        state.output = output
    grace = parse_duration(older_than)  # bad input fails before the store is opened
    keep = parse_duration(keep_commits_since)
    check_grace(grace, force)
    store = state.catalog.store
    roots: AllowedRoots | None = None
    io = None
    if runs_on_server(store):
        if warehouse or allowed_locations or io_options or io_config:
            raise InvalidInput("gc on a server uses the server's warehouse, allowed "
                               "locations and FileIO settings: --warehouse, "
                               "--allowed-location, --io and --io-config cannot be given")
    else:
        from spark_lakeversion.locations import root_uri, warehouse_uri

        io = io_config_from_cli(io_options, io_config)
        roots = AllowedRoots([warehouse_uri(warehouse),
                              *(root_uri(r) for r in allowed_locations)])
    report = collect_garbage(store, roots=roots, older_than=grace,
                             keep_commits_since=keep, dry_run=dry_run, force=force,
                             io_properties=io)
    data: dict[str, Any] = report.to_dict()
    emit(ctx, data, lambda _: render_report(report))
    if report.skipped_tables:
        ctx.exit(EXIT_SKIPPED_TABLES)
