"""CLI of merge requests: `mr open|list|show|approve|merge|close`. A merge refused by a
check exits 5 with the reports, one lacking approvals 1 (`ProtectedBranch`)."""

from __future__ import annotations

from typing import Any

import click

from spark_lakeversion.cli.output import emit, get_state, render_merge_result, short
from spark_lakeversion.errors import ConflictError
from spark_lakeversion.model import MergeRequest


def render_request(request: MergeRequest) -> str:
    valid = {a.principal for a in request.valid_approvals}
    lines = [f"#{request.number} [{request.status.value}] {request.title}",
             f"  {request.source} -> {request.target}  by {request.author}  "
             f"source head {short(request.source_head)}",
             f"  approvals {len(valid)}/{request.required_approvals}"
             + ("  (approved)" if request.approved else "")]
    lines += [f"    {a.principal} approved {short(a.source_head)}"
              + ("" if a.principal in valid else " (outdated)") for a in request.approvals]
    if request.merged_commit:
        lines.append(f"  merged as {short(request.merged_commit)}")
    if request.description:
        lines += ["", *("  " + line for line in request.description.splitlines())]
    return "\n".join(lines)


def _row(request: MergeRequest) -> str:
    return (f"#{request.number:<5} {request.status.value:<7} {request.source} -> "
            f"{request.target}  {len(request.valid_approvals)}/"
            f"{request.required_approvals}  {request.title}")


@click.group("mr")
def mr() -> None:
    """Merge requests: propose, review, approve and merge a branch into another."""


@mr.command("open")
@click.argument("source")
@click.option("--into", "target", default="main", show_default=True, metavar="BRANCH")
@click.option("-t", "--title", required=True)
@click.option("-d", "--description", default="")
@click.pass_context
def open_(ctx: click.Context, source: str, target: str, title: str, description: str) -> None:
    """Open a merge request of branch SOURCE into a branch."""
    request = get_state(ctx).catalog.open_merge_request(source, target, title=title,
                                                        description=description)
    emit(ctx, request.to_dict(), lambda _: render_request(request))


@mr.command("list")
@click.option("--status", type=click.Choice(["open", "merged", "closed", "all"]),
              default="open", show_default=True)
@click.option("--before", type=int, default=None, metavar="N",
              help="Requests numbered below N (the next page).")
@click.option("-n", "--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.pass_context
def list_(ctx: click.Context, status: str, before: int | None, limit: int) -> None:
    """List merge requests, newest first."""
    found = get_state(ctx).catalog.merge_requests(None if status == "all" else status,
                                                  before=before, limit=limit)
    data: dict[str, Any] = {"merge_requests": [r.to_dict() for r in found]}
    emit(ctx, data, lambda _: "\n".join(_row(r) for r in found) or "no merge requests")


@mr.command("show")
@click.argument("number", type=int)
@click.pass_context
def show(ctx: click.Context, number: int) -> None:
    """Show merge request NUMBER with its approvals."""
    request = get_state(ctx).catalog.merge_request(number)
    emit(ctx, request.to_dict(), lambda _: render_request(request))


@mr.command("approve")
@click.argument("number", type=int)
@click.pass_context
def approve(ctx: click.Context, number: int) -> None:
    """Approve merge request NUMBER at its source's current head."""
    request = get_state(ctx).catalog.approve_merge_request(number)
    emit(ctx, request.to_dict(), lambda _: render_request(request))


@mr.command("merge")
@click.argument("number", type=int)
@click.option("-m", "--message", help="Merge commit message.")
@click.pass_context
def merge(ctx: click.Context, number: int, message: str | None) -> None:
    """Merge merge request NUMBER (through the target's checks and approvals)."""
    result = get_state(ctx).catalog.merge_merge_request(number, message=message)
    if not result.successful:
        raise ConflictError(f"merge request #{number} conflicts", result=result)
    emit(ctx, result.to_dict(), lambda _: render_merge_result(result, "merge"))


@mr.command("close")
@click.argument("number", type=int)
@click.pass_context
def close(ctx: click.Context, number: int) -> None:
    """Close merge request NUMBER without merging it."""
    request = get_state(ctx).catalog.close_merge_request(number)
    emit(ctx, request.to_dict(), lambda _: render_request(request))
