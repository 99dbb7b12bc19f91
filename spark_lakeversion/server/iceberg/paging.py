"""Paging of the catalog's listings (namespaces, tables, views): `pageToken` and `pageSize`.

A token is an opaque cursor naming the last item handed out (not an offset), so a listing
stays exact under concurrent creates and drops: every item that exists throughout the
listing comes exactly once, in name order, and nothing is repeated; an item created behind
the cursor simply shows up in the next listing. An empty or absent token starts at the
first page; no `pageSize` means the rest of the listing in one page. The paging is applied
to whatever list the catalog returns, at the listing routes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from spark_lakeversion.server.errors import bad_request

T = TypeVar("T")
_MARK = "lv1."
#: the most items one page holds, whatever `pageSize` asks (the spec lets a server send fewer)
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class PageRequest:
    """`pageToken` and `pageSize`, parsed once at the route."""

    after: tuple[str, ...] | None  # the sort key of the last item already handed out
    size: int | None

    @classmethod
    def parse(cls, token: str | None, size: str | None) -> PageRequest:
        return cls(_decode(token) if token else None, _size(size))


def _size(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise bad_request(f"pageSize {text!r} must be a positive integer")
    return min(int(text), MAX_PAGE_SIZE)


def encode_token(after: Sequence[str]) -> str:
    raw = json.dumps(list(after), ensure_ascii=False, separators=(",", ":"))
    return _MARK + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(token: str) -> tuple[str, ...]:
    problem = bad_request(f"pageToken {token[:80]!r} is not a token this catalog handed out "
                          "(pass next-page-token back unchanged, or an empty one to start)")
    if not token.startswith(_MARK):
        raise problem
    raw = token[len(_MARK):]
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise problem from None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise problem
    return tuple(value)


def paginate(items: Sequence[T], sort_key: Callable[[T], tuple[str, ...]],
             page: PageRequest) -> tuple[list[T], str | None]:
    """The page of `items` after the request's cursor, and the next token (None: done)."""
    ordered = sorted(items, key=sort_key)
    if page.after is not None:
        ordered = [item for item in ordered if sort_key(item) > page.after]
    if page.size is None or len(ordered) <= page.size:
        return ordered, None
    chosen = ordered[:page.size]
    return chosen, encode_token(sort_key(chosen[-1]))


def paged(body: dict[str, Any], field: str, sort_key: Callable[[Any], tuple[str, ...]],
          page: PageRequest) -> dict[str, Any]:
    """A listing answer (`{field: [...], "next-page-token": ...}`) cut to one page."""
    items, token = paginate(body[field], sort_key, page)
    return {**body, field: items, "next-page-token": token}


def namespace_order(namespace: Sequence[str]) -> tuple[str, ...]:
    return tuple(namespace)


def identifier_order(identifier: dict[str, Any]) -> tuple[str, ...]:
    return (*identifier["namespace"], identifier["name"])
