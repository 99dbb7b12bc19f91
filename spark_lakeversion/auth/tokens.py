"""Bearer tokens: made at random, stored only as their SHA-256, compared in constant time."""

from __future__ import annotations

import hashlib
import secrets

from spark_lakeversion.errors import InvalidInput

#: bytes of randomness in a new token (43 URL-safe characters)
TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 4096


def new_token() -> str:
    """A fresh random token (`lakeversion token new`)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_sha256(token: str) -> str:
    """What the auth config stores instead of the token: its SHA-256 in lowercase hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token(token: str | None, source: str) -> str:
    """A token a server is configured with: empty or blank is an error, never "no auth".

    The message names `source` (`--token`, `LAKEVERSION_TOKEN`...), never the value."""
    if token is None or not token.strip():
        raise InvalidInput(f"{source} is empty: give a token (e.g. from `lakeversion token "
                           "new`), or leave it unset to run without authentication")
    if token != token.strip() or any(c.isspace() for c in token):
        raise InvalidInput(f"{source} contains whitespace; a token is one word")
    if len(token) > MAX_TOKEN_CHARS or not token.isascii() or not token.isprintable():
        raise InvalidInput(f"{source} must be printable ASCII of at most {MAX_TOKEN_CHARS} "
                           "characters")
    return token
