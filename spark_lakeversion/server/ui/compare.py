"""What the compare view, the commit view and a merge request show of two states: the
table-level diff, per table the schema diff and the row diff, the merge dry run (per-table
outcome and conflicts, row conflicts with their values), and the checks of the target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from spark_lakeversion.errors import ChecksFailed, ConflictError, LakeVersionError
from spark_lakeversion.model import Content, DiffEntry, MergeResult
from spark_lakeversion.server.ui import rows
from spark_lakeversion.server.ui.render import View
from spark_lakeversion.server.ui.tables import (
    TableView,
    describe,
    is_table,
    kind_of,
    schema_diff,
)

#: tables one compare shows in full (the rest are listed)
MAX_TABLES = 20


@dataclass
class TableChange:
    key: str
    kind: str
    schema: list[tuple[str, str, str, str]] = field(default_factory=list)
    rows: rows.RowDiff | None = None
    note: str = ""


@dataclass
class Comparison:
    a: str
    b: str
    changes: list[TableChange]
    more: int = 0
    dry_run: MergeResult | None = None
    dry_run_error: LakeVersionError | None = None
    target_is_branch: bool = False
    checks: list[Any] = field(default_factory=list)
    required_approvals: int = 0
    #: the reports of the target's checks on the dry run's preview
    check_reports: list[dict[str, Any]] = field(default_factory=list)
    #: whether the checks ran on this view (a page view only plans the merge)
    checks_run: bool = False

    @property
    def checks_failed(self) -> bool:
        return isinstance(self.dry_run_error, ChecksFailed)

    @property
    def clean(self) -> bool:
        """No conflict, and no check failed (if they ran: the merge runs them anyway)."""
        return self.dry_run is not None and self.dry_run.successful and \
            self.dry_run_error is None

    def conflicts(self) -> list[dict[str, Any]]:
        if self.dry_run is None:
            return []
        return [c.to_dict() for c in self.dry_run.conflicts]


def _view(content: Content | None, view: View) -> TableView | None:
    if content is None or not is_table(content):
        return None
    return describe(content, view.io)


def table_changes(view: View, a: str, b: str, diffs: list[DiffEntry]) -> list[TableChange]:
    """Each changed table's schema diff and row diff (going from `a` to `b`)."""
    changes: list[TableChange] = []
    for d in diffs[:MAX_TABLES]:
        content = d.to_content or d.from_content
        change = TableChange(str(d.key), d.kind.value)
        if content is None or not is_table(content):
            changes.append(change)
            continue
        try:
            change.schema = schema_diff(_view(d.from_content, view), _view(d.to_content, view))
        except (LakeVersionError, OSError, ValueError) as exc:
            change.note = f"schema unreadable: {getattr(exc, 'message', None) or exc}"
        if d.from_content is None or kind_of(d.from_content) != "Iceberg view":
            change.rows = rows.row_diff(view, a, b, str(d.key))
        changes.append(change)
    return changes


def compare(view: View, a: str, b: str, run_checks: bool = False) -> Comparison:
    """`a...b`: what merging `b` into `a` would bring (the diff goes from `a` to `b`).

    A page view plans the merge only (`plan_only`: no check runs, nothing written or
    audited); `run_checks` (a "Run checks" POST) is the full dry run through the gate,
    whose check runs are recorded and which is audited like any dry-run merge."""
    store = view.store
    diffs = store.diff(a, b)
    result = Comparison(a, b, table_changes(view, a, b, diffs),
                        max(0, len(diffs) - MAX_TABLES))
    resolved = store.resolve(a)
    result.target_is_branch = resolved.branch is not None and resolved.expression == \
        resolved.branch
    if result.target_is_branch:
        try:
            result.dry_run = store.merge(b, a, dry_run=True, plan_only=not run_checks)
            result.check_reports = list(result.dry_run.checks)
        except ChecksFailed as exc:
            result.dry_run_error = exc
            result.check_reports = list(exc.reports)
        except LakeVersionError as exc:
            result.dry_run_error = exc
            if isinstance(exc, ConflictError) and exc.result is not None:
                result.dry_run = cast(MergeResult, exc.result)
        result.checks = [c for c in store.list_checks(a) if c.kind.value != "notify"]
        result.checks_run = run_checks
        result.required_approvals = store.required_approvals().get(a, 0)
    return result
