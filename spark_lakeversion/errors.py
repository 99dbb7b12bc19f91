"""The one exception tree of spark-lakeversion.

Every entry point (Python, CLI, REST, SQL) maps onto these types, so callers catch by
meaning, not by where the error came from::

    LakeVersionError
    ├── InvalidInput                  bad request: nothing was written
    │   ├── InvalidName               a ref name breaks the naming rules
    │   ├── InvalidRefExpression      `ref~N`, `ref#time`, hash prefix... not parseable
    │   ├── InvalidKey                an empty or malformed table/namespace key
    │   ├── TooLarge                  over a documented limit (body, key, message...): 413
    │   ├── LocationNotAllowed        a location outside the catalog's allowed roots
    │   ├── UnsupportedTableFeature   the table uses a feature this operation cannot read
    │   │                             (e.g. Delta deletion vectors in a row diff): refused
    │   └── Unauthorized              no or unknown bearer token: no principal (401)
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

ONE TABLE: each class carries how every surface shows it, as class attributes read by
the servers, the CLI and the Spark side (nobody classifies errors a second time):
`code` (the machine name in every JSON body and in the Java shim's ``[LAKEVERSION:<CODE>]``
marker), `http_status` (`/api/v1`), `exit_code` (the CLI), `iceberg_type` and
`iceberg_status` (`/iceberg`, Iceberg's REST error model). A subclass inherits its
parent's row and overrides only what differs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol


class _Coded(Protocol):
    @property
    def value(self) -> str: ...


class ConflictLike(Protocol):
    """What a `ConflictError` needs of one conflict (`model.Conflict` is one). Typed by its
    shape, since the model sits beside this module and imports it: errors import nothing."""

    @property
    def type(self) -> _Coded: ...

    @property
    def key(self) -> object: ...

    @property
    def message(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


class MergeOutcome(Protocol):
    """What a `ConflictError` needs of a refused merge's result (`model.MergeResult`)."""

    @property
    def conflicts(self) -> Sequence[ConflictLike]: ...

    def to_dict(self) -> dict[str, Any]: ...


class ExitCode(enum.IntEnum):
    """The `lakeversion` CLI's exit codes (README documents them; scripts rely on them)."""

    OK = 0
    INVALID = 1  # bad input, bad usage, already exists, write to a read-only ref
    NOT_FOUND = 2
    CONFLICT = 3
    FAILED = 4  # commit outcome unknown, server error, internal error
    CHECKS_FAILED = 5  # a merge gate refused the merge (gc: completed, some tables skipped)
    FORBIDDEN = 6  # the principal lacks a grant (nothing was written)


class LakeVersionError(Exception):
    """Root of every error this package raises on purpose."""

    #: stable machine-readable name, used by the CLI's JSON output and the REST API
    code: str = "LAKEVERSION_ERROR"
    #: the status `/api/v1` answers with
    http_status: ClassVar[int] = 500
    #: the CLI's exit code
    exit_code: ClassVar[ExitCode] = ExitCode.FAILED
    #: the Iceberg REST exception name and status `/iceberg` answers with
    iceberg_type: ClassVar[str] = "ServiceFailureException"
    iceberg_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "code": self.code, "message": self.message}


class InvalidInput(LakeVersionError):
    code = "INVALID_INPUT"
    http_status = 400
    exit_code = ExitCode.INVALID
    iceberg_type = "BadRequestException"
    iceberg_status = 400


class InvalidName(InvalidInput):
    code = "INVALID_NAME"


class InvalidRefExpression(InvalidInput):
    code = "INVALID_REF_EXPRESSION"


class InvalidKey(InvalidInput):
    code = "INVALID_KEY"


class TooLarge(InvalidInput):
    """A request or value over one of the limits in `spark_lakeversion.limits`."""

    code = "TOO_LARGE"
    http_status = 413
    iceberg_status = 413  # no Iceberg type of its own: a bad request, status 413


class LocationNotAllowed(InvalidInput):
    """A location a client gave lies outside the roots the server writes under."""

    code = "LOCATION_NOT_ALLOWED"


class UnsupportedTableFeature(InvalidInput):
    """The table uses a feature this operation cannot read correctly (the message names it):
    refused rather than answered with wrong rows."""

    code = "UNSUPPORTED_TABLE_FEATURE"


class Unauthorized(InvalidInput):
    """No principal: the request carried no bearer token, or one the server does not know.
    (A subclass of `InvalidInput`: the request as sent is wrong; the CLI exits 1.)"""

    code = "UNAUTHORIZED"
    http_status = 401
    iceberg_type = "NotAuthorizedException"
    iceberg_status = 401


