"""The one exception tree of spark-lakeversion.

Every entry point (Python, CLI, REST, SQL) maps onto these types, so callers catch by
meaning, not by where the error came from::

    LakeVersionError
    ├── InvalidInput                  bad request: nothing was written
    │   ├── InvalidName               a ref name breaks the naming rules
    │   ├── InvalidRefExpression      `ref~N`, `ref#time`, hash prefix... not parseable
    │   ├── InvalidKey                an empty or malformed table/namespace key
    │   ├── TooLarge                  over a documented limit (body, key, message...): 413
    │   └── LocationNotAllowed        a location outside the catalog's allowed roots
    ├── NotFound                      nothing was written
    │   ├── RefNotFound
    │   ├── CommitNotFound
    │   └── KeyNotFound               table or namespace absent at that ref
    ├── AlreadyExists                 ref or key exists already
    ├── ReadOnlyRef                   a write addressed a tag, commit or time-travel ref
    ├── Forbidden                     the principal lacks the permission on that ref: 403
    ├── ProtectedBranch               a direct write to a protected branch: write to a
    │                                 branch and merge it (403)
    ├── ChecksFailed                  a merge gate's check failed; `.reports` (412)
    ├── UnsafeOperation               would delete files other refs share: use `lakeversion gc`
    ├── HistoryCollected              a commit older than gc's retained history: its files
    │                                 may be gone, so it cannot be restored or merged
    ├── ConflictError                 the change cannot apply: caller must look, not retry
    │   ├── ReferenceConflict         the ref moved under us (compare-and-swap lost): retry
    │   ├── GcEpochChanged            gc began a run while the commit was being checked
    │   └── UnmergedBranch            deleting the branch would lose commits: `force`
    ├── CommitOutcomeUnknown          the commit may or may not have landed: re-read first
    └── ServerError                   the server answered, but with something unexpected

Retryable (`ReferenceConflict`) and outcome-unknown errors are deliberately apart:
retrying an unknown outcome blindly can apply a change twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spark_lakeversion.model import Conflict, MergeResult


class LakeVersionError(Exception):
    """Root of every error this package raises on purpose."""

    #: stable machine-readable name, used by the CLI's JSON output and the REST API
    code: str = "LAKEVERSION_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "code": self.code, "message": self.message}


class InvalidInput(LakeVersionError):
    code = "INVALID_INPUT"


class InvalidName(InvalidInput):
    code = "INVALID_NAME"


class InvalidRefExpression(InvalidInput):
    code = "INVALID_REF_EXPRESSION"


class InvalidKey(InvalidInput):
    code = "INVALID_KEY"


class TooLarge(InvalidInput):
    """A request or value over one of the limits in `spark_lakeversion.limits`."""

    code = "TOO_LARGE"


class LocationNotAllowed(InvalidInput):
    """A location a client gave lies outside the roots the server writes under."""

    code = "LOCATION_NOT_ALLOWED"


class NotFound(LakeVersionError):
    code = "NOT_FOUND"


class RefNotFound(NotFound):
    """`missing`: the ref name that was not found (when one was), so a layer that knows
    who asks can choose the "did you mean" hint anew (`versioning.suggest`)."""

    code = "REF_NOT_FOUND"

    def __init__(self, message: str, missing: str | None = None,
                 unhinted: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing
        self.unhinted = unhinted if unhinted is not None else message


class CommitNotFound(NotFound):
    code = "COMMIT_NOT_FOUND"


class KeyNotFound(NotFound):
    code = "KEY_NOT_FOUND"


class AlreadyExists(LakeVersionError):
    code = "ALREADY_EXISTS"


class ReadOnlyRef(LakeVersionError):
    code = "READ_ONLY_REF"


class Forbidden(LakeVersionError):
    """The authenticated principal may not do this on that ref (grants: `spark_lakeversion.auth`).

    The message always starts with `FORBIDDEN_PREFIX` and names the principal, the
    permission and the ref, never a token; nothing was written."""

    code = "FORBIDDEN"


#: how every `Forbidden` message starts (Iceberg's error model has no code: clients of
#: `/iceberg` that see a 403 tell it from `ReadOnlyRef` by this wording)
FORBIDDEN_PREFIX = "access denied: "
class ProtectedBranch(LakeVersionError):
    """A direct write (commit, cherry-pick, reset, delete) to a protected branch, or a
    rollback there to a state never published on it (off its first-parent chain)."""

    code = "PROTECTED_BRANCH"


class ChecksFailed(LakeVersionError):
    """A gated merge was refused: at least one check failed on the merge preview.

    `reports` holds every check's report as a dict (name, status, violations, samples,
    duration_ms, message); `preview` is the commit the checks read (kept for debugging)."""

    code = "CHECKS_FAILED"

    def __init__(self, message: str, reports: list[dict[str, Any]] | None = None,
                 preview: str | None = None) -> None:
        super().__init__(message)
        self.reports: list[dict[str, Any]] = list(reports or [])
        self.preview = preview

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["reports"] = self.reports
        data["preview"] = self.preview
        return data


class UnsafeOperation(LakeVersionError):
    """Refused because it would delete files that other branches, tags or commits read."""

    code = "UNSAFE_OPERATION"


class HistoryCollected(LakeVersionError):
    """The commit is outside gc's retained history: files it reaches may be deleted."""

    code = "HISTORY_COLLECTED"


class ConflictError(LakeVersionError):
    """A change that cannot be applied as asked; `conflicts` says exactly why."""

    code = "CONFLICT"

    def __init__(
        self,
        message: str,
        conflicts: list[Conflict] | None = None,
        result: MergeResult | None = None,
    ) -> None:
        super().__init__(message)
        self.conflicts: list[Conflict] = list(conflicts or (result.conflicts if result else []))
        self.result = result

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["conflicts"] = [c.to_dict() for c in self.conflicts]
        return data


class ReferenceConflict(ConflictError):
    """The ref's head was not the expected one: re-read and retry."""

    code = "REFERENCE_CONFLICT"


class GcEpochChanged(ConflictError):
    """A commit checked in one gc epoch would land in another: refused, nothing written.
    (It keeps `ConflictError`'s code, so over HTTP it arrives as a plain `ConflictError`.)"""


class UnmergedBranch(ConflictError):
    """Deleting a branch whose commits no other branch or tag holds (git's ``-d`` refusal):
    the message says how many would be lost; ``force`` (CLI ``--force``, SQL ``FORCE``)
    deletes it anyway (git's ``-D``)."""

    code = "UNMERGED_BRANCH"


class CommitOutcomeUnknown(LakeVersionError):
    code = "COMMIT_OUTCOME_UNKNOWN"


class ServerError(LakeVersionError):
    code = "SERVER_ERROR"


#: every concrete error by its `code`, so a REST client can rebuild the right type
ERRORS_BY_CODE: dict[str, type[LakeVersionError]] = {
    cls.code: cls
    for cls in (
        LakeVersionError,
        InvalidInput,
        InvalidName,
        InvalidRefExpression,
        InvalidKey,
        TooLarge,
        LocationNotAllowed,
        NotFound,
        RefNotFound,
        CommitNotFound,
        KeyNotFound,
        AlreadyExists,
        ReadOnlyRef,
        Forbidden,
        ProtectedBranch,
        ChecksFailed,
        UnsafeOperation,
        HistoryCollected,
        ConflictError,
        ReferenceConflict,
        UnmergedBranch,
        CommitOutcomeUnknown,
        ServerError,
    )
}
