"""Python checks: a callable named `module:function`, a dotted path `module.function`, or
an entry point of group ``spark_lakeversion.checks``. It is called with a `CheckContext`
and returns a `CheckResult` (or a bool, or a (bool, message) pair).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import CheckReport, CheckSpec, CheckStatus
from spark_lakeversion.versioning.gates.context import GateContext

ENTRY_POINT_GROUP = "spark_lakeversion.checks"


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    message: str = ""
    violations: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)


class CheckContext:
    """What a Python check reads: the preview (a readable ref expression), source and
    target with their heads, the changed tables with their table-level diff, the store,
    and `catalog()`: a pyiceberg catalog at the preview (`catalog("target")` etc.)."""

    def __init__(self, gate: GateContext) -> None:
        self.gate = gate
        self.preview = gate.preview
        self.source, self.source_head = gate.source, gate.source_head
        self.target, self.target_head = gate.target, gate.target_head
        self.changes = gate.changes
        self.changed_tables = gate.changed_tables
        self.store = gate.store

    def catalog(self, which: str = "preview") -> Any:
        from spark_lakeversion.checks.endpoint import endpoint_for

        ref = {"preview": self.preview, "target": self.target_head,
               "source": self.source_head}.get(which, which)
        return endpoint_for(self.store).catalog(ref)


def load_callable(target: str) -> Callable[[CheckContext], Any]:
    """The function `target` names; `InvalidInput` when there is none."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == target:
            loaded = ep.load()
            if callable(loaded):
                return loaded  # type: ignore[no-any-return]
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise InvalidInput(f"python check {target!r}: no entry point of that name, and not "
                           "module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"python check {target!r}: cannot import {module_name}: "
                           f"{exc}") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise InvalidInput(f"python check {target!r}: {module_name} has no function {attr}")
    return func  # type: ignore[no-any-return]


def run_python_check(context: GateContext, spec: CheckSpec,
                     on_cancel: Callable[[Callable[[], None]], None]) -> CheckReport:
    started = time.monotonic()
    outcome = load_callable(spec.spec)(CheckContext(context))
    took = int((time.monotonic() - started) * 1000)
    if isinstance(outcome, CheckResult):
        result = outcome
    elif isinstance(outcome, bool):
        result = CheckResult(outcome)
    elif isinstance(outcome, tuple) and len(outcome) == 2 and isinstance(outcome[0], bool):
        result = CheckResult(outcome[0], str(outcome[1]))
    else:
        return CheckReport(spec.name, CheckStatus.ERROR, None, (), took,
                           f"returned {type(outcome).__name__}: return a CheckResult or a bool")
    return CheckReport(spec.name, CheckStatus.PASSED if result.passed else CheckStatus.FAILED,
                       result.violations, tuple(result.samples[:10]), took,
                       result.message or ("passed" if result.passed else "failed"))
