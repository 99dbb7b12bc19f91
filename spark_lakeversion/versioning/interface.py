"""The public `VersionStore` interface: refs, commits, per-commit table states, diff and merge.

Contract shared by every backend:
- a ref moves only by compare-and-swap on its head, so there is no read-then-write window;
- every mutation may carry `expected_head`; a commit applies on a moved branch only if
  none of the keys it touches changed in between (otherwise `ConflictError`);
- reads accept any ref expression (see `spark_lakeversion.versioning.names`);
- failed calls write nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.fileio import NO_FILE_IO
from spark_lakeversion.limits import DEFAULT_LIMITS, Limits
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
    Operation,
    Ref,
    ReflogEntry,
    RefType,
    ResolvedRef,
)
from spark_lakeversion.versioning.gates.policy import DEFAULT_CHECK_POLICY, CheckPolicy
from spark_lakeversion.versioning.options import MergeOptions
from spark_lakeversion.versioning.requests import DEFAULT_AUTHOR as DEFAULT_AUTHOR
from spark_lakeversion.versioning.requests import DEFAULT_BRANCH as DEFAULT_BRANCH
from spark_lakeversion.versioning.requests import (
    CommitRequest,
    PickRequest,
    RefAssign,
    RefCreate,
    RefDelete,
    RollbackRequest,
)

if TYPE_CHECKING:
    from spark_lakeversion.rows.page import RowDiffPage


@dataclass(frozen=True)
class LogPage:
    commits: list[Commit]
    next_page_token: str | None


@dataclass(frozen=True)
class TableStatesPage:
    states: list[Content]
    next_page_token: str | None


#: table states per page of `VersionStore.table_states`
TABLE_STATES_PAGE = 1000


_TOKEN_TAG = b"lakeversion-log-page:"
_MAX_TOKEN_CHARS = 64


def _token_check(offset: int) -> str:
    return hashlib.blake2b(_TOKEN_TAG + str(offset).encode(), digest_size=6).hexdigest()


def encode_page_token(offset: int) -> str:
    """An opaque page token: the offset with a check, so a made-up token is refused."""
    return base64.urlsafe_b64encode(f"{offset}:{_token_check(offset)}".encode()).decode()


def decode_page_token(token: object) -> int:
    """The offset of a token `encode_page_token` made; `InvalidInput` naming page_token else."""
    problem = InvalidInput(f"page_token {str(token)[:_MAX_TOKEN_CHARS]!r} is not a page token "
                           "from a previous answer (pass next_page_token back unchanged)")
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
        raise problem
    try:
        offset_text, _, check = base64.urlsafe_b64decode(token.encode("ascii")).decode(
            "ascii").partition(":")
    except (binascii.Error, UnicodeError, ValueError):
        raise problem from None
    if not offset_text.isascii() or not offset_text.isdigit() or len(offset_text) > 12:
        raise problem
    offset = int(offset_text)
    if check != _token_check(offset):
        raise problem
    return offset


class VersionStore(ABC):
    """The public interface: `spark_lakeversion.versioning.open_store(url)` gives the
    version-control layer over a database (`VersionControl`) or a server's `/api/v1`
    (`RestVersionStore`).

    Every write takes one request value (`versioning.requests`; a merge's is
    `MergeOptions`): `create_ref_with`, `delete_ref_with`, `assign_ref_with`,
    `commit_with`, `pick_with`, `rollback_table_with` and `merge_with` are what an
    implementation provides. `create_ref`, `delete_ref`, `assign_ref`, `commit`,
    `cherry_pick`, `revert`, `rollback_table` and `merge` are their keyword forms, defined
    here once: they only build the value."""

    url: str
    _limits: Limits = DEFAULT_LIMITS
    _io_properties: Mapping[str, str] = NO_FILE_IO
    _check_policy: CheckPolicy = DEFAULT_CHECK_POLICY

    def _configure(self, limits: Limits | None, io: Mapping[str, str] | None,
                   check_policy: CheckPolicy | None = None) -> None:
        """Set once, by the constructor (`open_store(url, limits=..., io=...,
        check_policy=...)`): a store's configuration never changes after it is opened, so no
        later app, endpoint or request can loosen it."""
        if limits is not None:
            self._limits = limits
        if io is not None:
            self._io_properties = io
        if check_policy is not None:
            self._check_policy = check_policy

    @property
    def limits(self) -> Limits:
        """What a commit may store (`spark_lakeversion.limits`), fixed when opened."""
        return self._limits

    @property
    def io_properties(self) -> Mapping[str, str]:
        """How content mergers open table files (`spark_lakeversion.fileio.FileIOConfig`),
        fixed when opened; never a client's."""
        return self._io_properties

    @property
    def check_policy(self) -> CheckPolicy:
        """What merge-gate checks run by this store may reach (Python modules, webhook
        hosts), fixed when opened; never a client's."""
        return self._check_policy

    # ---- refs -------------------------------------------------------------------------
    @abstractmethod
    def list_refs(self, type: RefType | None = None) -> list[Ref]: ...

    @abstractmethod
    def get_ref(self, name: str) -> Ref:
        """A branch or tag by exact name (`RefNotFound` otherwise)."""

    def create_ref(self, name: str, type: RefType = RefType.BRANCH,
                   from_ref: str = DEFAULT_BRANCH) -> Ref:
        """`create_ref_with`, by keywords."""
        return self.create_ref_with(RefCreate(name, type, from_ref))

    @abstractmethod
    def create_ref_with(self, request: RefCreate) -> Ref:
        """O(1): a new ref points at the commit `from_ref` resolves to; nothing is copied."""

    def delete_ref(self, name: str, type: RefType | None = None,
                   expected_head: str | None = None, force: bool = False) -> None:
        """`delete_ref_with`, by keywords."""
        self.delete_ref_with(RefDelete(name, type, expected_head, force))

    @abstractmethod
    def delete_ref_with(self, request: RefDelete) -> None:
        """A branch holding commits that no other branch or tag holds (`UnmergedBranch`,
        naming how many) or a protected branch (an admin action) is deleted only with
        `force`, as git's ``-D``."""

    def assign_ref(self, name: str, to: str, expected_head: str | None = None,
                   force: bool = False) -> Ref:
        """`assign_ref_with`, by keywords."""
        return self.assign_ref_with(RefAssign(name, to, expected_head, force))

    @abstractmethod
    def assign_ref_with(self, request: RefAssign) -> Ref:
        """Reset a branch (or re-point a tag explicitly) to what `to` resolves to; a
        protected branch only with `force` (an admin action) and only to a state on its
        first-parent chain (`versioning.protection`: a whole-branch rollback)."""

    # ---- merge gates: protection and checks (settings, not versioned data) ---------------
    @abstractmethod
    def protect_branch(self, name: str, require_approvals: int | None = None) -> bool:
        """Refuse direct writes to `name` (`ProtectedBranch`); whether that changed.
        `require_approvals`: merges into it then need that many approvals of a merge
        request (`versioning.reviews`; 0: none; None: as it was)."""

    @abstractmethod
    def required_approvals(self) -> dict[str, int]:
        """Branch -> approvals a merge into it needs (branches needing none left out)."""

    @abstractmethod
    def unprotect_branch(self, name: str) -> bool: ...

    @abstractmethod
    def protected_branches(self) -> set[str]: ...

    @abstractmethod
    def add_check(self, spec: CheckSpec, allow_missing: bool = False) -> CheckSpec:
        """Attach a check to merges into `spec.branch`; answers it as stored. It is
        validated first (`InvalidInput`, nothing stored): a SQL check also runs once on the
        branch's current state, and may name a table that exists on no ref only with
        `allow_missing`."""

    @abstractmethod
    def test_check(self, branch: str, name: str, source: str | None = None) -> CheckReport:
        """Run one check of `branch` on the preview of merging `source` into it (on the
        branch's current state without a source); nothing is merged or recorded."""

    @abstractmethod
    def remove_check(self, branch: str, name: str) -> bool: ...

    @abstractmethod
    def list_checks(self, branch: str | None = None) -> list[CheckSpec]: ...

    @abstractmethod
    def check_runs(self, branch: str | None = None, limit: int = 50) -> list[CheckRun]:
        """The latest check runs, newest first."""

    @abstractmethod
    def preview_commits(self, since: datetime) -> list[str]:
        """Merge previews recorded since `since` (gc keeps their files)."""

    @abstractmethod
    def resolve(self, expression: str) -> ResolvedRef:
        """Branch, tag, commit id or >=8-hex prefix, `ref~N`, `ref@{N}` (the ref's N-th
        previous head, from its reflog), `ref#<ISO-8601>`."""

    # ---- commits ----------------------------------------------------------------------
    def commit(
        self,
        branch: str,
        operations: Sequence[Operation],
        *,
        message: str,
        author: str | None = None,
        properties: Mapping[str, str] | None = None,
        expected_head: str | None = None,
        expected_gc_epoch: int | None = None,
    ) -> Commit:
        """`commit_with`, by keywords."""
        return self.commit_with(CommitRequest(branch, operations, message, author, properties,
                                              expected_head, expected_gc_epoch))

    @abstractmethod
    def commit_with(self, request: CommitRequest) -> Commit:
        """Apply Put/Delete operations atomically as one commit on `branch`.

        With `expected_gc_epoch`, the commit lands only if no gc run began since the caller
        read that epoch (`gc_state()`) and checked its new files against gc's cutoff;
        otherwise `ConflictError` and nothing is written."""

    @abstractmethod
    def get_commit(self, commit_id: str) -> Commit: ...

    @abstractmethod
    def log(self, ref: str, *, key: KeyLike | None = None, limit: int = 50,
            page_token: str | None = None) -> LogPage:
        """Commits reachable from `ref`, newest first; with `key`, only those changing it."""

    # ---- contents ---------------------------------------------------------------------
    @abstractmethod
    def get_contents(self, ref: str, keys: Iterable[KeyLike]) -> dict[Key, Content]:
        """States of the given keys at `ref`; absent keys are left out."""

    def get_content(self, ref: str, key: KeyLike) -> Content | None:
        k = Key.of(key)
        return self.get_contents(ref, [k]).get(k)

    @abstractmethod
    def list_keys(self, ref: str, prefix: KeyLike | None = None) -> list[tuple[Key, Content]]:
        """Every key under `prefix` (itself excluded), in key order."""

    @abstractmethod
    def diff(self, from_ref: str, to_ref: str) -> list[DiffEntry]: ...

    # ---- merge requests (`versioning.reviews`) ---------------------------------------------
    @abstractmethod
    def open_merge_request(self, source: str, target: str = DEFAULT_BRANCH, *, title: str,
                           description: str = "", author: str | None = None) -> MergeRequest:
        """A new open request to merge branch `source` into branch `target`."""

    @abstractmethod
    def list_merge_requests(self, status: MrStatus | None = None, before: int | None = None,
                            limit: int = 50) -> list[MergeRequest]:
        """Newest first; numbers below `before` (the next page)."""

    @abstractmethod
    def get_merge_request(self, number: int) -> MergeRequest: ...

    @abstractmethod
    def approve_merge_request(self, number: int, approver: str | None = None) -> MergeRequest:
        """Approve the source's current head (the access layer names the approver)."""

    @abstractmethod
    def merge_merge_request(self, number: int, *, author: str | None = None,
                            message: str | None = None) -> MergeResult:
        """Merge the request's approved source head through the merge path (gates and
        checks apply); `ProtectedBranch` when it lacks approvals."""

    @abstractmethod
    def close_merge_request(self, number: int) -> MergeRequest: ...

    @abstractmethod
    def diff_rows(self, from_ref: str, to_ref: str, key: KeyLike, *,
                  columns: Sequence[str] | None = None, limit: int | None = None,
                  page_token: str | None = None, summary: bool = False) -> RowDiffPage:
        """The rows of table `key` that differ from `from_ref` to `to_ref` (`change` column
        first), one page of at most `limit` rows, from the files live on exactly one side
        (`versioning.rowdiff`); `summary`: counts per partition instead."""

    @abstractmethod
    def plan_row_diff(self, from_ref: str, to_ref: str, key: KeyLike, *,
                      columns: Sequence[str] | None = None, limit: int | None = None,
                      summary: bool = False, dialect: str = "spark") -> dict[str, Any]:
        """The same row diff planned for an engine that reads the rows itself (`rows.plan`:
        each side's commit and files, the SQL in `dialect`); reads no row."""

    # ---- merging ----------------------------------------------------------------------
    @abstractmethod
    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two ref expressions."""

    def merge(self, source: str, target: str = DEFAULT_BRANCH,
              merge_options: MergeOptions | None = None, **settings: Any) -> MergeResult:
        """Three-way merge of `source` into branch `target`; raises ConflictError on conflict.

        Give a `MergeOptions`, or its fields as keywords (`MergeOptions.of`: also
        `default_behavior`, `expected_target_head`, `options={"isolation_level": ...}`).
        """
        if merge_options is not None and settings:
            raise TypeError("give merge options either as MergeOptions or as keywords")
        return self.merge_with(source, target, merge_options or MergeOptions.of(**settings))

    @abstractmethod
    def merge_with(self, source: str, target: str, options: MergeOptions) -> MergeResult: ...

    def cherry_pick(self, commit_ids: Sequence[str], onto: str, *, dry_run: bool = False,
                    author: str | None = None,
                    expected_head: str | None = None) -> MergeResult:
        """`pick_with` a cherry-pick, by keywords."""
        return self.pick_with(PickRequest("cherry-pick", commit_ids, onto, dry_run, author,
                                          expected_head))

    def revert(self, commit_id: str, on: str, *, dry_run: bool = False,
               author: str | None = None, expected_head: str | None = None) -> MergeResult:
        """`pick_with` a revert, by keywords."""
        return self.pick_with(PickRequest("revert", [commit_id], on, dry_run, author,
                                          expected_head))

    @abstractmethod
    def pick_with(self, request: PickRequest) -> MergeResult:
        """Cherry-pick commits onto a branch, or revert one; a dry run writes nothing."""

    def rollback_table(self, branch: str, key: KeyLike, to: str, *,
                       author: str | None = None, message: str | None = None,
                       expected_head: str | None = None,
                       properties: Mapping[str, str] | None = None) -> Commit:
        """`rollback_table_with`, by keywords."""
        return self.rollback_table_with(RollbackRequest(branch, key, to, author, message,
                                                        expected_head, properties))

    @abstractmethod
    def rollback_table_with(self, request: RollbackRequest) -> Commit:
        """Set one table on `branch` to its state at `to` (absent there: deleted);
        `properties` are added to the commit's (e.g. the run or DAG that rolled back)."""

    # ---- file safety --------------------------------------------------------------------
    def location_owner(self, location: str, content_id: str | None = None
                       ) -> tuple[str, str] | None:
        """(table id, its location) of a table other than `content_id`, on any ref or
        retained commit, whose location equals, contains or lies inside `location`; None
        when there is none. Backends keep an index of the contents' `location` field; one
        without an index (the HTTP client: its server checks on commit) answers None."""
        return None

    # ---- gc ---------------------------------------------------------------------------
    @abstractmethod
    def reflog(self, since: datetime) -> list[ReflogEntry]:
        """Ref movements `ref#<time>` may still resolve to for a time from `since` on,
        oldest first: for each ref, the entry in force at `since` (its last one before)
        and every later entry. Entries of deleted refs are included."""

    @abstractmethod
    def table_states(self, page_token: str | None = None,
                     limit: int = TABLE_STATES_PAGE) -> TableStatesPage:
        """One page of every table state the store ever recorded, on any ref or commit
        (retained or not), each once; pass `next_page_token` back for the next page."""

    def iter_table_states(self) -> Iterator[Content]:
        """All pages of `table_states`: what gc reads to find the tables no retained
        commit holds any more."""
        token: str | None = None
        while True:
            page = self.table_states(token)
            yield from page.states
            if page.next_page_token is None:
                return
            token = page.next_page_token

    @abstractmethod
    def gc_state(self) -> GcState:
        """gc's epoch and cutoffs (see `spark_lakeversion.model`)."""

    @abstractmethod
    def begin_gc(self, cutoff: datetime, retained_since: datetime) -> GcState:
        """Record the start of a real gc run: a new epoch; files older than `cutoff` and
        history older than `retained_since` may be collected from now on."""

    # ---- audit trail (written by `spark_lakeversion.versioning.access`) -----------------
    def record_audit(self, record: AuditRecord) -> None:
        """Keep one audit record; a store without an audit trail refuses."""
        raise InvalidInput(f"{type(self).__name__} keeps no audit trail")

    def audit(self, since: datetime | None = None, principal: str | None = None,
              limit: int = MAX_AUDIT_RECORDS) -> list[AuditRecord]:
        """The newest `limit` audit records from `since` on (of `principal`), oldest first."""
        raise InvalidInput(f"{type(self).__name__} keeps no audit trail")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default holds none."""
