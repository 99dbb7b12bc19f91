"""The network guard of the test suite: an audit hook (`sys.addaudithook`) that sees every
socket connection (and, in example processes, every name lookup) a Python process makes
and reports the ones that are not loopback. Rust and Java clients (deltalake's object
store, Spark) connect outside Python's socket module: their cloud-metadata lookups are
caught by the warnings they print (`tests/examples/helpers.py`)."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable
from typing import Any

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
NAME_LOOKUPS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"}
#: what the pytest process's own guard saw during the current test (tests/conftest.py)
STRAY_CALLS: list[str] = []


def is_loopback(host: Any) -> bool:
    """Whether `host` (an address or a name) stays on this machine."""
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


def install(report: Callable[[str], None], *, lookups: bool) -> None:
    """Call `report` with a description of every non-loopback connection (and, with
    `lookups`, every lookup of a name other than localhost) this process makes."""

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect" or event == "socket.sendto":
            sock, address = args[0], args[-1]
            if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6) \
                    and isinstance(address, tuple) and not is_loopback(address[0]):
                report(f"{event} {address!r}")
        elif lookups and event in NAME_LOOKUPS and not is_loopback(args[0]):
            report(f"{event} {args[0]!r}")

    sys.addaudithook(audit)
