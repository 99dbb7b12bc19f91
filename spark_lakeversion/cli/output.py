"""How every `lakeversion` command reports results and errors, in one place.

Rules (documented in README, relied on by scripts):
- ``--output text``: results on stdout; errors as ``error: ...`` on stderr.
- ``--output json``: stdout carries exactly one JSON document, the result or
  ``{"error": {"type", "code", "message", ...}}``; nothing else is printed.
- exit codes: 0 success, 1 bad input or usage, 2 not found, 3 conflict,
  4 outcome unknown / server or internal error, 5 a merge gate's checks failed,
  6 forbidden. Each error class carries its own (`errors.ExitCode`); `exit_code_for`
  only reads it.

Command modules use `emit()` for results and `get_state()` for the store, and rely on
the root group, which maps every `LakeVersionError`.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from spark_lakeversion.errors import ChecksFailed, ConflictError, ExitCode, LakeVersionError
from spark_lakeversion.model import ROW_MERGE, Conflict, ConflictType
from spark_lakeversion.runs import RUN_ID

if TYPE_CHECKING:
    from spark_lakeversion.api import Catalog
    from spark_lakeversion.model import Commit, Content, DiffEntry, Key, MergeResult, Ref


OUTPUT_FORMATS = ("text", "json")


def exit_code_for(error: BaseException) -> ExitCode:
    """An error's exit code: ours carry theirs (`errors.py`'s table); click's usage errors
    are bad input; anything else failed."""
    if isinstance(error, LakeVersionError):
        return error.exit_code
    if isinstance(error, click.UsageError):
        return ExitCode.INVALID
    return ExitCode.FAILED


@dataclass
class CliState:
    """Global options of one invocation; the store is opened on first use only."""

    store_url: str | None = None
    output: str = "text"
    _catalog: Catalog | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.output == "json"

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from spark_lakeversion.api import connect

            self._catalog = connect(self.store_url)
        return self._catalog

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None


def get_state(ctx: click.Context | None = None) -> CliState:
    """The invocation's `CliState` (a default one when a command runs without the root)."""
    ctx = ctx or click.get_current_context()
    state = ctx.find_object(CliState)
    if state is None:
        state = ctx.ensure_object(CliState)
    return state


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default)


def emit(ctx: click.Context | None, data: Any,
         text_renderer: Callable[[Any], str] | None = None) -> None:
    """Print a command's result: `data` as JSON, or `text_renderer(data)` as text."""
    state = get_state(ctx)
    if state.json:
        click.echo(to_json(data))
        return
    text = text_renderer(data) if text_renderer else render_plain(data)
    if text:
        click.echo(printable(text.rstrip("\n")))


