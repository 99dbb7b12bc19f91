"""Every write of the version-control layer as one value, as a merge takes `MergeOptions`.

The public `VersionStore` takes these: each write is one method over one request value
(`create_ref_with(RefCreate(...))`, `commit_with(CommitRequest(...))`...), which every
implementation (`VersionControl`, `RestVersionStore`, `AccessControlledStore`) implements
once; the keyword forms (`create_ref(name, ...)`, `commit(branch, ops, message=...)`) only
build the value. So a new keyword touches the request, its consumer and its wire form
only. Values are checked by that consumer, in the order the write has always checked them
(a refusal writes nothing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import KeyLike, Operation, RefType

DEFAULT_BRANCH = "main"
DEFAULT_AUTHOR = "lakeversion"


@dataclass(frozen=True)
class RefCreate:
    name: str
    type: RefType | str = RefType.BRANCH
    from_ref: str = DEFAULT_BRANCH


@dataclass(frozen=True)
class RefDelete:
    """`force` deletes a branch with commits no other ref holds, or a protected one when
    `allow_protected`: the access layer sets that from the principal's `admin` grant, and
    the store checks the branch's protection in the delete's own transaction (a branch
    protected after the access check is not deleted by someone who may not)."""

    name: str
    type: RefType | str | None = None
    expected_head: str | None = None
    force: bool = False
    allow_protected: bool = True


@dataclass(frozen=True)
class RefAssign:
    """A branch reset; `force` resets a protected branch to a state published on it."""

    name: str
    to: str
    expected_head: str | None = None
    force: bool = False


@dataclass(frozen=True)
class CommitRequest:
    """A table commit. With `expected_gc_epoch`, it lands only if no gc run began since the
    caller read that epoch (`gc_state()`) and checked its new files against gc's cutoff."""

    branch: str
    operations: Sequence[Operation]
    message: str
    author: str | None = None
    properties: Mapping[str, str] | None = None
    expected_head: str | None = None
    expected_gc_epoch: int | None = None


#: what a `PickRequest` does: the commits' changes, or their reverse
PICK_KINDS = ("cherry-pick", "revert")


@dataclass(frozen=True)
class PickRequest:
    """A cherry-pick (`kind` "cherry-pick": the commits' changes) or a revert ("revert":
    the reverse of one commit) onto the branch `onto`."""

    kind: str
    commit_ids: Sequence[str]
    onto: str
    dry_run: bool = False
    author: str | None = None
    expected_head: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in PICK_KINDS:
            raise InvalidInput(f"unknown pick {self.kind!r}: use {', '.join(PICK_KINDS)}")
        if self.kind == "revert" and len(self.commit_ids) != 1:
            raise InvalidInput("a revert undoes exactly one commit")


@dataclass(frozen=True)
class RollbackRequest:
    """One table of `branch` put back as it was at `to`; `properties` are added to the
    commit's (e.g. the run or DAG that rolled back)."""

    branch: str
    key: KeyLike
    to: str
    author: str | None = None
    message: str | None = None
    expected_head: str | None = None
    properties: Mapping[str, str] | None = None
