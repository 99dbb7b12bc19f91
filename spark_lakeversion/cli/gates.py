"""CLI of merge gates: `branch protect|unprotect NAME` and `check add|list|remove|runs|test`.
A refused merge (`lakeversion merge`) exits 5 with every check's report; so does a check
that `check test` finds failing."""

from __future__ import annotations

from typing import Any

import click

from spark_lakeversion.cli.output import emit, get_state, render_check_report, short
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.gc.durations import parse_duration
from spark_lakeversion.model import CheckRun, CheckSpec


@click.command("protect")
@click.argument("name")
@click.option("--require-approvals", type=click.IntRange(0, 100), default=None, metavar="N",
              help="Merges into it then need N approvals of a merge request (lakeversion "
                   "mr) by principals with 'merge' on it other than the author; 0: none.")
@click.pass_context
def protect(ctx: click.Context, name: str, require_approvals: int | None) -> None:
    """Protect branch NAME: direct writes are refused; merges (through its checks) only."""
    catalog = get_state(ctx).catalog
    changed = catalog.branch(name).protect(require_approvals=require_approvals)
    required = catalog.store.required_approvals().get(name, 0)
    emit(ctx, {"name": name, "protected": True, "changed": changed,
               "require_approvals": required},
         lambda _: f"branch {name} is protected" + ("" if changed else " (already)")
         + (f"; merges need {required} approval(s)" if required else ""))


@click.command("unprotect")
@click.argument("name")
@click.pass_context
def unprotect(ctx: click.Context, name: str) -> None:
    """Let branch NAME take direct writes again."""
    changed = get_state(ctx).catalog.branch(name).unprotect()
    emit(ctx, {"name": name, "protected": False, "changed": changed},
         lambda _: f"branch {name} is not protected" + ("" if changed else " (already)"))


@click.group("check")
def check() -> None:
    """Checks that gate merges into a branch; they run on the merge preview."""


def _render_spec(spec: CheckSpec) -> str:
    scope = f"  tables={','.join(spec.tables)}" if spec.tables else ""
    return (f"{spec.branch:<12} {spec.name:<20} {spec.kind.value:<8} "
            f"timeout={spec.timeout_s:g}s{scope}\n    {spec.spec}")


@check.command("add")
@click.argument("name")
@click.option("--on", "branch", required=True, metavar="BRANCH",
              help="Branch whose merges the check gates.")
@click.option("--sql", help="DuckDB query selecting the rows that violate the check.")
@click.option("--python", "python_target", metavar="MODULE:FUNCTION",
              help="A callable (or an entry point of group spark_lakeversion.checks).")
@click.option("--webhook", metavar="URL", help="POSTed the merge context; 2xx passes.")
@click.option("--notify", metavar="URL",
              help="POSTed after each merge or commit lands (never blocks it).")
@click.option("--tables", default="", metavar="DB.T,...",
              help="Run only when the merge changes one of these tables.")
@click.option("--timeout", default="60s", show_default=True, help="e.g. 30s, 5m.")
@click.option("--allow-missing", is_flag=True,
              help="Accept a SQL check naming a table no ref has yet.")
@click.pass_context
def add(ctx: click.Context, name: str, branch: str, sql: str | None,
        python_target: str | None, webhook: str | None, notify: str | None, tables: str,
        timeout: str, allow_missing: bool) -> None:
    """Attach check NAME to merges into BRANCH. It is validated first: a SQL check parses,
    names only preview/target/source tables and runs once on BRANCH as it is; a Python
    check imports; a webhook's host is allowed."""
    seconds = parse_duration(timeout).total_seconds()
    if seconds <= 0:
        raise InvalidInput("--timeout must be above 0")
    spec = get_state(ctx).catalog.branch(branch).add_check(
        name, sql=sql, python=python_target, webhook=webhook, notify=notify,
        tables=[t for t in (s.strip() for s in tables.split(",")) if t], timeout=seconds,
        allow_missing=allow_missing)
    emit(ctx, spec.to_dict(), lambda _: f"added check {spec.name} on {spec.branch}")


@check.command("list")
@click.option("--on", "branch", metavar="BRANCH", help="Only this branch's checks.")
@click.pass_context
def list_(ctx: click.Context, branch: str | None) -> None:
    """The checks of every branch (or of BRANCH)."""
    specs = get_state(ctx).catalog.store.list_checks(branch)
    emit(ctx, {"checks": [s.to_dict() for s in specs]},
         lambda _: "\n".join(_render_spec(s) for s in specs) or "(none)")


@check.command("remove")
@click.argument("name")
@click.option("--on", "branch", required=True, metavar="BRANCH")
@click.pass_context
def remove(ctx: click.Context, name: str, branch: str) -> None:
    """Detach check NAME from BRANCH."""
    if not get_state(ctx).catalog.branch(branch).remove_check(name):
        from spark_lakeversion.errors import NotFound

        raise NotFound(f"branch {branch!r} has no check named {name!r}")
    emit(ctx, {"deleted": True, "branch": branch, "name": name},
         lambda _: f"removed check {name} from {branch}")


def _render_runs(runs: list[CheckRun]) -> str:
    lines = []
    for run in runs:
        lines.append(f"{run.timestamp.isoformat(timespec='seconds')}  {run.branch} <- "
                     f"{run.source}  preview {short(run.preview)}  attempt "
                     f"{run.attempt[:8]}  {run.kind}")
        lines.append(render_check_report(run.report.to_dict()))
    return "\n".join(lines) or "(none)"


@check.command("runs")
@click.option("--on", "branch", metavar="BRANCH", help="Only runs gating this branch.")
@click.option("-n", "limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.pass_context
def runs(ctx: click.Context, branch: str | None, limit: int) -> None:
    """The latest check runs, newest first."""
    found = get_state(ctx).catalog.store.check_runs(branch, limit)
    data: dict[str, Any] = {"runs": [r.to_dict() for r in found]}
    emit(ctx, data, lambda _: _render_runs(found))


@check.command("test")
@click.argument("name")
@click.option("--on", "branch", required=True, metavar="BRANCH",
              help="The branch whose check NAME runs.")
@click.option("--source", metavar="REF",
              help="Run it on the preview of merging REF into BRANCH (default: on BRANCH "
                   "as it is).")
@click.pass_context
def test(ctx: click.Context, name: str, branch: str, source: str | None) -> None:
    """Run check NAME on a merge preview without merging; exit 5 unless it passes."""
    report = get_state(ctx).catalog.branch(branch).test_check(name, source)
    emit(ctx, report.to_dict(), lambda _: render_check_report(report.to_dict()))
    if not report.ok:
        ctx.exit(5)