def printable(text: str) -> str:
    """`text` with any lone surrogate (stored by an older version) shown as its escape, so
    printing never fails."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def render_plain(data: Any, indent: int = 0) -> str:
    """A readable fallback for commands without a text renderer: ``key: value`` lines."""
    pad = "  " * indent
    if isinstance(data, dict):
        lines = []
        for key, value in data.items():
            if isinstance(value, (dict, list)) and value:
                lines.append(f"{pad}{key}:")
                lines.append(render_plain(value, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}")
        return "\n".join(lines)
    if isinstance(data, list):
        return "\n".join(
            render_plain(item, indent) if isinstance(item, (dict, list))
            else f"{pad}- {_scalar(item)}" for item in data)
    return f"{pad}{_scalar(data)}"


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_json_default)
    return str(value)


# ---- errors ----------------------------------------------------------------------------


def error_payload(error: BaseException) -> dict[str, Any]:
    """``{"error": {...}}`` as the REST API answers it, for any error the CLI reports."""
    if isinstance(error, LakeVersionError):
        body = error.to_dict()
        if isinstance(error, ConflictError) and error.result is not None:
            body["result"] = error.result.to_dict()
    elif isinstance(error, click.UsageError):
        body = {"type": "UsageError", "code": "USAGE", "message": error.format_message()}
    else:
        body = {"type": "InternalError", "code": "INTERNAL_ERROR",
                "message": f"{type(error).__name__}: {error}"}
    return {"error": body}


def render_error_text(error: BaseException) -> str:
    if isinstance(error, LakeVersionError):
        lines = [f"error: {error.message}"]
        if isinstance(error, ConflictError) and error.conflicts:
            lines.append(f"{len(error.conflicts)} conflict(s):")
            for c in error.conflicts:
                lines.append(f"  {c.type.value:<20} {c.key}: {c.message}")
                if c.type is ConflictType.ROW_CONFLICT:
                    lines += [f"      {line}" for line in _row_conflict_lines(c)]
        if isinstance(error, ChecksFailed):
            lines += [render_check_report(r) for r in error.reports]
            if error.preview:
                lines.append(f"preview (readable for debugging): {error.preview}")
        return "\n".join(lines)
    if isinstance(error, click.UsageError):
        usage = error.ctx.get_usage() + "\n" if error.ctx else ""
        hint = ""
        if error.ctx is not None and error.ctx.command.get_help_option(error.ctx):
            hint = f"Try '{error.ctx.command_path} --help' for help.\n"
        return f"{usage}{hint}error: {error.format_message()}"
    return (f"internal error: {type(error).__name__}: {error}\n"
            "(set LAKEVERSION_DEBUG=1 to see the traceback)")


def render_check_report(report: dict[str, Any]) -> str:
    """One check's report: status, name, violations, message, then its sample rows."""
    head = (f"  {str(report.get('status', '?')).upper():<8} {report.get('name')}"
            f"  violations={report.get('violations')}  {report.get('duration_ms')}ms"
            f"  {report.get('message') or ''}").rstrip()
    samples = [f"      {json.dumps(row, default=str)}" for row in report.get("samples") or []]
    return "\n".join([head, *samples])


def report_error(error: BaseException, json_output: bool) -> ExitCode:
    """Print `error` the documented way and return its exit code."""
    if json_output:
        click.echo(to_json(error_payload(error)))
    else:
        click.echo(printable(render_error_text(error)), err=True)
    return exit_code_for(error)




def debug_enabled() -> bool:
    return os.environ.get("LAKEVERSION_DEBUG", "").lower() in ("1", "true", "yes")


# ---- text renderers of store values (shared by the commands and the demo) ---------------

SHORT_ID = 12


def short(commit_id: str | None) -> str:
    return commit_id[:SHORT_ID] if commit_id else "-"


def describe_content(content: Content) -> str:
    """One line per table state: its format fields, then its stable id."""
    fields = ", ".join(f"{k}={_scalar(v)}" for k, v in sorted(content.fields.items()))
    return f"{fields}  (id {content.id})" if fields else f"(id {content.id})"


def render_refs(refs: list[Ref], protected: set[str] | None = None) -> str:
    if not refs:
        return "(none)"
    width = max(len(r.name) for r in refs)
    marks = protected or set()
    return "\n".join(f"{r.name:<{width}}  {short(r.head)}"
                     + ("  [protected]" if r.name in marks else "") for r in refs)


def render_entries(entries: list[tuple[Key, Content]]) -> str:
    if not entries:
        return "(no tables)"
    width = max(len(str(k)) for k, _ in entries)
    type_width = max(len(c.type.value) for _, c in entries)
    return "\n".join(f"{str(k):<{width}}  {c.type.value:<{type_width}}  {describe_content(c)}"
                     for k, c in entries)


def render_commit_line(commit: Commit) -> str:
    stamp = commit.timestamp.strftime("%Y-%m-%d %H:%M:%S")
    merge = " (merge)" if len(commit.parents) > 1 else ""
    run = commit.properties.get(RUN_ID)
    by_run = f"  [run {run}]" if run else ""
    return (f"{short(commit.id)}  {stamp}  {commit.author:<12}  {commit.message}{merge}"
            f"{by_run}")


def render_log(commits: list[Commit]) -> str:
    return "\n".join(render_commit_line(c) for c in commits) if commits else "(no commits)"


def render_diff(entries: list[DiffEntry]) -> str:
    if not entries:
        return "no differences"
    lines = []
    for entry in entries:
        before, after = entry.from_content, entry.to_content
        if before is None and after is not None:
            lines.append(f"+ {entry.key}  {after.type.value}  {describe_content(after)}")
        elif after is None and before is not None:
            lines.append(f"- {entry.key}  {before.type.value}  {describe_content(before)}")
        elif before is not None and after is not None:
            lines.append(f"~ {entry.key}  {describe_change(before, after)}")
    return "\n".join(lines)


