"""Where table files may live: one strict location grammar, the allowed roots, and the one
function that builds a path from names; also the one home of the other location rules
(`root_uri` for a warehouse or allowed location as the user typed it, `warehouse_uri` and
`default_warehouse`, `lakeversion_home`, and `normalize_path`, the lenient one spelling per
file that gc compares listed and reached files in).

The server owns where files live (as Polaris' allowed locations or Lakekeeper's storage
profiles do): every location a client can influence (a table location, a namespace
`location`, `write.*.path` properties, a registered metadata file, the manifest lists in a
committed snapshot) must parse as a `Location` and lie under an `AllowedRoots` root.

Why so strict: pyiceberg's file IO parses a location as a URL and silently drops what
follows `?` or `#`, and file systems resolve `..`; either lets a string that *looks* like
it is under the warehouse point at any file. So a location with `?`, `#`, `%`, `\\`,
control characters, `.`/`..` segments or doubled slashes is refused outright rather than
normalised: there is then exactly one spelling per accepted location to compare.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spark_lakeversion.errors import InvalidInput, InvalidKey, LocationNotAllowed

#: schemes whose paths we compare; `s3a`/`s3n` are Hadoop's spellings of `s3`
_SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3"}
KNOWN_SCHEMES = frozenset({"file", "s3", "s3a", "s3n", "gs", "gcs", "abfs", "abfss", "wasb",
                           "wasbs", "hdfs", "oss"})
#: any forbidden character or control character (one scan in C: every manifest path of a
#: new snapshot is parsed, thousands per commit)
_FORBIDDEN_RE = re.compile(r"[?#%\\\x00-\x1f\x7f]")
#: the words every "outside the roots" message carries; the Spark error translation
#: (`spark/jvm.py`) recognises a `LocationNotAllowed` behind Iceberg's BadRequestException
#: by them, since Iceberg's REST error model has no room for our error code
OUTSIDE_ROOTS = "is outside the allowed locations of this catalog"
#: the words of a refused location that another table already uses
OVERLAPS = "overlaps the location of another table"


@dataclass(frozen=True)
class Location:
    """A parsed, canonical location: `scheme://authority/path` with no trailing slash.

    `file:/x`, `file:///x` and `/x` are one location (`file:///x`), as are `s3a://b/k` and
    `s3://b/k`: clients spell the same file differently (Spark writes `file:/`)."""

    scheme: str
    authority: str  # the bucket/host; empty for `file`
    path: str  # absolute, `/`-separated, no trailing slash (`/` alone for a root)

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"

    def is_under(self, root: Location) -> bool:
        """True when `self` equals `root` or lies inside it (segment-wise, not by prefix)."""
        if (self.scheme, self.authority) != (root.scheme, root.authority):
            return False
        if root.path == "/":
            return True
        return self.path == root.path or self.path.startswith(root.path + "/")

    def overlaps(self, other: Location) -> bool:
        """Equal, containing or contained: two tables must never share a directory."""
        return self.is_under(other) or other.is_under(self)

    def child(self, *segments: str) -> Location:
        """`self` joined with already-validated name segments (see `safe_segment`)."""
        for segment in segments:
            safe_segment(segment, "path segment")
        base = "" if self.path == "/" else self.path
        return Location(self.scheme, self.authority, base + "".join("/" + s for s in segments))

    @property
    def local_path(self) -> str | None:
        """The file-system path of a `file` location, None for object stores."""
        return self.path if self.scheme == "file" else None

    def __str__(self) -> str:
        return self.uri


def parse_location(text: object, what: str = "location") -> Location:
    """Parse `text` strictly, or raise `InvalidInput` saying what is wrong with it."""
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"{what} must be a non-empty string")
    bad = sorted(set(_FORBIDDEN_RE.findall(text)))
    if bad:
        raise InvalidInput(f"{what} {text!r} contains {''.join(bad)!r}: locations may not "
                           "contain ? # % \\ or control characters")
    scheme, sep, rest = text.partition("://")
    if not sep:
        if text.startswith("file:/"):
            scheme, rest = "file", text[len("file:"):]
        elif text.startswith("/"):
            scheme, rest = "file", text
        else:
            raise InvalidInput(f"{what} {text!r} must be an absolute URI (file:///..., "
                               "s3://bucket/...) or an absolute path")
    scheme = scheme.lower()
    if scheme not in KNOWN_SCHEMES:
        raise InvalidInput(f"{what} {text!r} has an unsupported scheme {scheme!r}")
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    if scheme == "file":
        authority, path = "", rest
        if not path.startswith("/"):
            raise InvalidInput(f"{what} {text!r}: a file URI needs an absolute path "
                               "(file:///dir/...)")
    else:
        authority, slash, path = rest.partition("/")
        path = slash + path
        if not authority:
            raise InvalidInput(f"{what} {text!r} names no bucket or host")
    trimmed = path.rstrip("/") or "/"
    segments = trimmed.split("/")[1:] if trimmed != "/" else []
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidInput(f"{what} {text!r} has an empty, '.' or '..' path segment")
    return Location(scheme, authority, trimmed)


def safe_segment(name: object, what: str = "name") -> str:
    """`name` if it can be one path segment and one key element on every surface, else
    `InvalidInput`: not empty, `.` or `..`; no `/ \\ ? # %`, NUL or control characters.
    Unicode letters are fine."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{what} must be a non-empty string")
    if name in (".", ".."):
        raise InvalidInput(f"{what} {name!r} is not allowed")
    bad = sorted({c for c in name if c in "/\\?#%" or ord(c) < 0x20 or ord(c) == 0x7F})
    if bad:
        shown = "".join(c if ord(c) >= 0x20 and ord(c) != 0x7F else f"\\x{ord(c):02x}"
                        for c in bad)
        raise InvalidInput(f"{what} {name!r} contains {shown!r}: names may not contain "
                           "/ \\ ? # % or control characters")
    return name


