"""spark-lakeversion: git for lakehouse tables, inside Spark.

``import spark_lakeversion as lv; catalog = lv.connect()`` gives lakeFS-style handles
(`Catalog`, `Branch`, `Tag`, `Reference`). Importing this package stays light: no
pyspark, fastapi or pyiceberg until a feature that needs them is used.
"""

from __future__ import annotations

from spark_lakeversion.api import Branch, Catalog, Reference, Tag, Transaction, connect
from spark_lakeversion.errors import (
    AlreadyExists,
    CommitNotFound,
    CommitOutcomeUnknown,
    ConflictError,
    InvalidInput,
    InvalidKey,
    InvalidName,
    InvalidRefExpression,
    KeyNotFound,
    LakeVersionError,
    NotFound,
    ReadOnlyRef,
    ReferenceConflict,
    RefNotFound,
    ServerError,
    TooLarge,
    UnsafeOperation,
)
from spark_lakeversion.model import (
    Commit,
    Conflict,
    ConflictType,
    Content,
    ContentType,
    Delete,
    DiffEntry,
    DiffKind,
    Key,
    MergeBehavior,
    MergeResult,
    Put,
    Ref,
    RefType,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "Branch",
    "Catalog",
    "Commit",
    "CommitNotFound",
    "CommitOutcomeUnknown",
    "Conflict",
    "ConflictError",
    "ConflictType",
    "Content",
    "ContentType",
    "Delete",
    "DiffEntry",
    "DiffKind",
    "InvalidInput",
    "InvalidKey",
    "InvalidName",
    "InvalidRefExpression",
    "Key",
    "KeyNotFound",
    "LakeVersionError",
    "MergeBehavior",
    "MergeResult",
    "NotFound",
    "Put",
    "ReadOnlyRef",
    "UnsafeOperation",
    "Ref",
    "RefNotFound",
    "RefType",
    "Reference",
    "ReferenceConflict",
    "ServerError",
    "Tag",
    "TooLarge",
    "Transaction",
    "__version__",
    "connect",
]
