"""Runs a gate's checks in parallel, each within its timeout, and fires post-merge
notifications in the background. An engine error (bad SQL, import error, a callable that
raises) or a timeout is an `error` report, which refuses the merge like a failure."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone

from spark_lakeversion.checks.python import run_python_check
from spark_lakeversion.checks.sql import run_sql_check
from spark_lakeversion.checks.webhook import post, run_webhook_check
from spark_lakeversion.errors import LakeVersionError
from spark_lakeversion.model import CheckKind, CheckReport, CheckRun, CheckSpec, CheckStatus
from spark_lakeversion.versioning.gates.context import GateContext

log = logging.getLogger("spark_lakeversion.checks")

Engine = Callable[[GateContext, CheckSpec, Callable[[Callable[[], None]], None]], CheckReport]
ENGINES: dict[CheckKind, Engine] = {
    CheckKind.SQL: run_sql_check,
    CheckKind.PYTHON: run_python_check,
    CheckKind.WEBHOOK: run_webhook_check,
}
MAX_PARALLEL = 4


def _guarded(engine: Engine, context: GateContext, spec: CheckSpec,
             cancels: list[Callable[[], None]]) -> CheckReport:
    started = time.monotonic()
    try:
        return engine(context, spec, cancels.append)
    except LakeVersionError as exc:
        message = exc.message
    except Exception as exc:  # noqa: BLE001 - a check's own failure is its report
        message = f"{type(exc).__name__}: {exc}"
    return CheckReport(spec.name, CheckStatus.ERROR, None, (),
                       int((time.monotonic() - started) * 1000), message[:2000])


def run_checks(context: GateContext, specs: Sequence[CheckSpec]) -> list[CheckReport]:
    pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, max(1, len(specs))),
                              thread_name_prefix="lakeversion-check")
    try:
        started = time.monotonic()
        running: list[tuple[CheckSpec, Future[CheckReport], list[Callable[[], None]]]] = []
        for spec in specs:
            cancels: list[Callable[[], None]] = []
            running.append((spec, pool.submit(_guarded, ENGINES[spec.kind], context, spec,
                                              cancels), cancels))
        reports = []
        for spec, future, cancels in running:
            left = spec.timeout_s - (time.monotonic() - started)
            try:
                reports.append(future.result(timeout=max(left, 0.0)))
            except FutureTimeout:
                for cancel in cancels:
                    cancel()
                reports.append(CheckReport(spec.name, CheckStatus.ERROR, None, (),
                                           int(spec.timeout_s * 1000),
                                           f"timed out after {spec.timeout_s:g}s"))
        return reports
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def notify(context: GateContext, specs: Sequence[CheckSpec], new_head: str,
           event: str = "merged") -> None:
    """POST the context (`event`: ``merged`` or ``committed``) to each notification URL in
    a background thread; each outcome is recorded as a check run of kind ``notify``."""

    def send() -> None:
        runs = []
        for spec in specs:
            started = time.monotonic()
            try:
                answer = post(spec.spec, {**context.to_dict(), "check": spec.name,
                                          "event": event, "new_head": new_head},
                              spec.timeout_s)
                ok, message = answer.is_success, f"HTTP {answer.status_code}"
            except Exception as exc:  # noqa: BLE001 - recorded, never raised
                ok, message = False, f"{type(exc).__name__}: {exc}"
            report = CheckReport(spec.name, CheckStatus.PASSED if ok else CheckStatus.FAILED,
                                 None, (), int((time.monotonic() - started) * 1000), message)
            runs.append(CheckRun(context.attempt, context.target, context.source,
                                 context.preview, report, datetime.now(timezone.utc),
                                 "notify"))
        try:
            record = getattr(context.store, "storage", None)
            if record is not None:
                record.record_check_runs(runs)
        except Exception:  # noqa: BLE001 - a notification never fails a merge
            log.exception("could not record post-merge notifications")

    threading.Thread(target=send, name="lakeversion-notify", daemon=True).start()
