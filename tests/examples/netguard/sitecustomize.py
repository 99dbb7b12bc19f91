"""Loaded by every Python process a guarded example starts (this directory is put first on
PYTHONPATH): `tests.netguard`'s audit hook refuses, and records, every connection or name
lookup that is not loopback, so a test sees a stray network call even when the example
catches the error. The record goes to the file named by `LAKEVERSION_NETGUARD_LOG`."""

from __future__ import annotations

import os
import sys

from tests.netguard import install


def _refuse(what: str) -> None:
    path = os.environ.get("LAKEVERSION_NETGUARD_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{what} (pid {os.getpid()}: {' '.join(sys.argv)[:200]})\n")
    raise PermissionError(f"netguard: non-loopback network call refused: {what}")


install(_refuse, lookups=True)
