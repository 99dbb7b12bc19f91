"""Our typed errors rebuilt from their JSON form (the `/api/v1` error body, which the Java
shim also carries), in one place for the REST client and the py4j boundary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spark_lakeversion.errors import ERRORS_BY_CODE, ChecksFailed, ConflictError, LakeVersionError
from spark_lakeversion.model import Conflict, MergeResult


def error_from_json(code: str, message: str, error: Mapping[str, Any] | None,
                    default: type[LakeVersionError] = LakeVersionError) -> LakeVersionError:
    """The error of `code` (`default` for a code we do not know); a conflict keeps the
    conflicts and merge result of `error` (the body's ``error`` object) it can read."""
    cls = ERRORS_BY_CODE.get(code, default)
    if issubclass(cls, ChecksFailed):
        reports = (error or {}).get("reports")
        preview = (error or {}).get("preview")
        return cls(message, [r for r in reports if isinstance(r, dict)]
                   if isinstance(reports, list) else [],
                   preview if isinstance(preview, str) else None)
    if not issubclass(cls, ConflictError):
        return cls(message)
    conflicts = []
    for raw in (error or {}).get("conflicts") or []:
        try:
            conflicts.append(Conflict.from_dict(raw))
        except (KeyError, ValueError, TypeError, LakeVersionError):
            continue
    result = None
    if (error or {}).get("result"):
        try:
            result = MergeResult.from_dict(error["result"])  # type: ignore[index]
        except (KeyError, ValueError, TypeError, LakeVersionError):
            result = None
    return cls(message, conflicts, result)
