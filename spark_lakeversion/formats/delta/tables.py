"""New and registered Delta tables: the one place their first content value is made, for
the Python handle and `/api/v1/delta/*` alike. The caller commits it (with the namespaces
`missing_namespaces` lists) and calls the cleanup if that commit fails."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.delta import deltalake, log, writes
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.locations import AllowedRoots, Location, table_location
from spark_lakeversion.model import Content, ContentType, Key, Put


def parse_schema(schema: Any) -> Any:
    """A pyarrow schema, a `deltalake.Schema`, or Delta's schema JSON (text or object)."""
    module = deltalake()
    if isinstance(schema, (str, dict)):
        text = schema if isinstance(schema, str) else json.dumps(schema)
        try:
            return module.Schema.from_json(text)
        except Exception as exc:  # noqa: BLE001 - deltalake raises several types here
            raise InvalidInput(f"not a Delta schema: {exc}") from None
    return schema


def new_table(warehouse: Location, key: Key, schema: Any, partition_by: Sequence[str] | None,
              configuration: Mapping[str, str] | None, branch: str
              ) -> tuple[Content, Callable[[], None]]:
    """Create an empty table at `<warehouse>/<namespace...>/<name>_<uuid>` owned by
    `branch`; its content and the cleanup that removes the directory again."""
    location = table_location(warehouse, key.namespace, key.name, uuid.uuid4().hex)
    table = writes.create(location.uri, parse_schema(schema), partition_by, configuration)
    log.check_protocol(log.protocol_action(table), location.uri)
    local = location.local_path

    def cleanup() -> None:  # the directory is new and random: this request made it
        if local:
            shutil.rmtree(local, ignore_errors=True)

    state = DeltaState(table.metadata().id, location.uri, 0, location.uri, branch)
    return state.content(), cleanup


def existing_table(key: Key, location: str, roots: AllowedRoots) -> Content:
    """An existing Delta table under the roots, at its latest version. Its log stays its
    own (no writer): the first write of any branch starts a branch log."""
    from spark_lakeversion.formats.delta.format import DeltaFormat

    where = roots.check(location, f"Delta table {key} location").uri
    table = log.open_table(where)
    state = DeltaState(table.metadata().id, where, table.version(), where, None)
    return DeltaFormat().validate(key, state.content(), roots, {})


def missing_namespaces(key: Key, present: Iterable[Key]) -> list[Put]:
    """Puts for the namespaces above `key` that do not exist yet."""
    have = set(present)
    return [Put(k, Content(ContentType.NAMESPACE, str(uuid.uuid4()), {"properties": {}}))
            for k in (Key(key.elements[:i]) for i in range(1, len(key.elements)))
            if k not in have]


def namespace_keys(key: Key) -> list[Key]:
    return [Key(key.elements[:i]) for i in range(1, len(key.elements))]
