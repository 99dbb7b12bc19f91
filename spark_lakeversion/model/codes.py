"""Open vocabularies of string codes: content types and conflict types.

A code is its wire string (a `str`: stored data and JSON bodies keep the spelling they
always had), interned, so ``content.type is NAMESPACE`` holds. The vocabulary is open: the
model registers only the codes the store itself speaks (namespaces; the key-level
conflicts), and each table format registers its own where it is defined, e.g.
``ICEBERG_TABLE = ContentType.register("ICEBERG_TABLE")`` in `formats/iceberg/codes.py`.
`tableformat.base.FORMATS` also registers what every format it loads declares, so a third-party
plugin adds a type without replacing a built-in one.

Parsing is strict, as the enums it replaces were: `ContentType("FOO")` of a code nobody
registered raises `ValueError` (the boundary answers 400). On the first miss the installed
formats' codes are loaded (`on_unknown`: `model.plugins`), so stored data reads the same
whichever module ran first.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import ClassVar, TypeVar

C = TypeVar("C", bound="Code")

#: a code: a letter, then letters, digits and underscores (Delta's conflicts are CamelCase)
CODE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class Code(str):
    """One registered code of an open vocabulary; each subclass keeps its own."""

    _registered: ClassVar[dict[str, Code]]
    #: called once, on the first code nobody registered: `model.plugins` loads the installed
    #: formats' codes here, so a format's codes exist before its data is read
    on_unknown: ClassVar[list[Callable[[], None]]] = []
    _lock: ClassVar[threading.RLock] = threading.RLock()  # registration
    _discovery: ClassVar[threading.RLock] = threading.RLock()  # never held while registering
    _discovered: ClassVar[bool] = False

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._registered = {}

    def __new__(cls: type[C], code: str) -> C:
        found = cls._registered.get(code) if isinstance(code, str) else None
        if found is None and isinstance(code, str) and cls._discover():
            found = cls._registered.get(code)
        if found is None:
            raise ValueError(f"{code!r} is not a valid {cls.__name__}")
        assert isinstance(found, cls)
        return found

    @classmethod
    def _discover(cls) -> bool:
        """Run the `on_unknown` loaders once; True when they ran now."""
        with Code._discovery:
            if Code._discovered or not Code.on_unknown:
                return False
            Code._discovered = True
            for load in list(Code.on_unknown):
                load()
            return True

    @classmethod
    def register(cls: type[C], code: str) -> C:
        """The code, registered (idempotent: registering a known code returns it)."""
        with Code._lock:
            found = cls._registered.get(code)
            if found is not None:
                assert isinstance(found, cls)
                return found
            if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
                raise ValueError(f"{code!r} is not a well-formed {cls.__name__} code")
            made = str.__new__(cls, code)
            cls._registered[code] = made
            return made

    @classmethod
    def registered(cls: type[C]) -> tuple[C, ...]:
        """Every code of this vocabulary registered so far, in registration order."""
        return tuple(c for c in cls._registered.values() if isinstance(c, cls))

    @property
    def value(self) -> str:
        """The wire string (what `.value` of the enums it replaces was)."""
        return str.__str__(self)

    @property
    def name(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str.__str__(self)!r})"

    def __reduce__(self) -> tuple[type[Code], tuple[str]]:
        return type(self), (str.__str__(self),)
