""""Did you mean": the closest existing name for a misspelled ref or table (difflib).

The one place those hints are made. A ref's hint is built where `RefNotFound` is raised
(`refs.py`) from every ref; `AccessControlledStore` rebuilds it from the refs the principal
may read (`RefNotFound.missing` keeps the name), so a hint never names a ref the caller
cannot see. A table's hint comes from the tables of the same namespace at the ref it was
looked up at (the caller read that ref already).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from spark_lakeversion.errors import KeyNotFound, RefNotFound
from spark_lakeversion.model import Key

if TYPE_CHECKING:
    from spark_lakeversion.versioning.interface import VersionStore

#: how alike (difflib's ratio) a name must be to be suggested
CUTOFF = 0.6


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The most similar candidate other than `name` itself, if any is similar enough."""
    pool = sorted({c for c in candidates if c != name})
    found = difflib.get_close_matches(name, pool, n=1, cutoff=CUTOFF)
    return found[0] if found else None


def hint(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'dev'?)`` or nothing."""
    match = closest(name, candidates)
    return f" (did you mean {match!r}?)" if match is not None else ""


def ref_not_found(message: str, missing: str, names: Iterable[str]) -> RefNotFound:
    """`RefNotFound` for the ref `missing`, hinting at the closest of `names`."""
    return RefNotFound(message + hint(missing, names), missing=missing, unhinted=message)


def rehint(error: RefNotFound, names: Iterable[str]) -> RefNotFound:
    """The same error with its hint chosen from `names` only (a principal's readable refs)."""
    if error.missing is None:
        return error
    return ref_not_found(error.unhinted, error.missing, names)


def table_hint(key: Key, keys: Iterable[Key]) -> str:
    """A hint for the missing table `key` among `keys` of its namespace."""
    return hint(str(key), (str(k) for k in keys))


def key_not_found(store: VersionStore, ref: str, key: Key, message: str) -> KeyNotFound:
    """`KeyNotFound` for `key` at `ref`, hinting at the closest key of its namespace (any
    content type: Python reads tables of every format)."""
    parent = Key(key.namespace) if key.namespace else None
    keys = [k for k, _ in store.list_keys(ref, parent) if k.namespace == key.namespace]
    return KeyNotFound(message + table_hint(key, keys))


__all__ = ["CUTOFF", "closest", "hint", "key_not_found", "ref_not_found", "rehint",
           "table_hint"]
