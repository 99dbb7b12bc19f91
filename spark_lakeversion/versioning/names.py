"""Ref names and ref expressions: the git-like rules, checked once, here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from spark_lakeversion.errors import InvalidInput, InvalidName, InvalidRefExpression
from spark_lakeversion.model import Commit

_ALLOWED = re.compile(r"^[A-Za-z0-9/_.\-]+$")
_HEX = re.compile(r"^[0-9a-f]+$")
MIN_HASH_PREFIX = 8
FULL_HASH_LENGTH = 40
RESERVED_NAMES = frozenset({"HEAD"})
#: the largest N of `ref~N`: far past any real history, small enough to parse safely
MAX_ANCESTORS = 1_000_000
_DIGITS = re.compile(r"^[0-9]{1,16}$")
#: `base@{N}` then what may follow it (`~N`); checked piece by piece below
_REFLOG = re.compile(r"(?P<base>[^@]*)@\{(?P<n>[^{}@]*)\}(?P<tail>[^@]*)", re.DOTALL)


def validate_ref_name(name: object) -> str:
    """Return `name` if it is a legal branch/tag name, else raise `InvalidName` saying why."""
    if not isinstance(name, str):
        raise InvalidName(f"a ref name must be a string, not {type(name).__name__}")
    problem = _name_problem(name)
    if problem:
        raise InvalidName(f"invalid ref name {name!r}: {problem}")
    return name


def _name_problem(name: str) -> str | None:
    if not 1 <= len(name) <= 128:
        return "length must be 1-128 characters"
    if name in RESERVED_NAMES:
        return f"{name} is reserved"
    if not _ALLOWED.match(name):
        bad = sorted({c for c in name if not re.match(r"[A-Za-z0-9/_.\-]", c)})
        return f"characters {''.join(bad)!r} are not allowed (use A-Z a-z 0-9 / _ - .)"
    if ".." in name:
        return "'..' is not allowed"
    if name[0] in "/." or name[-1] in "/.":
        return "must not start or end with '/' or '.'"
    if name.startswith("-"):
        return "must not start with '-'"
    if "//" in name:
        return "empty path component '//'"
    if len(name) == FULL_HASH_LENGTH and _HEX.match(name):
        return "a full commit id cannot name a ref (it would be ambiguous)"
    return None


def is_commit_hash(text: str) -> bool:
    return len(text) >= MIN_HASH_PREFIX and bool(_HEX.match(text))


@dataclass(frozen=True)
class RefExpression:
    """A parsed ref expression: `base`, optionally `@{N}` (the N-th previous head of the ref
    `base`, from its reflog, as in git), then optionally `~N` ancestors or `#timestamp`."""

    text: str
    base: str
    ancestors: int = 0
    as_of: datetime | None = None
    reflog: int | None = None

    @property
    def is_plain(self) -> bool:
        return self.ancestors == 0 and self.as_of is None and self.reflog is None

    @property
    def drifts(self) -> bool:
        """Names another commit once the ref moves (`main~2`, `main@{1}`)."""
        return self.ancestors > 0 or self.reflog is not None


def expression_of(value: object) -> str:
    """The ref expression for a name or expression (parsed: a bad one is refused here), a
    `Commit` (its id) or a ref handle (anything with a text `expression`, as the Python
    API's `Reference`), for every call that takes "a ref" in any of these forms."""
    if isinstance(value, Commit):
        return value.id
    if isinstance(value, str):
        return parse_ref_expression(value).text
    expression = getattr(value, "expression", None)
    if isinstance(expression, str):
        return expression
    raise InvalidInput(f"expected a ref name, expression, handle or Commit, not "
                       f"{type(value).__name__}")


def parse_ref_expression(text: object) -> RefExpression:
    if not isinstance(text, str) or not text.strip():
        raise InvalidRefExpression("a ref expression must be a non-empty string")
    if text != text.strip():
        raise InvalidRefExpression(f"ref expression {text!r} has surrounding spaces")
    rest, reflog = text, None
    if "@" in text:
        found = _REFLOG.fullmatch(text)
        if found is None or not _DIGITS.fullmatch(found["n"]) \
                or int(found["n"]) > MAX_ANCESTORS:
            raise InvalidRefExpression(
                f"in {text[:200]!r}, '@' must be followed by {{N}}, a number of previous "
                f"heads from 0 to {MAX_ANCESTORS:,}, e.g. main@{{1}} (main's head before "
                "its last move)")
        if found["tail"] and not found["tail"].startswith("~"):
            raise InvalidRefExpression(
                f"in {text[:200]!r}, '@{{N}}' may be followed only by '~N' (a past head "
                "needs no '#timestamp')")
        rest, reflog = found["base"] + found["tail"], int(found["n"])
    base, ancestors, as_of = rest, 0, None
    if "#" in rest:
        base, _, stamp = rest.partition("#")
        as_of = parse_timestamp(stamp, text)
    elif "~" in rest:
        base, _, count = rest.partition("~")
        if not _DIGITS.match(count) or int(count) > MAX_ANCESTORS:
            raise InvalidRefExpression(
                f"in {text[:200]!r}, '~' must be followed by a number of ancestors from 0 to "
                f"{MAX_ANCESTORS:,}, e.g. main~2")
        ancestors = int(count)
    if not base:
        raise InvalidRefExpression(f"ref expression {text!r} names no ref")
    if not is_commit_hash(base) or reflog is not None:
        try:
            validate_ref_name(base)
        except InvalidName as exc:
            raise InvalidRefExpression(f"in ref expression {text!r}: {exc.message}") from None
    return RefExpression(text, base, ancestors, as_of, reflog)


def parse_timestamp(stamp: str, context: str) -> datetime:
    try:
        value = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRefExpression(
            f"in {context!r}, {stamp!r} is not an ISO-8601 timestamp "
            "(e.g. main#2026-01-31T12:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:  # an offset can carry 0001-01-01 or 9999-12-31 out of datetime's range
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidRefExpression(
            f"in {context!r}, {stamp!r} is out of range (in UTC it must fall within years "
            "1-9999)") from None
