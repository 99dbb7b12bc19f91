"""`VersionControl`: the `VersionStore` over any storage, composed of one object per
concern, wired here and only here (`__init__`):

    Retention ─ Refs ─ Protection
                 └─ Commits (told by Notifications) ─ History ─ MergePlanner
                      Gates (the MergeGate) ─ Merging ─ Picks

Each object holds only what it needs (the storage, the objects cache, the store's fixed
configuration) and gets its collaborators in its constructor; the gate is handed to
merging, and the notifications to commits, as strategy objects; merges (the gate's
previews and ungated ones) publish their new table states through the formats' registry
(`content.FormatPreviews`). The methods below only
hand the public interface's request values (`requests.py`) to their object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from spark_lakeversion.limits import Limits
from spark_lakeversion.model import (
    MAX_AUDIT_RECORDS,
    AuditRecord,
    CheckReport,
    CheckRun,
    CheckSpec,
    Commit,
    Content,
    DiffEntry,
    GcState,
    Key,
    KeyLike,
    MergeRequest,
    MergeResult,
    MrStatus,
    Ref,
    ReflogEntry,
    RefType,
    ResolvedRef,
)
from spark_lakeversion.store.spi import Storage
from spark_lakeversion.versioning.commits import Commits
from spark_lakeversion.versioning.content import FormatPreviews
from spark_lakeversion.versioning.gates.context import NO_ENGINES, CheckEngines, GateContext
from spark_lakeversion.versioning.gates.gate import Gates
from spark_lakeversion.versioning.gates.notify import Notifications
from spark_lakeversion.versioning.gates.policy import CheckPolicy
from spark_lakeversion.versioning.history import History
from spark_lakeversion.versioning.interface import (
    TABLE_STATES_PAGE,
    LogPage,
    TableStatesPage,
    VersionStore,
)
from spark_lakeversion.versioning.merging import MergePlanner, Merging
from spark_lakeversion.versioning.objects import Objects
from spark_lakeversion.versioning.options import MergeOptions
from spark_lakeversion.versioning.picks import Picks
from spark_lakeversion.versioning.protection import Protection
from spark_lakeversion.versioning.refs import Refs
from spark_lakeversion.versioning.requests import (
    DEFAULT_BRANCH,
    CommitRequest,
    PickRequest,
    RefAssign,
    RefCreate,
    RefDelete,
    RollbackRequest,
)
from spark_lakeversion.versioning.retention import Retention
from spark_lakeversion.versioning.reviews import MergeRequests
from spark_lakeversion.versioning.rowdiff import RowDiffs

if TYPE_CHECKING:
    from spark_lakeversion.rows.page import RowDiffPage


class VersionControl(VersionStore):
    def __init__(self, storage: Storage, *, limits: Limits | None = None,
                 io: Mapping[str, str] | None = None,
                 check_policy: CheckPolicy | None = None,
                 check_engines: CheckEngines = NO_ENGINES) -> None:
        self._configure(limits, io, check_policy)
        self.storage = storage
        self.url = storage.url
        self.objects = objects = Objects(storage)
        retention = Retention(storage, objects)
        previews = FormatPreviews(self.io_properties)
        self._refs = refs = Refs(storage, objects, retention, previews.reassign_refusal)
        self._protection = Protection(storage, refs.get)
        notifications = Notifications(objects, self, self.check_policy, check_engines)
        self._commits = commits = Commits(storage, objects, self.limits, refs, retention,
                                          notifications)
        self._history = history = History(storage, objects, refs)
        planner = MergePlanner(storage, objects, refs, retention, commits, history,
                               self.io_properties, self.limits, previews)
        self._gates = gates = Gates(storage, objects, refs, retention, commits, planner,
                                    notifications, self, self.io_properties,
                                    self.check_policy, check_engines, previews)
        self._reviews = reviews = MergeRequests(
            storage, self.limits, refs,
            lambda source, target, options: self._merging.merge_with(
                source, target, options, approved=True))
        self._merging = Merging(self.limits, refs, planner, gates, reviews.required)
        self._picks = Picks(storage, objects, self.limits, refs, retention, commits, gates,
                            self._protection, self.io_properties, reviews.required)
        self._row_diffs = RowDiffs(refs, commits, self.limits, self.io_properties)

    def close(self) -> None:
        self.storage.close()

    # ---- refs -------------------------------------------------------------------------
    def list_refs(self, type: RefType | None = None) -> list[Ref]:
        return self._refs.list_refs(type)

    def get_ref(self, name: str) -> Ref:
        return self._refs.get(name)

    def create_ref_with(self, request: RefCreate) -> Ref:
        return self._refs.create(request)

    def delete_ref_with(self, request: RefDelete) -> None:
        self._refs.delete(request)

    def assign_ref_with(self, request: RefAssign) -> Ref:
        return self._refs.assign(request)

    def resolve(self, expression: str) -> ResolvedRef:
        return self._refs.resolve(expression)

    def get_commit(self, commit_id: str) -> Commit:
        return self._refs.get_commit(commit_id)

    # ---- protection and the gate's settings ----------------------------------------------
    def protect_branch(self, name: str, require_approvals: int | None = None) -> bool:
        changed = self._protection.set_protected(name, True)
        if require_approvals is not None:
            before = self._reviews.required(name)
            self._reviews.set_required(name, require_approvals)
            changed = changed or before != require_approvals
        return changed

    def required_approvals(self) -> dict[str, int]:
        return self._reviews.all_required()

    def unprotect_branch(self, name: str) -> bool:
        return self._protection.set_protected(name, False)

    def protected_branches(self) -> set[str]:
        return self._protection.branches()

    def add_check(self, spec: CheckSpec, allow_missing: bool = False) -> CheckSpec:
        return self._gates.add_check(spec, allow_missing)

    def test_check(self, branch: str, name: str, source: str | None = None) -> CheckReport:
        return self._gates.test_check(branch, name, source)

    def remove_check(self, branch: str, name: str) -> bool:
        return self._gates.remove_check(branch, name)

    def list_checks(self, branch: str | None = None) -> list[CheckSpec]:
        return self._gates.list_checks(branch)

    def check_runs(self, branch: str | None = None, limit: int = 50) -> list[CheckRun]:
        return self._gates.check_runs(branch, limit)

    def preview_commits(self, since: datetime) -> list[str]:
        return self._gates.preview_commits(since)

    def check_context(self, preview: str, source: str, source_head: str, target: str,
                      target_head: str, changes: tuple[DiffEntry, ...]) -> GateContext:
        """What the check engines get (`Gates.check_context`)."""
        return self._gates.check_context(preview, source, source_head, target, target_head,
                                         changes)

    # ---- commits and contents ---------------------------------------------------------
    def commit_with(self, request: CommitRequest) -> Commit:
        return self._commits.commit(request)

    def get_contents(self, ref: str, keys: Iterable[KeyLike]) -> dict[Key, Content]:
        return self._commits.get_contents(ref, keys)

    def list_keys(self, ref: str, prefix: KeyLike | None = None) -> list[tuple[Key, Content]]:
        return self._commits.list_keys(ref, prefix)

    def diff(self, from_ref: str, to_ref: str) -> list[DiffEntry]:
        return self._commits.diff(from_ref, to_ref)

    def diff_rows(self, from_ref: str, to_ref: str, key: KeyLike, *,
                  columns: Sequence[str] | None = None, limit: int | None = None,
                  page_token: str | None = None, summary: bool = False) -> RowDiffPage:
        return self._row_diffs.diff_rows(from_ref, to_ref, key, columns=columns, limit=limit,
                                         page_token=page_token, summary=summary)

    def plan_row_diff(self, from_ref: str, to_ref: str, key: KeyLike, *,
                      columns: Sequence[str] | None = None, limit: int | None = None,
                      summary: bool = False, dialect: str = "spark") -> dict[str, Any]:
        return self._row_diffs.plan_row_diff(from_ref, to_ref, key, columns=columns,
                                             limit=limit, summary=summary, dialect=dialect)

    # ---- history ----------------------------------------------------------------------
    def log(self, ref: str, *, key: KeyLike | None = None, limit: int = 50,
            page_token: str | None = None) -> LogPage:
        return self._history.log(ref, key=key, limit=limit, page_token=page_token)

    def merge_base(self, a: str, b: str) -> str | None:
        return self._history.merge_base(a, b)

    def reflog(self, since: datetime) -> list[ReflogEntry]:
        return self._history.reflog(since)

    def table_states(self, page_token: str | None = None,
                     limit: int = TABLE_STATES_PAGE) -> TableStatesPage:
        return self._history.table_states(page_token, limit)

    def location_owner(self, location: str, content_id: str | None = None
                       ) -> tuple[str, str] | None:
        return self._history.location_owner(location, content_id)

    def gc_state(self) -> GcState:
        return self._history.gc_state()

    def begin_gc(self, cutoff: datetime, retained_since: datetime) -> GcState:
        return self._history.begin_gc(cutoff, retained_since)

    def record_audit(self, record: AuditRecord) -> None:
        self._history.record_audit(record)

    def audit(self, since: datetime | None = None, principal: str | None = None,
              limit: int = MAX_AUDIT_RECORDS) -> list[AuditRecord]:
        return self._history.audit(since, principal, limit)

    # ---- merge requests -------------------------------------------------------------------
    def open_merge_request(self, source: str, target: str = DEFAULT_BRANCH, *, title: str,
                           description: str = "", author: str | None = None) -> MergeRequest:
        return self._reviews.open(source, target, title, description, author)

    def list_merge_requests(self, status: MrStatus | None = None, before: int | None = None,
                            limit: int = 50) -> list[MergeRequest]:
        return self._reviews.list(status, before, limit)

    def get_merge_request(self, number: int) -> MergeRequest:
        return self._reviews.get(number)

    def approve_merge_request(self, number: int, approver: str | None = None) -> MergeRequest:
        return self._reviews.approve(number, approver)

    def merge_merge_request(self, number: int, *, author: str | None = None,
                            message: str | None = None) -> MergeResult:
        return self._reviews.merge(number, author, message)

    def close_merge_request(self, number: int) -> MergeRequest:
        return self._reviews.close(number)

    # ---- merge, cherry-pick, revert, rollback -----------------------------------------------
    def merge_with(self, source: str, target: str, options: MergeOptions) -> MergeResult:
        return self._merging.merge_with(source, target, options)

    def pick_with(self, request: PickRequest) -> MergeResult:
        return self._picks.apply(request)

    def rollback_table_with(self, request: RollbackRequest) -> Commit:
        return self._picks.rollback(request)
