"""Webhook checks: POST the gate's context as JSON (`GateContext.to_dict()` plus the
check's name); a 2xx answer passes, anything else or a timeout fails. The answer's JSON
`message`, `violations` and `samples` (if any) go into the report. The receiver can read
the preview through the catalog (Spark: `lv.db@<preview>.orders`).

Where a webhook may go is the operator's choice (`CheckPolicy.webhook_allow`, `lakeversion
serve --webhook-allow HOST[:PORT]`): a host listed there, or else a host whose every
address is public (loopback, link-local such as 169.254.169.254, private, reserved and
multicast addresses are refused). Checked when the check is added and before every post;
redirects are never followed (a 3xx answer fails the check).

Notifications (kind ``notify``) get the same context plus `event` (``merged`` or
``committed``) and `new_head`, after the write landed; they never block it, and their
outcome is recorded as a check run.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import CheckReport, CheckSpec, CheckStatus
from spark_lakeversion.versioning.gates.context import GateContext
from spark_lakeversion.versioning.gates.policy import CheckPolicy


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, policy: CheckPolicy) -> None:
    """`InvalidInput` unless the server's policy lets a webhook post to `url`."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise InvalidInput(f"webhook {url!r} is not an http(s) URL") from None
    host = (parsed.host or "").lower()
    if parsed.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"webhook {url!r} is not an http(s) URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    for allowed in policy.webhook_allow:
        if fnmatch.fnmatchcase(host, allowed) or fnmatch.fnmatchcase(f"{host}:{port}", allowed):
            return
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise InvalidInput(f"webhook host {host!r} does not resolve") from None
    refused = sorted({str(info[4][0]) for info in found if not _public(str(info[4][0]))})
    if refused or not found:
        raise InvalidInput(
            f"webhook host {host}:{port} resolves to a loopback, link-local or private "
            f"address ({', '.join(refused) or 'none'}); the server's operator may allow it "
            "with lakeversion serve --webhook-allow HOST[:PORT]")


def post(url: str, body: dict[str, Any], timeout: float, policy: CheckPolicy
         ) -> httpx.Response:
    check_url(url, policy)  # again before each post: the policy or the address may differ
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        return client.post(url, json=body)


def run_webhook_check(context: GateContext, spec: CheckSpec,
                      on_cancel: Callable[[Callable[[], None]], None]) -> CheckReport:
    started = time.monotonic()
    try:
        answer = post(spec.spec, {**context.to_dict(), "check": spec.name}, spec.timeout_s,
                      context.policy)
    except httpx.TimeoutException:
        return CheckReport(spec.name, CheckStatus.ERROR, None, (),
                           int((time.monotonic() - started) * 1000),
                           f"webhook timed out after {spec.timeout_s:g}s")
    except httpx.HTTPError as exc:
        return CheckReport(spec.name, CheckStatus.ERROR, None, (),
                           int((time.monotonic() - started) * 1000),
                           f"webhook unreachable: {type(exc).__name__}: {exc}")
    took = int((time.monotonic() - started) * 1000)
    details: dict[str, Any] = {}
    try:
        parsed = answer.json()
        details = parsed if isinstance(parsed, dict) else {}
    except ValueError:
        pass
    ok = 200 <= answer.status_code < 300
    message = str(details.get("message") or f"HTTP {answer.status_code}")[:1000]
    count = details.get("violations")
    samples = details.get("samples")
    return CheckReport(spec.name, CheckStatus.PASSED if ok else CheckStatus.FAILED,
                       count if isinstance(count, int) else None,
                       tuple(s for s in samples[:10] if isinstance(s, dict))
                       if isinstance(samples, list) else (), took, message)
