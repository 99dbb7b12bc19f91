"""Loaded by every Python process a guarded example starts (this directory is put first on
PYTHONPATH): an audit hook that refuses, and records, any connection or name lookup that
is not loopback, so a test sees a stray network call even when the example catches it.

The record goes to the file named by `LAKEVERSION_NETGUARD_LOG` (one line per call).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
NAME_LOOKUPS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"}


def _is_loopback(host: Any) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).strip("[]").split("%")[0]
    if text.lower() in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False  # a name other than localhost: a DNS lookup, i.e. the network
    return address.is_loopback or address.is_unspecified


def _refuse(what: str) -> None:
    path = os.environ.get("LAKEVERSION_NETGUARD_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{what} (pid {os.getpid()}: {' '.join(sys.argv)[:200]})\n")
    raise PermissionError(f"netguard: non-loopback network call refused: {what}")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" or event == "socket.sendto":
        sock, address = args[0], args[-1]
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6) \
                and isinstance(address, tuple) and not _is_loopback(address[0]):
            _refuse(f"{event} {address!r}")
    elif event in NAME_LOOKUPS and not _is_loopback(args[0]):
        _refuse(f"{event} {args[0]!r}")


sys.addaudithook(_audit)
