"""Runs a gate's checks in parallel, each within its timeout, and fires post-merge
notifications in the background. An engine error (bad SQL, import error, a callable that
raises anything, `SystemExit` and `KeyboardInterrupt` included) or a timeout is an `error`
report, which refuses the merge like a failure. `validate` is the engines' check of a new
spec, run when it is added (nothing is stored when it refuses)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone

from spark_lakeversion.checks.changes import shared_changes
from spark_lakeversion.checks.python import load_callable, run_python_check
from spark_lakeversion.checks.sql import run_sql_check
from spark_lakeversion.checks.sql_rules import CATALOGS, check_sql
from spark_lakeversion.checks.webhook import check_url, post, run_webhook_check
from spark_lakeversion.errors import InvalidInput, LakeVersionError
from spark_lakeversion.model import CheckKind, CheckReport, CheckRun, CheckSpec, CheckStatus
from spark_lakeversion.versioning.access import VISIBLE_REFS
from spark_lakeversion.versioning.gates.context import GateContext
from spark_lakeversion.versioning.gates.policy import CheckPolicy

log = logging.getLogger("spark_lakeversion.checks")

Engine = Callable[[GateContext, CheckSpec, Callable[[Callable[[], None]], None]], CheckReport]
ENGINES: dict[CheckKind, Engine] = {
    CheckKind.SQL: run_sql_check,
    CheckKind.PYTHON: run_python_check,
    CheckKind.WEBHOOK: run_webhook_check,
}
MAX_PARALLEL = 4


def validate(spec: CheckSpec, policy: CheckPolicy, trial: GateContext | None = None,
             allow_missing: bool = False) -> None:
    """`InvalidInput` unless `spec` may run under `policy`: SQL reading only the three
    relations, an installed or allowed Python callable (it is imported), an allowed
    webhook host. Given `trial` (the branch as it is), a SQL check runs once on it: an
    error is refused with DuckDB's message, except a table missing there that another ref
    has (a merge will bring it) or, with `allow_missing`, that no ref has yet."""
    if spec.kind is CheckKind.PYTHON:
        load_callable(spec.spec, policy)
        return
    if spec.kind is not CheckKind.SQL:
        check_url(spec.spec, policy)
        return
    names = check_sql(spec.spec)
    if trial is None:
        return
    [report] = run_checks(trial, [spec])
    if report.status is not CheckStatus.ERROR:
        return
    if "Catalog Error" in report.message and "does not exist" in report.message:
        missing = missing_tables(trial, names)
        if not missing or allow_missing:
            return  # on another ref (a merge brings it), or accepted as still to come
        raise InvalidInput(f"check {spec.name!r} reads {', '.join(missing)}, which no ref "
                           "has (--allow-missing / allow_missing=True accepts a table still "
                           f"to come): {report.message}")
    raise InvalidInput(f"check {spec.name!r} does not run on {trial.target!r} as it is: "
                       f"{report.message}")


def missing_tables(trial: GateContext, names: Sequence[tuple[str, str, str]]) -> list[str]:
    """The tables of `names` that no ref of the store has, counting only the refs the
    principal adding the check may read (`VISIBLE_REFS`): a table only on a ref it cannot
    read is missing to it, so the answer tells nothing of that ref."""
    wanted = {(s, t) for _, s, t in names}
    found: set[tuple[str, str]] = set()
    visible = VISIBLE_REFS.get()
    for ref in (r for r in trial.store.list_refs() if visible(r.name)):
        for key, _ in trial.store.list_keys(ref.head):
            schema, table = ".".join(key.elements[:-1]).lower(), key.elements[-1].lower()
            found.update({(schema, table), ("", table)})
    return sorted(".".join(p for p in pair if p) for pair in wanted
                  if pair not in found and not (pair[0] in CATALOGS and ("", pair[1]) in found))


def _guarded(engine: Engine, context: GateContext, spec: CheckSpec,
             cancels: list[Callable[[], None]]) -> CheckReport:
    started = time.monotonic()
    try:
        return engine(context, spec, cancels.append)
    except LakeVersionError as exc:
        message = exc.message
    except BaseException as exc:  # noqa: BLE001 - a check's own failure (even an exit) is
        # its report, never the server's
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return CheckReport(spec.name, CheckStatus.ERROR, None, (),
                       int((time.monotonic() - started) * 1000), message[:2000])


def run_checks(context: GateContext, specs: Sequence[CheckSpec]) -> list[CheckReport]:
    """One report per spec, in order. The checks of one run share each table's row diff
    (`changes.db.t`, `ctx.changes`): it is planned and read once per merge preview."""
    with shared_changes(context):
        return _run(context, specs)


def _run(context: GateContext, specs: Sequence[CheckSpec]) -> list[CheckReport]:
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
                              spec.timeout_s, context.policy)
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