class NotFound(LakeVersionError):
    code = "NOT_FOUND"
    http_status = 404
    exit_code = ExitCode.NOT_FOUND
    #: a namespace route answers ``NoSuchNamespaceException`` instead (`server/errors.py`);
    #: an unknown ref or commit in a prefix or ``db@ref``: the table is not there
    iceberg_type = "NoSuchTableException"
    iceberg_status = 404


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
    http_status = 409
    exit_code = ExitCode.INVALID
    iceberg_type = "AlreadyExistsException"
    iceberg_status = 409


class ReadOnlyRef(LakeVersionError):
    code = "READ_ONLY_REF"
    http_status = 403
    exit_code = ExitCode.INVALID
    iceberg_type = "ForbiddenException"
    iceberg_status = 403


class Forbidden(LakeVersionError):
    """The authenticated principal may not do this on that ref (grants: `spark_lakeversion.auth`).

    The message always starts with `FORBIDDEN_PREFIX` and names the principal, the
    permission and the ref, never a token; nothing was written."""

    code = "FORBIDDEN"
    http_status = 403
    exit_code = ExitCode.FORBIDDEN
    iceberg_type = "ForbiddenException"
    iceberg_status = 403


#: how every `Forbidden` message starts, for people: programs read the error's `code`
FORBIDDEN_PREFIX = "access denied: "


class ProtectedBranch(LakeVersionError):
    """A direct write (commit, cherry-pick, reset, delete) to a protected branch, or a
    rollback there to a state never published on it (off its first-parent chain)."""

    code = "PROTECTED_BRANCH"
    http_status = 403
    exit_code = ExitCode.INVALID
    iceberg_type = "ForbiddenException"
    iceberg_status = 403


class ChecksFailed(LakeVersionError):
    """A gated merge was refused: at least one check failed on the merge preview.

    `reports` holds every check's report as a dict (name, status, violations, samples,
    duration_ms, message); `preview` is the commit the checks read (kept for debugging)."""

    code = "CHECKS_FAILED"
    http_status = 412
    exit_code = ExitCode.CHECKS_FAILED
    # never a 5xx: a gate refused a change, which Iceberg clients know as a failed commit
    iceberg_type = "CommitFailedException"
    iceberg_status = 409

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
    http_status = 403
    exit_code = ExitCode.INVALID
    iceberg_type = "ForbiddenException"
    iceberg_status = 403


class HistoryCollected(LakeVersionError):
    """The commit is outside gc's retained history: files it reaches may be deleted."""

    code = "HISTORY_COLLECTED"
    http_status = 409
    exit_code = ExitCode.CONFLICT
    # a ref expression reaching past gc's retained history: the request cannot be served
    iceberg_type = "BadRequestException"
    iceberg_status = 400


class ConflictError(LakeVersionError):
    """A change that cannot be applied as asked; `conflicts` says exactly why."""

    code = "CONFLICT"
    http_status = 409
    exit_code = ExitCode.CONFLICT
    iceberg_type = "CommitFailedException"
    iceberg_status = 409

    def __init__(
        self,
        message: str,
        conflicts: Sequence[ConflictLike] | None = None,
        result: MergeOutcome | None = None,
    ) -> None:
        super().__init__(message)
        self.conflicts: list[ConflictLike] = list(
            conflicts or (result.conflicts if result else []))
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
    A code of its own, so a client over HTTP knows it too: an append's rebase must not
    retry it as if only the ref had moved."""

    code = "GC_EPOCH_CHANGED"


class UnmergedBranch(ConflictError):
    """Deleting a branch whose commits no other branch or tag holds (git's ``-d`` refusal):
    the message says how many would be lost; ``force`` (CLI ``--force``, SQL ``FORCE``)
    deletes it anyway (git's ``-D``)."""

    code = "UNMERGED_BRANCH"


class CommitOutcomeUnknown(LakeVersionError):
    code = "COMMIT_OUTCOME_UNKNOWN"
    http_status = 503
    iceberg_type = "CommitStateUnknownException"
    iceberg_status = 503


class ServerError(LakeVersionError):
    code = "SERVER_ERROR"
    http_status = 502
    iceberg_type = "ServiceUnavailableException"  # an upstream answered badly
    iceberg_status = 502


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
        UnsupportedTableFeature,
        Unauthorized,
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
        GcEpochChanged,
        UnmergedBranch,
        CommitOutcomeUnknown,
        ServerError,
    )
}


#: where a message that travels without its JSON body carries its error's code: first in
#: the Java shim's `LakeVersionException` and in every `/iceberg` error message (Iceberg's
#: error model has no field for it, and its clients keep only the message)
CODE_MARKER = re.compile(r"\[LAKEVERSION:([A-Z_]+)\] ?(.*)", re.DOTALL)


def marked_message(error: LakeVersionError) -> str:
    """The error's message behind its code marker: ``[LAKEVERSION:PROTECTED_BRANCH] ...``."""
    return f"[LAKEVERSION:{error.code}] {error.message}"
