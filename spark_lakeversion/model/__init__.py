"""The domain model: the values every layer shares, on the ground floor beside `errors.py`.

Keys, contents, refs, commits, diffs, merge results, and the records of gates, audit and
gc. Plain immutable values with their wire shapes (`to_dict`/`from_dict`): they import
nothing of this package but `spark_lakeversion.errors`, so every floor above (store,
versioning, formats, server, CLI) may use them. One module per idea; import from here.
"""

from spark_lakeversion.model.audit import MAX_AUDIT_RECORDS, AuditRecord, Outcome
from spark_lakeversion.model.codes import Code
from spark_lakeversion.model.commits import Commit
from spark_lakeversion.model.contents import Content, ContentType, Delete, Operation, Put
from spark_lakeversion.model.diff import DiffEntry, DiffKind
from spark_lakeversion.model.gates import CheckKind, CheckReport, CheckRun, CheckSpec, CheckStatus
from spark_lakeversion.model.gc import GcState
from spark_lakeversion.model.keys import KEY_SEPARATOR, Key, KeyLike
from spark_lakeversion.model.merges import (
    ROW_CONFLICT_KEYS_LISTED,
    ROW_MERGE,
    ROW_MERGE_STATS,
    STRATEGY_NAMES,
    Conflict,
    ConflictType,
    KeyMergeDetail,
    MergeAction,
    MergeBehavior,
    MergeResult,
)
from spark_lakeversion.model.plugins import FORMATS_ENTRY_POINT_GROUP
from spark_lakeversion.model.refs import Ref, ReflogEntry, RefType, ResolvedRef
from spark_lakeversion.model.reviews import Approval, MergeRequest, MrStatus

__all__ = [
    "FORMATS_ENTRY_POINT_GROUP",
    "KEY_SEPARATOR",
    "MAX_AUDIT_RECORDS",
    "ROW_CONFLICT_KEYS_LISTED",
    "ROW_MERGE",
    "ROW_MERGE_STATS",
    "STRATEGY_NAMES",
    "Approval",
    "AuditRecord",
    "CheckKind",
    "CheckReport",
    "CheckRun",
    "CheckSpec",
    "CheckStatus",
    "Code",
    "Commit",
    "Conflict",
    "ConflictType",
    "Content",
    "ContentType",
    "Delete",
    "DiffEntry",
    "DiffKind",
    "GcState",
    "Key",
    "KeyLike",
    "KeyMergeDetail",
    "MergeAction",
    "MergeBehavior",
    "MergeRequest",
    "MrStatus",
    "MergeResult",
    "Operation",
    "Outcome",
    "Put",
    "Ref",
    "RefType",
    "ReflogEntry",
    "ResolvedRef",
]
