"""Grants: which permissions a principal holds on the refs whose names match a glob.

A grant's `refs` is a glob over branch and tag names (`*` any run of characters, `/`
included; `?` one character; `[abc]` a set), matched against the whole name. Permissions:

- `read`: tables, log, diff and history at that ref;
- `write`: table commits, rollbacks, cherry-picks, reverts and resets on that branch;
- `create`, `delete`: refs with matching names;
- `merge`: merges into that branch;
- `admin`: every permission on matching refs. With `refs = "*"` it also allows the
  store-wide operations: gc, the audit trail, the reflog and table-state listing.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import translate


class Permission(str, enum.Enum):
    READ = "read"
    WRITE = "write"
    CREATE = "create"
    DELETE = "delete"
    MERGE = "merge"
    ADMIN = "admin"


#: the glob that makes a grant store-wide
EVERY_REF = "*"


@dataclass(frozen=True)
class Grant:
    refs: str
    allow: frozenset[Permission]
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(translate(self.refs)))

    def matches(self, ref: str) -> bool:
        return self.refs == EVERY_REF or self._pattern.match(ref) is not None

    def gives(self, permission: Permission) -> bool:
        return permission in self.allow or Permission.ADMIN in self.allow


@dataclass(frozen=True)
class Principal:
    """Someone the server knows; `unrestricted` for `--token` (the single all-powerful
    principal) and for a server without authentication."""

    name: str
    grants: tuple[Grant, ...] = ()
    unrestricted: bool = False

    def may(self, permission: Permission, ref: str) -> bool:
        """Whether a grant matching `ref` gives `permission` (or `admin`)."""
        if self.unrestricted:
            return True
        return any(g.gives(permission) and g.matches(ref) for g in self.grants)

    def may_everywhere(self, permission: Permission) -> bool:
        """Whether a grant over every ref (`refs = "*"`) gives `permission` (or `admin`):
        what store-wide operations and reads by commit id without a ref need."""
        if self.unrestricted:
            return True
        return any(g.refs == EVERY_REF and g.gives(permission) for g in self.grants)

    def readable(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if self.may(Permission.READ, n)]


#: the principal of a server without authentication (loopback only)
ANONYMOUS = Principal("anonymous", unrestricted=True)
