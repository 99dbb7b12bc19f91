"""The narrow storage interface the version-control layer runs on (cf. Nessie's `Persist`).

A storage keeps, and knows nothing about merges or history:
- immutable, content-addressed objects: tree nodes (opaque bytes), content values and
  commits (with their generation number, for history walks);
- refs, moved only by compare-and-swap, each movement appended to the reflog;
- the keys each commit changed (for `log --table`), the location index of table contents
  (no two tables share a directory), gc's state (epoch and cutoffs) and the audit trail;
- merge gates' settings and records (`model/gates.py`): protected branches, checks, runs;
- merge requests, their approvals and the approvals a branch requires (`model/reviews.py`).

Every write happens in one `writing()` transaction, so objects land before the ref moves
and a ref never points at a missing commit. `spark_lakeversion.versioning` holds every
algorithm over this interface; `spark_lakeversion.store.sql` implements it on SQLAlchemy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from spark_lakeversion.model import (
    AuditRecord,
    CheckRun,
    CheckSpec,
    Commit,
    Content,
    GcState,
    Key,
    MergeRequest,
    MrStatus,
    Ref,
    ReflogEntry,
    RefType,
)


class StorageReader(ABC):
    """Reads that must see one consistent state (inside `reading()` or `writing()`)."""

    @abstractmethod
    def heads(self) -> dict[str, str]:
        """ref name -> head, for every ref."""

    @abstractmethod
    def reflog_rows(self) -> list[tuple[str, str | None, int]]:
        """The whole reflog as (ref name, head or None, time in µs), oldest first."""

    @abstractmethod
    def gc_state(self) -> GcState: ...

    @abstractmethod
    def branch_checks(self, branch: str | None) -> list[CheckSpec]:
        """The checks of `branch` (None: of every branch), read in the caller's
        transaction (no extra connection on the commit path)."""

    @abstractmethod
    def protected_branches(self) -> set[str]:
        """Names of the protected branches (read in a write transaction: no race with
        `set_protected`)."""

    @abstractmethod
    def held_head(self, name: str, commit_id: str) -> bool:
        """Whether ref `name`, since it was last created, had `commit_id` as its head (its
        reflog says so): what a protected branch published, read in the transaction that
        moves it."""

    @abstractmethod
    def required_approvals(self) -> dict[str, int]:
        """Branch -> approvals a merge into it needs (branches needing none left out)."""

    @abstractmethod
    def merge_request(self, number: int) -> MergeRequest | None:
        """The request with its approvals (source head and requirement not filled in)."""

    @abstractmethod
    def merge_requests(self, status: MrStatus | None, before: int | None,
                       limit: int) -> list[MergeRequest]:
        """Newest first, numbers below `before`."""


class StorageWriter(StorageReader):
    """One write transaction: everything lands, or nothing."""

    @abstractmethod
    def hold_gc_state(self) -> GcState:
        """gc's state, held until the transaction ends: no gc run begins meanwhile."""

    @abstractmethod
    def put_objects(self, contents: Mapping[str, str], nodes: Mapping[str, bytes],
                    indexed: Iterable[Content | None]) -> None:
        """Content values (hash -> canonical JSON) and tree nodes (hash -> bytes); a row
        already there is the same row. `indexed`: contents whose locations to index."""

    @abstractmethod
    def put_commit(self, commit: Commit, generation: int, changed: Sequence[Key]) -> None: ...

    @abstractmethod
    def create_ref(self, name: str, type: RefType, head: str, operation: str) -> None:
        """`AlreadyExists` when a ref of that name exists."""

    @abstractmethod
    def delete_ref(self, name: str, expected_head: str) -> bool:
        """Delete `name` if it is still at `expected_head`; whether it was deleted."""

    @abstractmethod
    def move_branch(self, branch: str, expected_head: str, new_head: str, operation: str,
                    ts_us: int | None = None) -> None:
        """Compare-and-swap a branch's head; `ReferenceConflict` when it moved."""

    @abstractmethod
    def set_protected(self, branch: str, protected: bool) -> bool:
        """Protect or unprotect `branch`; whether that changed anything."""

    @abstractmethod
    def set_required_approvals(self, branch: str, required: int) -> None: ...

    @abstractmethod
    def add_merge_request(self, source: str, target: str, title: str, description: str,
                          author: str, now: datetime) -> int:
        """A new open request; its number."""

    @abstractmethod
    def approve_merge_request(self, number: int, principal: str, source_head: str,
                              now: datetime) -> None:
        """Record (or renew) `principal`'s approval of `source_head`."""

    @abstractmethod
    def set_merge_request_status(self, number: int, expected: MrStatus, status: MrStatus,
                                 now: datetime, merged_commit: str | None = None,
                                 merged_source: str | None = None) -> bool:
        """Compare-and-set of a request's status; whether it was still `expected`."""


