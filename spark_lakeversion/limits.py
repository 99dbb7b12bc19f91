"""The limits on what a client can store, and the rule that stored text is valid Unicode.

One typed value, `Limits`, holds every limit; the README's "Limits" section lists them with
their `lakeversion serve` options. Every commit passes `check_commit` at the store's commit
entry, so the value limits hold on every surface (Python, CLI, REST, SQL); the server adds the
request-level ones (body, header, JSON nesting) at its input boundary.

Why limits at all: a key is copied into every tree node on its path and rewritten by every
later commit to a neighbouring key, so one oversized value costs far more than its own size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from spark_lakeversion.errors import InvalidInput, TooLarge
from spark_lakeversion.model import Content, ContentType, Key

KIB = 1024
MIB = 1024 * KIB


def _limit(default: int, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Limits:
    """Every limit; each field's help is its `lakeversion serve --max-...` option's help."""

    max_body_bytes: int = _limit(16 * MIB, "Largest request body, in bytes.")
    max_header_bytes: int = _limit(64 * KIB, "Largest request line plus headers, in bytes.")
    max_json_depth: int = _limit(128, "Deepest nesting of a JSON body or of the "
                                      "X-Lakeversion-Properties header, in levels.")
    max_key_bytes: int = _limit(1 * KIB, "Longest table or namespace key (all levels and "
                                         "separators), in UTF-8 bytes.")
    max_message_bytes: int = _limit(64 * KIB, "Longest commit message, in UTF-8 bytes.")
    max_property_key_bytes: int = _limit(1 * KIB, "Longest commit or namespace property key, "
                                                  "in UTF-8 bytes.")
    max_property_value_bytes: int = _limit(64 * KIB, "Longest commit or namespace property "
                                                     "value (and commit author), in UTF-8 "
                                                     "bytes.")
    max_content_bytes: int = _limit(1 * MIB, "Largest stored state of one table or namespace "
                                             "(its canonical JSON), in bytes.")
    max_operations: int = _limit(10_000, "Most operations (puts and deletes) in one commit.")
    max_row_merge_bytes: int = _limit(4096 * MIB, "Most row data (Arrow bytes of the changed "
                                                  "files' rows) one table's row-level merge "
                                                  "takes on in the server; past it the "
                                                  "file-level conflict stands (the row merge "
                                                  "has no Spark engine yet).")
    max_row_memory_bytes: int = _limit(512 * MIB, "Memory budget of row-level work (row "
                                                  "diffs, row merges, `changes.` checks): past "
                                                  "it DuckDB spills to a temporary directory, "
                                                  "in bytes.")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInput(f"limit {f.name} must be a positive integer, not {value!r}")

    @staticmethod
    def option(name: str) -> str:
        """The `lakeversion serve` option of a limit, named in error messages."""
        return "--" + name.replace("_", "-")


DEFAULT_LIMITS = Limits()


def _over(what: str, size: int, limit: int, name: str, unit: str = "bytes") -> TooLarge:
    return TooLarge(f"{what} is {size:,} {unit}, over the limit of {limit:,} {unit} "
                    f"(lakeversion serve {Limits.option(name)})")


def utf8_size(text: str, what: str) -> int:
    """Bytes of `text` as UTF-8; `InvalidInput` naming `what` if it is not valid Unicode."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode: lone surrogate "
                           f"{text[exc.start]!r} at position {exc.start}") from None


def check_text(text: object, what: str, limit: int, name: str) -> str:
    """A string that is valid Unicode and at most `limit` bytes."""
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be a string, not {type(text).__name__}")
    size = utf8_size(text, what)
    if size > limit:
        raise _over(what, size, limit, name)
    return text


def invalid_unicode_path(value: Any, path: str = "") -> str | None:
    """Where in a JSON value a string (or object key) holds a lone surrogate, if anywhere."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not _valid(item):
                return where or "root"
        elif isinstance(item, dict):
            for k, v in item.items():
                child = f"{where}.{k}" if where else str(k)
                if isinstance(k, str) and not _valid(k):
                    return (where + "." if where else "") + ascii(k)
                stack.append((v, child))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(item))
    return None


def _valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_key(key: Key, limits: Limits) -> None:
    for element in key.elements:
        utf8_size(element, f"key {ascii(str(key))}")
    size = len(key.stored.encode("utf-8"))
    if size > limits.max_key_bytes:
        raise _over(f"key {str(key)[:80]!r}...", size, limits.max_key_bytes, "max_key_bytes")


def check_properties(properties: Mapping[str, str], limits: Limits, what: str) -> None:
    for k, v in properties.items():
        check_text(k, f"{what} key {k[:80]!r}", limits.max_property_key_bytes,
                   "max_property_key_bytes")
        check_text(v, f"{what} {k[:80]!r}", limits.max_property_value_bytes,
                   "max_property_value_bytes")


def check_content(key: Key, content: Content, limits: Limits) -> None:
    """A stored state: valid Unicode throughout, namespace properties within their limits."""
    data = content.to_dict()
    where = invalid_unicode_path(data)
    if where is not None:
        raise InvalidInput(f"content of {ascii(str(key))}: {where} is not valid Unicode "
                           "(lone surrogate)")
    props = content.fields.get("properties")
    if content.type is ContentType.NAMESPACE and isinstance(props, Mapping):
        check_properties(props, limits, f"namespace {key} property")
    size = len(content.canonical().encode("utf-8"))
    if size > limits.max_content_bytes:
        raise _over(f"content of {key}", size, limits.max_content_bytes, "max_content_bytes")


def check_commit(limits: Limits, *, message: str | None, author: str | None,
                 properties: Mapping[str, str] | None,
                 changes: Mapping[Key, Content | None] | None = None) -> None:
    """Everything a commit stores from its caller, checked before anything is written."""
    if changes is not None:
        if len(changes) > limits.max_operations:
            raise _over("the commit", len(changes), limits.max_operations, "max_operations",
                        "operations")
        for key, content in changes.items():
            check_key(key, limits)
            if content is not None:
                check_content(key, content, limits)
    if message is not None:
        check_text(message, "the commit message", limits.max_message_bytes, "max_message_bytes")
    if author is not None:
        check_text(author, "the commit author", limits.max_property_value_bytes,
                   "max_property_value_bytes")
    if properties:
        check_properties(properties, limits, "commit property")


def iter_limits(limits: Limits) -> Iterator[tuple[str, int]]:
    """(name, value) of every limit, in declaration order (for the CLI and docs)."""
    for f in fields(limits):
        yield f.name, getattr(limits, f.name)
