"""Every write of the version-control layer as one value, as a merge takes `MergeOptions`.

`VersionControl` builds one from its public method's arguments and hands it to the one
object that carries the write out (`refs.Refs`, `commits.Commits`, `picks.Picks`), so a new
keyword touches the request and its consumer only. Values are checked by that consumer, in
the order the write has always checked them (a refusal writes nothing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spark_lakeversion.model import KeyLike, Operation, RefType
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH


@dataclass(frozen=True)
class RefCreate:
    name: str
    type: RefType | str = RefType.BRANCH
    from_ref: str = DEFAULT_BRANCH


@dataclass(frozen=True)
class RefDelete:
    """`force` deletes a branch with commits no other ref holds, or a protected one."""

    name: str
    type: RefType | str | None = None
    expected_head: str | None = None
    force: bool = False


@dataclass(frozen=True)
class RefAssign:
    """A branch reset; `force` resets a protected branch to a state published on it."""

    name: str
    to: str
    expected_head: str | None = None
    force: bool = False


@dataclass(frozen=True)
class CommitRequest:
    """A table commit. `from_commits` must still be in gc's retained history (a rollback's
    source state); `recovery` marks a rollback, allowed on a protected branch when it
    restores a published state (checked by `Picks`, in the commit's transaction)."""

    branch: str
    operations: Sequence[Operation]
    message: str
    author: str | None = None
    properties: Mapping[str, str] | None = None
    expected_head: str | None = None
    expected_gc_epoch: int | None = None
    from_commits: Sequence[str] = ()


@dataclass(frozen=True)
class PickRequest:
    """A cherry-pick (`kind` "cherry-pick": the commits' changes) or a revert ("revert":
    their reverse) onto the branch `onto`."""

    kind: str
    commit_ids: Sequence[str]
    onto: str
    dry_run: bool = False
    author: str | None = None
    expected_head: str | None = None


@dataclass(frozen=True)
class RollbackRequest:
    """One table of `branch` put back as it was at `to`."""

    branch: str
    key: KeyLike
    to: str
    author: str | None = None
    message: str | None = None
    expected_head: str | None = None
    properties: Mapping[str, str] | None = None