def check_new_key(elements: Sequence[str], what: str = "name") -> None:
    """Refuse a key that is about to be written (a `Put` of a commit from any surface)
    unless every element is a `safe_segment`; `InvalidKey` says which and why. Keys already
    stored are never re-checked, so old stores stay readable."""
    for element in elements:
        try:
            safe_segment(element, what)
        except InvalidInput as exc:
            raise InvalidKey(exc.message) from None


def table_location(base: Location, namespace: Sequence[str], name: str, suffix: str) -> Location:
    """The one place a table's directory is built from names: `base/ns.../name_suffix`."""
    for level in namespace:
        safe_segment(level, "namespace level")
    safe_segment(name, "table name")
    safe_segment(suffix, "location suffix")
    return base.child(*namespace, f"{name}_{suffix}")


def lakeversion_home() -> Path:
    """`$LAKEVERSION_HOME` (default `./lakehouse`): the embedded store and warehouse."""
    return Path(os.environ.get("LAKEVERSION_HOME", "lakehouse")).resolve()


def root_uri(location: str) -> str:
    """A warehouse or `--allowed-location` as the user gave it: URIs as given (minus a
    trailing slash), plain paths resolved to `file://` URIs, unencoded (`%` is refused in
    locations). `parse_location` then checks it."""
    if "://" in location or location.startswith("file:"):
        return location.rstrip("/") or location
    return "file://" + str(Path(location).expanduser().resolve())


def default_warehouse() -> str:
    """`<LAKEVERSION_HOME>/warehouse` as a file URI (the directory is created)."""
    return warehouse_uri(str(lakeversion_home() / "warehouse"))


def warehouse_uri(warehouse: str | None) -> str:
    """The warehouse's URI (`root_uri`; none given: `default_warehouse()`); a local
    warehouse directory is created."""
    if not warehouse:
        return default_warehouse()
    uri = root_uri(warehouse)
    if uri.startswith("file://"):
        Path(uri[len("file://"):]).mkdir(parents=True, exist_ok=True)
    return uri


def normalize_path(path: str) -> str:
    """One spelling per file: ``/x``, ``file:/x`` and ``file:///x`` are the same file, as
    are ``s3a://`` and ``s3://`` (Spark and pyiceberg write different ones). Formats report
    reached files, and gc compares listed ones, in this spelling. Lenient, unlike
    `parse_location`: it spells files a table already holds, it validates nothing."""
    scheme, sep, rest = path.partition("://")
    if not sep:
        rest = path[len("file:"):] if path.startswith("file:") else path
        return "file://" + os.path.normpath(os.path.abspath(rest))
    scheme = scheme.lower()
    if scheme == "file":
        return "file://" + os.path.normpath(rest or "/")
    if scheme in ("s3a", "s3n"):
        scheme = "s3"
    return f"{scheme}://{rest.rstrip('/') if rest.endswith('/') else rest}"


class AllowedRoots:
    """The roots under which the server reads and writes table files: its warehouse plus
    any `--allowed-location`."""

    def __init__(self, roots: Iterable[str | Location]) -> None:
        parsed = [r if isinstance(r, Location) else parse_location(r, "allowed location")
                  for r in roots]
        if not parsed:
            raise InvalidInput("at least one allowed location (the warehouse) is needed")
        self.roots: tuple[Location, ...] = tuple(dict.fromkeys(parsed))

    def __repr__(self) -> str:
        return f"AllowedRoots({', '.join(map(str, self.roots))})"

    def describe(self) -> str:
        return ", ".join(str(r) for r in self.roots)

    def contains(self, location: Location) -> bool:
        return any(location.is_under(root) for root in self.roots)

    def contains_strictly(self, location: Location) -> bool:
        """Inside a root and not a root itself: a table at a root would own every other
        table's files."""
        return any(location.is_under(root) and location != root for root in self.roots)

    def check(self, text: object, what: str = "location", *, strictly: bool = False
              ) -> Location:
        """Parse `text` and require it under a root (`strictly`: inside, not equal to one);
        `LocationNotAllowed` names the roots."""
        location = parse_location(text, what)
        inside = self.contains_strictly(location) if strictly else self.contains(location)
        if not inside:
            where = "inside (not at)" if strictly and self.contains(location) else "under"
            raise LocationNotAllowed(
                f"{what} {text!r} {OUTSIDE_ROOTS}: it must lie {where} one of "
                f"{self.describe()}; start the server with --allowed-location to add one")
        return location


__all__ = ["AllowedRoots", "KNOWN_SCHEMES", "Location", "OUTSIDE_ROOTS", "OVERLAPS",
           "check_new_key", "default_warehouse", "lakeversion_home", "normalize_path",
           "parse_location", "root_uri", "safe_segment", "table_location", "warehouse_uri"]