def describe_change(before: Content, after: Content) -> str:
    if before.id != after.id or before.type != after.type:
        return f"dropped and re-created (id {before.id} -> {after.id})"
    names = sorted(set(before.fields) | set(after.fields))
    changes = [f"{n}: {_scalar(before.fields.get(n))} -> {_scalar(after.fields.get(n))}"
               for n in names if before.fields.get(n) != after.fields.get(n)]
    return ", ".join(changes) or "unchanged"


def render_merge_result(result: MergeResult, verb: str = "merge") -> str:
    if result.dry_run:
        head = (f"dry run: {verb} of {result.source} into {result.target} would succeed"
                if result.successful else
                f"dry run: {verb} of {result.source} into {result.target} would conflict")
        head += "; nothing was written"
    elif result.new_head is None or result.new_head == result.target_head_before:
        head = f"{result.target} is already up to date with {result.source}"
    else:
        how = " (fast-forward)" if result.fast_forward else ""
        done = {"merge": "merged", "revert": "reverted"}.get(verb, verb)
        head = (f"{done} {result.source} into {result.target}{how}: {result.target} "
                f"{short(result.target_head_before)} -> {short(result.new_head)}")
    lines = [head]
    if result.no_ff_reason:
        lines.append(f"merge commit: {result.no_ff_reason}")
    if result.common_ancestor:
        lines.append(f"common ancestor {short(result.common_ancestor)}")
    for detail in result.details:
        note = f"  {detail.conflict.type.value}: {detail.conflict.message}" \
            if detail.conflict else ""
        lines.append(f"  {detail.action.value:<15} {detail.key}"
                     f"  [{detail.behavior.value}]{note}")
        for side in ("source", "target"):
            stats = detail.statistics.get(side)
            if isinstance(stats, dict):
                lines.append(f"      {side}: {_side_statistics(stats)}")
        rows = detail.statistics.get(ROW_MERGE)
        if isinstance(rows, dict):
            lines.append(f"      rows: {_row_statistics(rows)}")
        if detail.conflict is not None and detail.conflict.type is ConflictType.ROW_CONFLICT:
            lines += [f"      {line}" for line in _row_conflict_lines(detail.conflict)]
    if result.checks:
        lines.append(f"checks on preview {short(result.preview)}:")
        lines += [render_check_report(r) for r in result.checks]
    return "\n".join(lines)


def _row_statistics(rows: dict[str, Any]) -> str:
    """What a row-level merge read and rewrote in one table."""
    return (f"{rows.get('files_rewritten', 0)} file(s) rewritten, "
            f"{rows.get('rows_rewritten', 0)} row(s) written, "
            f"{rows.get('bytes_written', 0)} bytes; {rows.get('rows_read', 0)} row(s) read "
            f"from {rows.get('files_read', 0)} file(s)")


def _row_conflict_lines(conflict: Conflict) -> list[str]:
    """The conflicting keys of a ROW_CONFLICT, one line each (as listed: at most 100)."""
    keys = conflict.details.get("keys") or []
    lines = [f"{conflict.details.get('count', len(keys))} conflicting row(s)"
             + (f", {len(keys)} listed" if len(keys) < conflict.details.get("count", 0) else "")
             + "; settle them with --row-conflicts source-wins|target-wins"]
    for entry in keys:
        if isinstance(entry, dict):
            lines.append(f"  {entry.get('reason')} {json.dumps(entry.get('key'), default=str)}:"
                         f" base {json.dumps(entry.get('base'), default=str)}"
                         f" target {json.dumps(entry.get('target'), default=str)}"
                         f" source {json.dumps(entry.get('source'), default=str)}")
    return lines


def _side_statistics(stats: dict[str, Any]) -> str:
    """One side's change inside a table, as a content-aware merge measured it."""
    return (f"+{stats.get('data_files_added', 0)} / -{stats.get('data_files_removed', 0)} "
            f"data files, +{stats.get('rows_added', 0)} / -{stats.get('rows_removed', 0)} "
            f"rows, +{stats.get('delete_files_added', 0)} delete files")
