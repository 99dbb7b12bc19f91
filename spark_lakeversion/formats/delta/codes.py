"""The codes Delta adds to the model's open vocabularies: its content type and the
conflicts of its merge (`merge.py`), named after Delta's own exceptions (the wire strings
stored data already holds). Registered on import; light (no deltalake)."""

from __future__ import annotations

from spark_lakeversion.model import ConflictType, ContentType

DELTA_TABLE = ContentType.register("DELTA_TABLE")

DELTA_CONCURRENT_APPEND = ConflictType.register("ConcurrentAppend")
DELTA_CONCURRENT_DELETE_READ = ConflictType.register("ConcurrentDeleteRead")
DELTA_CONCURRENT_DELETE_DELETE = ConflictType.register("ConcurrentDeleteDelete")
DELTA_METADATA_CHANGED = ConflictType.register("MetadataChanged")
DELTA_PROTOCOL_CHANGED = ConflictType.register("ProtocolChanged")

#: rows both sides changed differently (the model's code, met by the row-level merge when
#: files both sides removed go down to rows)
ROW_CONFLICT = ConflictType.ROW_CONFLICT

#: every conflict code of Delta's merge (`DeltaFormat.conflict_types`)
DELTA_CONFLICTS = (DELTA_CONCURRENT_APPEND, DELTA_CONCURRENT_DELETE_READ,
                   DELTA_CONCURRENT_DELETE_DELETE, DELTA_METADATA_CHANGED,
                   DELTA_PROTOCOL_CHANGED, ROW_CONFLICT)
