"""The auth config: principals with a token's SHA-256 and grants, read from TOML.

```toml
[[principal]]
name = "etl"
token_sha256 = "…"            # `lakeversion token new` prints this line
grants = [
  { refs = "etl-*", allow = ["read", "write", "create", "delete"] },
  { refs = "main",  allow = ["read", "merge"] },
]
```

Every problem is `InvalidInput` naming the principal and field, checked before the server
listens; no token is ever in the file, so it may be world-readable.
"""

from __future__ import annotations

import hmac
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_lakeversion.auth.grants import Grant, Permission, Principal
from spark_lakeversion.auth.tokens import check_token, token_sha256
from spark_lakeversion.errors import InvalidInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pyproject: tomli there)
    import tomli as tomllib

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
_REFS = re.compile(r"^[A-Za-z0-9/_.\-*?\[\]!]{1,128}$")
_PERMISSIONS = ", ".join(p.value for p in Permission)


@dataclass(frozen=True)
class AuthConfig:
    """Principals by the SHA-256 of their token."""

    by_hash: Mapping[str, Principal]
    _hashes: tuple[tuple[bytes, Principal], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hashes",
                           tuple((h.encode(), p) for h, p in self.by_hash.items()))

    @classmethod
    def single(cls, token: str, source: str = "--token") -> AuthConfig:
        """`--token`: one all-powerful principal named `token`."""
        check_token(token, source)
        return cls({token_sha256(token): Principal("token", unrestricted=True)})

    @property
    def principals(self) -> list[Principal]:
        return list(self.by_hash.values())

    def authenticate(self, token: str) -> Principal | None:
        """The principal holding `token`, None for an unknown one: the token's SHA-256 is
        compared with every known one in constant time, without stopping at a match."""
        digest = token_sha256(token).encode()
        found: Principal | None = None
        for known, principal in self._hashes:
            if hmac.compare_digest(known, digest):
                found = principal
        return found


def _fail(path: str, where: str, problem: str) -> InvalidInput:
    return InvalidInput(f"auth config {path}: {where}: {problem}")


def _grant(path: str, who: str, i: int, raw: Any) -> Grant:
    where = f"principal {who!r}, grant {i + 1}"
    if not isinstance(raw, dict):
        raise _fail(path, where, "must be a table { refs = \"...\", allow = [...] }")
    extra = set(raw) - {"refs", "allow"}
    if extra:
        raise _fail(path, where, f"unknown field(s) {', '.join(sorted(extra))}")
    refs, allow = raw.get("refs"), raw.get("allow")
    if not isinstance(refs, str) or not _REFS.match(refs):
        raise _fail(path, where, "refs must be a glob over ref names such as \"etl-*\"")
    if not isinstance(allow, list) or not allow:
        raise _fail(path, where, f"allow must be a non-empty list of: {_PERMISSIONS}")
    permissions: set[Permission] = set()
    for value in allow:
        try:
            permissions.add(Permission(value))
        except ValueError:
            raise _fail(path, where, f"unknown permission {str(value)[:32]!r} (one of: "
                        f"{_PERMISSIONS})") from None
    return Grant(refs, frozenset(permissions))


def parse_auth_config(data: Mapping[str, Any], path: str = "<config>") -> AuthConfig:
    extra = set(data) - {"principal"}
    if extra:
        raise _fail(path, "top level", f"unknown key(s) {', '.join(sorted(extra))} "
                    "(only [[principal]] tables)")
    raw_principals = data.get("principal")
    if not isinstance(raw_principals, list) or not raw_principals:
        raise _fail(path, "top level", "no [[principal]] table")
    by_hash: dict[str, Principal] = {}
    names: set[str] = set()
    for raw in raw_principals:
        if not isinstance(raw, dict):
            raise _fail(path, "[[principal]]", "must be a table")
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _fail(path, f"principal {str(name)[:64]!r}", "name must be 1-64 letters, "
                        "digits or _.@- (starting with a letter or digit)")
        if name in names:
            raise _fail(path, f"principal {name!r}", "defined twice")
        names.add(name)
        extra = set(raw) - {"name", "token_sha256", "grants"}
        if extra:
            raise _fail(path, f"principal {name!r}", f"unknown field(s) {', '.join(sorted(extra))}"
                        " (a token never goes in this file: give token_sha256)")
        digest = raw.get("token_sha256")
        if not isinstance(digest, str) or not _SHA256.match(digest.lower()):
            raise _fail(path, f"principal {name!r}", "token_sha256 must be 64 hex digits "
                        "(`lakeversion token new` prints it)")
        digest = digest.lower()
        if digest in by_hash:
            raise _fail(path, f"principal {name!r}",
                        f"has the same token as {by_hash[digest].name!r}")
        grants = raw.get("grants", [])
        if not isinstance(grants, list):
            raise _fail(path, f"principal {name!r}", "grants must be a list")
        by_hash[digest] = Principal(name, tuple(_grant(path, name, i, g)
                                                for i, g in enumerate(grants)))
    return AuthConfig(by_hash)


def load_auth_config(path: str | Path) -> AuthConfig:
    """Read and check an auth config file (`InvalidInput` naming what is wrong)."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read auth config {shown}: {exc.strerror or exc}") from None
    except UnicodeError:
        raise InvalidInput(f"auth config {shown} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"auth config {shown} is not valid TOML: {exc}") from None
    return parse_auth_config(data, shown)
