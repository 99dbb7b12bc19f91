"""Where an Iceberg REST request points: the URL prefix names a ref, and a first namespace
level written `db@REF` names any ref expression explicitly from any prefix.

`GET /v1/config?warehouse=REF` hands the client a prefix naming that ref (no warehouse:
`main`); prefixes that are not plain names are base64-encoded behind `~`, because ref
expressions may hold `/`, `~`, `#` and `:`. Branches are read-write; tags, commits and
time-travel expressions are read-only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from spark_lakeversion.errors import InvalidInput, NotFound, ReadOnlyRef
from spark_lakeversion.formats.iceberg.catalog.errors import (
    bad_request,
    no_such_namespace,
    no_such_table,
)
from spark_lakeversion.locations import safe_segment
from spark_lakeversion.model import Key, ResolvedRef
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH, VersionStore

NAMESPACE_SEPARATOR = "\x1f"
REF_MARK = "@"
_ENCODED_MARK = "~"
_PLAIN_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def encode_prefix(expression: str) -> str:
    """A URL-path-safe prefix for a ref expression (which may hold `/`, `~`, `#`, `:`)."""
    if expression and set(expression) <= _PLAIN_PREFIX_CHARS:
        return expression
    raw = base64.urlsafe_b64encode(expression.encode()).decode().rstrip("=")
    return _ENCODED_MARK + raw


def decode_prefix(prefix: str) -> str:
    if not prefix.startswith(_ENCODED_MARK):
        return prefix
    raw = prefix[len(_ENCODED_MARK):]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request(f"URL prefix {prefix!r} is not a ref prefix from /v1/config") from None


@dataclass(frozen=True)
class Address:
    """Where a request points: a resolved ref and the namespace elements inside it."""

    resolved: ResolvedRef
    namespace: tuple[str, ...]  # as stored (without `@ref`)
    echo: tuple[str, ...]  # as the client wrote it, to hand identifiers back

    def key(self, name: str | None = None) -> Key:
        try:
            return Key(self.namespace + ((name,) if name is not None else ()))
        except InvalidInput as exc:
            raise bad_request(exc.message) from None

    def new_key(self, name: str | None = None) -> Key:
        """The key of a table or namespace about to be created: every level must be a safe
        name (`locations.safe_segment`); reads stay lenient so old names remain readable."""
        try:
            for level in self.namespace:
                safe_segment(level, "namespace level")
            if name is not None:
                safe_segment(name, "table name")
        except InvalidInput as exc:
            raise bad_request(exc.message) from None
        return self.key(name)

    @property
    def commit_id(self) -> str:
        return self.resolved.commit_id

    def branch(self) -> str:
        """The branch to write to, or a 403 saying why this ref cannot be written."""
        if self.resolved.branch is None:
            raise ReadOnlyRef(
                f"{self.resolved.expression!r} is not a branch (tags, commits and time-travel "
                "expressions are read-only): write through a branch instead")
        return self.resolved.branch

    def at(self, resolved: ResolvedRef) -> Address:
        """The same namespace read at another resolved ref (one commit for a whole request)."""
        return Address(resolved, self.namespace, self.echo)


def split_namespace(value: str | Sequence[str]) -> tuple[str, ...]:
    parts = tuple(value.split(NAMESPACE_SEPARATOR)) if isinstance(value, str) else tuple(value)
    if not parts or any(not isinstance(p, str) or not p for p in parts):
        raise bad_request(f"invalid namespace {value!r}: levels must be non-empty strings")
    return parts


def resolve_address(store: VersionStore, prefix: str | None, namespace: Sequence[str], *,
                    table_op: bool = False) -> Address:
    """Resolve `prefix` and an optional `db@ref` first level into a ref and namespace."""
    expression = decode_prefix(prefix) if prefix else DEFAULT_BRANCH
    elements = tuple(namespace)
    if elements and REF_MARK in elements[0]:
        name, _, ref = elements[0].partition(REF_MARK)
        if not name or not ref:
            raise bad_request(f"namespace {elements[0]!r}: write `name@ref`, e.g. db@dev")
        expression = ref
        elements = (name, *elements[1:])
    try:
        resolved = store.resolve(expression)
    except NotFound as exc:
        # an unknown ref/commit in a prefix or `db@ref`: the table/namespace is not there
        raise (no_such_table if table_op else no_such_namespace)(exc.message) from None
    return Address(resolved, elements, tuple(namespace))
