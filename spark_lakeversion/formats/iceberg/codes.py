"""The codes Iceberg adds to the model's open vocabularies: its content types and the
conflicts of its content-aware merge (`merge/rules.py`). Registered on import; light (no
pyiceberg), so anything may import the constants."""

from __future__ import annotations

from spark_lakeversion.model import ConflictType, ContentType

ICEBERG_TABLE = ContentType.register("ICEBERG_TABLE")
ICEBERG_VIEW = ContentType.register("ICEBERG_VIEW")

SCHEMA_CONFLICT = ConflictType.register("SCHEMA_CONFLICT")
SPEC_CONFLICT = ConflictType.register("SPEC_CONFLICT")
CONCURRENT_REWRITE = ConflictType.register("CONCURRENT_REWRITE")
CONCURRENT_DELETE = ConflictType.register("CONCURRENT_DELETE")
CONCURRENT_APPEND_IN_READ_PARTITION = ConflictType.register(
    "CONCURRENT_APPEND_IN_READ_PARTITION")
EQUALITY_DELETE_CONFLICT = ConflictType.register("EQUALITY_DELETE_CONFLICT")
PROPERTY_CONFLICT = ConflictType.register("PROPERTY_CONFLICT")

#: rows both sides changed differently (the model's code: the row-level merge of
#: `merge/rows.py` meets it when files both sides rewrote go down to rows)
ROW_CONFLICT = ConflictType.ROW_CONFLICT

#: every conflict code of Iceberg's merge (`IcebergFormat.conflict_types`)
ICEBERG_CONFLICTS = (SCHEMA_CONFLICT, SPEC_CONFLICT, CONCURRENT_REWRITE, CONCURRENT_DELETE,
                     CONCURRENT_APPEND_IN_READ_PARTITION, EQUALITY_DELETE_CONFLICT,
                     PROPERTY_CONFLICT, ROW_CONFLICT)
