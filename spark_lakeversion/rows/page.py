"""One page of a row diff, and its two wire forms: JSON rows (REST, CLI, the Java shim) and
an Arrow IPC stream (the Python client over HTTP, which keeps the table's types).

A page token pins the two commits the first page read, so later pages are of the same
diff; it is opaque to clients (base64 of a small JSON object) and checked on the way in.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from spark_lakeversion.errors import InvalidInput

#: the media type of the Arrow IPC stream form
ARROW_STREAM = "application/vnd.apache.arrow.stream"


@dataclass(frozen=True)
class PageToken:
    """Where the next page starts, in the diff of which two commits."""

    from_commit: str
    to_commit: str
    offset: int

    def encode(self) -> str:
        raw = json.dumps({"f": self.from_commit, "t": self.to_commit, "o": self.offset},
                         separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageToken:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            token_ = cls(str(data["f"]), str(data["t"]), int(data["o"]))
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise InvalidInput("page_token is not one a row diff gave") from None
        if not 0 <= token_.offset < 2**62:
            raise InvalidInput("page_token is not one a row diff gave")
        return token_


@dataclass(frozen=True)
class RowDiffPage:
    """Rows of a diff (or its summary), how many the whole diff has, the token of the next
    page (None: last), and the reader's figures (files read, skipped...)."""

    rows: pa.Table
    total: int
    next_page_token: str | None = None
    statistics: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [{"name": f.name, "type": str(f.type)} for f in self.rows.schema],
                "rows": json_rows(self.rows), "total": self.total,
                "next_page_token": self.next_page_token,
                "statistics": dict(self.statistics)}

    def to_ipc(self) -> bytes:
        sink = pa.BufferOutputStream()
        schema = self.rows.schema.with_metadata({
            **(self.rows.schema.metadata or {}),
            b"lakeversion.total": str(self.total).encode(),
            b"lakeversion.next_page_token": (self.next_page_token or "").encode(),
            b"lakeversion.statistics": json.dumps(dict(self.statistics)).encode()})
        with pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(self.rows.cast(schema))
        return bytes(sink.getvalue().to_pybytes())

    @classmethod
    def from_ipc(cls, data: bytes) -> RowDiffPage:
        table = pa.ipc.open_stream(data).read_all()
        meta = dict(table.schema.metadata or {})
        total = int(meta.pop(b"lakeversion.total", b"0"))
        token = meta.pop(b"lakeversion.next_page_token", b"").decode() or None
        stats = json.loads(meta.pop(b"lakeversion.statistics", b"{}"))
        return cls(table.replace_schema_metadata(meta or None), total, token, stats)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The table's rows as JSON-safe objects (dates ISO-8601, decimals and NaN as strings,
    bytes base64)."""
    return [{k: _jsonable(v) for k, v in row.items()} for row in table.to_pylist()]


__all__ = ["ARROW_STREAM", "PageToken", "RowDiffPage", "json_rows"]
