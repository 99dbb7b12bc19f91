"""The catalog's answers as HTTP bodies: LoadTableResult is serialised by pyiceberg itself
(exactly the metadata-file JSON), stored text that is not valid UTF-8 goes out escaped."""

from __future__ import annotations

import json

from starlette.responses import Response

from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg.catalog.tables import LoadedTable
from spark_lakeversion.formats.iceberg.catalog.views import LoadedView
from spark_lakeversion.server.iceberg.vending import NO_ACCESS, StorageAccess


def json_response(payload: str, status: int = 200) -> Response:
    # a lone surrogate stored by an older version goes out as its JSON escape
    return Response(payload.encode("utf-8", "backslashreplace"), status_code=status,
                    media_type="application/json")


def table_response(table: LoadedTable, storage: StorageAccess = NO_ACCESS) -> Response:
    """The spec's LoadTableResult; `storage` (vended credentials) only when asked for."""
    location = json.dumps(table.metadata_location) if table.metadata_location else "null"
    vended = f',"storage-credentials":{json.dumps(storage.credentials)}' \
        if storage.credentials else ""
    return json_response(
        f'{{"metadata-location":{location},"metadata":'
        f'{fmt.served_metadata_json(table.metadata, table.metadata_location)},'
        f'"config":{json.dumps(storage.config)}{vended}}}')


def view_response(view: LoadedView) -> Response:
    """The spec's LoadViewResult."""
    return json_response(
        f'{{"metadata-location":{json.dumps(view.metadata_location)},"metadata":'
        f'{view.metadata.model_dump_json()},"config":{{}}}}')