class Storage(ABC):
    url: str

    # ---- immutable objects ------------------------------------------------------------
    @abstractmethod
    def node(self, node_hash: str) -> bytes | None: ...

    @abstractmethod
    def contents(self, hashes: Sequence[str]) -> dict[str, Content]:
        """The content values of those hashes that are stored."""

    @abstractmethod
    def commit(self, commit_id: str) -> tuple[Commit, int] | None:
        """A full-id commit and its generation number, None when absent."""

    @abstractmethod
    def commits_with_prefix(self, prefix: str, limit: int) -> list[str]: ...

    @abstractmethod
    def commits_changing(self, key: Key) -> set[str]:
        """Ids of the commits that changed `key`."""

    @abstractmethod
    def table_states(self, after: str | None, limit: int) -> tuple[list[Content], str | None]:
        """Up to `limit` stored contents by hash after `after`, tables only; and the hash
        to continue from (None on the last page)."""

    # ---- refs ---------------------------------------------------------------------------
    @abstractmethod
    def find_ref(self, name: str) -> Ref | None: ...

    @abstractmethod
    def list_refs(self, type: RefType | None = None) -> list[Ref]: ...

    @abstractmethod
    def reflog_head_at(self, name: str, when: datetime) -> tuple[bool, str | None]:
        """(whether `name` has a reflog entry at or before `when`, its head then)."""

    @abstractmethod
    def reflog(self) -> list[ReflogEntry]:
        """Every ref movement, oldest first."""

    @abstractmethod
    def reflog_heads(self, name: str, limit: int) -> list[str | None]:
        """The heads of `name`'s newest `limit` reflog entries, newest first (None: the ref
        was deleted there); what `name@{N}` reads."""

    # ---- the small tables -----------------------------------------------------------------
    @abstractmethod
    def location_owner(self, location: str, content_id: str | None
                       ) -> tuple[str, str] | None: ...

    @abstractmethod
    def begin_gc(self, cutoff: datetime, retained_since: datetime) -> GcState: ...

    # ---- the audit trail ------------------------------------------------------------------
    @abstractmethod
    def append_audit(self, record: AuditRecord) -> None:
        """Keep one audit record (its own transaction)."""

    @abstractmethod
    def audit(self, since: datetime | None, principal: str | None,
              limit: int) -> list[AuditRecord]:
        """The newest `limit` records from `since` on (of `principal`), oldest first."""
    # ---- merge gates' settings and records (not versioned) ----------------------------------
    @abstractmethod
    def checks(self, branch: str | None = None) -> list[CheckSpec]: ...

    @abstractmethod
    def add_check(self, spec: CheckSpec) -> None:
        """`AlreadyExists` when the branch has a check of that name."""

    @abstractmethod
    def remove_check(self, branch: str, name: str) -> bool: ...

    @abstractmethod
    def record_check_runs(self, runs: Sequence[CheckRun]) -> None: ...

    @abstractmethod
    def check_runs(self, branch: str | None, limit: int) -> list[CheckRun]:
        """The latest runs, newest first."""

    @abstractmethod
    def previews_since(self, since: datetime) -> list[str]:
        """Preview commits of check runs recorded at or after `since` (gc keeps them)."""

    # ---- transactions ---------------------------------------------------------------------
    @abstractmethod
    def reading(self) -> AbstractContextManager[StorageReader]: ...

    @abstractmethod
    def writing(self) -> AbstractContextManager[StorageWriter]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
