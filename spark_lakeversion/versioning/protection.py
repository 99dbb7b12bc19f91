"""Protected branches: a protected branch takes no direct writes, only merges (which pass
its checks, `versioning.gates`). The rule is checked inside each write's own transaction,
so protecting a branch and writing to it cannot race.

Refused on a protected branch: table commits (both APIs, every client), cherry-pick, reset
and deletion (unless forced: an admin action). Allowed: merges, and the two instant
recoveries, rollback and revert, when the state they restore was itself published on the
branch (an ancestor of its head); they are recorded with ``lakeversion.recovery``.

Protection does not depend on who asks: access control (grants) is a separate check
wrapped around the `VersionStore` methods (`protect_branch`, `unprotect_branch`,
`add_check`, `remove_check`, and forced `assign_ref`/`delete_ref`).
"""

from __future__ import annotations

from spark_lakeversion.errors import ProtectedBranch
from spark_lakeversion.store.spi import StorageReader

#: how every refusal reads ("branch 'x' is protected: ..."); Iceberg's error model has no
#: code, so a client seeing a 403 ForbiddenException tells protection apart by it
PROTECTED_WORDING = "is protected: "
#: commit property marking a rollback or revert allowed on a protected branch
RECOVERY_PROPERTY = "lakeversion.recovery"


def protected_error(branch: str, operation: str) -> ProtectedBranch:
    return ProtectedBranch(
        f"branch {branch!r} {PROTECTED_WORDING}{operation} is refused; write to a branch and "
        f"merge it into {branch!r} (merges pass its checks)")


def check_not_protected(reader: StorageReader, branch: str, operation: str) -> None:
    """`ProtectedBranch` when `branch` is protected (read in the caller's transaction)."""
    if branch in reader.protected_branches():
        raise protected_error(branch, operation)


def recovery_refused(branch: str, operation: str, restored: str) -> ProtectedBranch:
    return ProtectedBranch(
        f"branch {branch!r} {PROTECTED_WORDING}{operation} may only restore a state published "
        f"on it, and {restored[:12]} is not an ancestor of its head; write to a branch and "
        f"merge it into {branch!r}")
