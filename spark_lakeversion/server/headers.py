"""Commit metadata from request headers, shared by both APIs.

`X-Lakeversion-Author`, `X-Lakeversion-Message` and `X-Lakeversion-Properties` (a JSON
object) let a client say who and why; a Spark client may also send its application id and
name (`X-Lakeversion-Spark-App-Id`, `-Spark-App-Name`) via the catalog's `header.*` props.
"""

from __future__ import annotations

import json

from starlette.requests import Request

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg.catalog.meta import CommitMeta
from spark_lakeversion.limits import DEFAULT_LIMITS, Limits
from spark_lakeversion.server.boundary import parse_json

AUTHOR = "x-lakeversion-author"
MESSAGE = "x-lakeversion-message"
PROPERTIES = "x-lakeversion-properties"
_PROPERTY_HEADERS = {
    "x-lakeversion-spark-app-id": "spark.app.id",
    "x-lakeversion-spark-app-name": "spark.app.name",
}


def commit_meta(request: Request) -> CommitMeta:
    """Parse the metadata headers; a malformed properties header is a 400, not a guess."""
    headers = request.headers
    properties: dict[str, str] = {}
    raw = headers.get(PROPERTIES)
    if raw:
        ctx = getattr(request.app.state, "ctx", None)
        limits: Limits = ctx.limits if ctx is not None else DEFAULT_LIMITS
        parsed = parse_json(raw, "X-Lakeversion-Properties", limits.max_json_depth)
        if not isinstance(parsed, dict):
            raise InvalidInput("X-Lakeversion-Properties must be a JSON object")
        properties = {str(k): v if isinstance(v, str) else json.dumps(v)
                      for k, v in parsed.items()}
    for header, prop in _PROPERTY_HEADERS.items():
        value = headers.get(header)
        if value:
            properties.setdefault(prop, value)
    return CommitMeta(headers.get(AUTHOR) or None, headers.get(MESSAGE) or None, properties)
