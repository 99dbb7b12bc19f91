"""Protected branches: a protected branch takes no direct writes, only merges (which pass
its checks, `versioning.gates`). The rule is checked inside each write's own transaction,
so protecting a branch and writing to it cannot race.

Refused on a protected branch: table commits (both APIs, every client), cherry-pick, and
deletion unless forced (an admin action). A merge into it always makes a merge commit
(never a fast-forward), so each publication is one commit carrying its checks' summary.

**Published states.** A protected branch's published history is its *first-parent chain*:
the heads it had, one publication (merge commit or recovery) after another. A fast-forward
or a merge's second parent brings in commits no check saw; they are ancestors of the head,
but not on that chain (nor in the branch's reflog, which a state must be in too: a
fast-forward made before this rule, or before the branch was protected, put the source's
commits on the chain without the branch ever holding them). The instant recoveries
restore only published states, run no checks (the state was checked when it was
published) and are recorded with ``lakeversion.recovery``: a table rollback
(`rollback_table`) and a whole-branch rollback (a forced reset, an admin action). A revert
makes a new state, so it goes through the gates like a merge.

Protection does not depend on who asks: access control (grants) is a separate check
wrapped around the `VersionStore` methods (`protect_branch`, `unprotect_branch`,
`add_check`, `remove_check`, and forced `assign_ref`/`delete_ref`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from spark_lakeversion.errors import ProtectedBranch, ReadOnlyRef, RefNotFound
from spark_lakeversion.model import Commit, Ref, RefType
from spark_lakeversion.store.spi import Storage, StorageReader

if TYPE_CHECKING:
    from spark_lakeversion.versioning.objects import Objects

#: how every refusal reads ("branch 'x' is protected: ..."), for people: programs read the
#: error's code, `PROTECTED_BRANCH` (on `/iceberg` the message's code marker)
PROTECTED_WORDING = "is protected: "
#: commit property marking a rollback allowed on a protected branch (reflog operation of a
#: forced reset of one)
RECOVERY_PROPERTY = "lakeversion.recovery"
RECOVERY_RESET = "recovery reset"
#: why a merge into a protected branch made a merge commit (`MergeResult.no_ff_reason`)
NO_FF_REASON = ("{branch!r} is protected: a merge into it always makes a merge commit "
                "carrying its checks' summary (no fast-forward)")


def protected_error(branch: str, operation: str) -> ProtectedBranch:
    return ProtectedBranch(
        f"branch {branch!r} {PROTECTED_WORDING}{operation} is refused; write to a branch and "
        f"merge it into {branch!r} (merges pass its checks)")


def check_not_protected(reader: StorageReader, branch: str, operation: str) -> None:
    """`ProtectedBranch` when `branch` is protected (read in the caller's transaction)."""
    if branch in reader.protected_branches():
        raise protected_error(branch, operation)


def no_ff_reason(branch: str) -> str:
    return NO_FF_REASON.format(branch=branch)


def require_published(branch: str, head: str, restored: str, operation: str,
                      load: Callable[[str], tuple[Commit, int]],
                      held: Callable[[str], bool]) -> None:
    """`ProtectedBranch` unless `restored` is a state published on `branch`: on the
    first-parent chain of `head`, and once the branch's head (`held`: its reflog says so;
    this leaves out what a fast-forward passed over, and what the branch inherited from
    the one it was created from). Walks first parents only down to `restored`'s
    generation: a parent's generation is always below its child's."""
    floor = load(restored)[1]
    current = head
    while current != restored:
        commit, generation = load(current)
        if generation <= floor or not commit.parents:
            break
        current = commit.parents[0]
    if current != restored or not held(restored):
        raise ProtectedBranch(
            f"branch {branch!r} {PROTECTED_WORDING}{operation} may restore only a state "
            f"published on it: one of its past heads on {branch}'s first-parent history "
            f"({branch}, {branch}~1, {branch}~2, …; {branch}@{{N}} when it is one of them), "
            f"and {restored[:12]} is not; write to a branch and merge it into {branch!r} "
            "(merges pass its checks)")


def require_published_on(reader: StorageReader, objects: Objects, branch: str, head: str,
                         restored: str, operation: str) -> None:
    """`require_published` over a write transaction's reflog and the store's cached
    objects. `check_published` runs first, outside it, so the walk finds every commit in
    the cache: no commit read in the transaction needs a connection of its own (an
    in-memory SQLite database has only one)."""
    require_published(branch, head, restored, operation, objects.commit_and_generation,
                      lambda commit_id: reader.held_head(branch, commit_id))


def check_published(storage: Storage, objects: Objects, branch: str, head: str,
                    restored: str, operation: str) -> None:
    """`require_published_on` before the write, outside any transaction: it refuses early
    (before a format writes anything) and loads the commits the walk needs."""
    def held(commit_id: str) -> bool:
        with storage.reading() as reader:
            return reader.held_head(branch, commit_id)
    require_published(branch, head, restored, operation, objects.commit_and_generation, held)


class Protection:
    """Protecting and unprotecting branches (admin operations: an access-control layer
    wraps them). `get_ref` is the ref lookup (`Refs.get`), with its "did you mean"."""

    def __init__(self, storage: Storage, get_ref: Callable[[str], Ref]) -> None:
        self.storage = storage
        self.get_ref = get_ref

    def set_protected(self, name: str, on: bool) -> bool:
        ref = self.get_ref(name)
        if ref.type is not RefType.BRANCH:
            raise ReadOnlyRef(f"{name!r} is a tag: only branches are protected")
        with self.storage.writing() as tx:
            if tx.heads().get(name) is None:
                raise RefNotFound(f"no branch named {name!r}")
            return tx.set_protected(name, on)

    def branches(self) -> set[str]:
        with self.storage.reading() as reader:
            return reader.protected_branches()
