"""Webhook checks: POST the gate's context as JSON (`GateContext.to_dict()` plus the
check's name); a 2xx answer passes, anything else or a timeout fails. The answer's JSON
`message`, `violations` and `samples` (if any) go into the report. The receiver can read
the preview through the catalog (Spark: `lv.db@<preview>.orders`).

Notifications (kind ``notify``) get the same context plus `event` (``merged`` or
``committed``) and `new_head`, after the write landed; they never block it, and their
outcome is recorded as a check run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from spark_lakeversion.model import CheckReport, CheckSpec, CheckStatus
from spark_lakeversion.versioning.gates.context import GateContext


def post(url: str, body: dict[str, Any], timeout: float) -> httpx.Response:
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        return client.post(url, json=body)


def run_webhook_check(context: GateContext, spec: CheckSpec,
                      on_cancel: Callable[[Callable[[], None]], None]) -> CheckReport:
    started = time.monotonic()
    try:
        answer = post(spec.spec, {**context.to_dict(), "check": spec.name}, spec.timeout_s)
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
