"""Keys: the names of tables, views and namespaces in the store's ordered key space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from spark_lakeversion.errors import InvalidKey

#: separator of key elements inside the store's ordered key space; sorts before every
#: printable character so that `db` < `db/x` children < `db_other`
KEY_SEPARATOR = "\x00"


@dataclass(frozen=True, order=True)
class Key:
    """A table or namespace name: one or more elements, e.g. ``("db", "orders")``."""

    elements: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.elements:
            raise InvalidKey("a key needs at least one element")
        for element in self.elements:
            if not isinstance(element, str) or not element:
                raise InvalidKey(f"key elements must be non-empty strings: {self.elements!r}")
            if KEY_SEPARATOR in element or any(ord(c) < 0x20 for c in element):
                raise InvalidKey(f"key element {element!r} contains a control character")

    @classmethod
    def of(cls, value: KeyLike) -> Key:
        """Accept a Key, a dotted string ``"db.tbl"`` or a sequence of elements."""
        if isinstance(value, Key):
            return value
        if isinstance(value, str):
            return cls(tuple(value.split(".")))
        return cls(tuple(value))

    @classmethod
    def from_stored(cls, stored: str) -> Key:
        return cls(tuple(stored.split(KEY_SEPARATOR)))

    @property
    def stored(self) -> str:
        """The key's position in the store's ordered key space."""
        return KEY_SEPARATOR.join(self.elements)

    @property
    def name(self) -> str:
        return self.elements[-1]

    @property
    def namespace(self) -> tuple[str, ...]:
        return self.elements[:-1]

    @property
    def parent(self) -> Key | None:
        return Key(self.elements[:-1]) if len(self.elements) > 1 else None

    def __str__(self) -> str:
        return ".".join(self.elements)


KeyLike = Union[Key, str, tuple[str, ...], list[str]]
