"""Python checks: an entry point of group ``spark_lakeversion.checks``, or a callable
named `module:function` (or a dotted path `module.function`) of a module the server's
operator allowed (`CheckPolicy.check_modules`, `lakeversion serve --check-module NAME`).
It is called with a `CheckContext` and returns a `CheckResult` (or a bool, or a (bool,
message) pair). Whatever it raises, `SystemExit` and `KeyboardInterrupt` too, is its error
report (`runner.py`).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.model import CheckReport, CheckSpec, CheckStatus, Key
from spark_lakeversion.versioning.gates.context import RELATIONS, GateContext
from spark_lakeversion.versioning.gates.policy import CheckPolicy

ENTRY_POINT_GROUP = "spark_lakeversion.checks"


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    message: str = ""
    violations: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)


class StateCatalog:
    """A read-only view of one of the gate's three states: `load_table("db.t")` is a
    pyiceberg `StaticTable` of that state's metadata file, opened with the server's
    FileIO properties (no catalog server, no other ref)."""

    def __init__(self, tables: Any, io: Any, which: str) -> None:
        self._tables, self._io, self.which = tables, io, which

    def list_tables(self) -> list[str]:
        return sorted(str(k) for k, c in self._tables.items()
                      if c.type is ICEBERG_TABLE)

    def load_table(self, name: str | tuple[str, ...]) -> Any:
        from pyiceberg.table import StaticTable

        key = Key.of(".".join(name) if isinstance(name, tuple) else name)
        content = self._tables.get(key)
        if content is None or content.type is not ICEBERG_TABLE:
            raise InvalidInput(f"no Iceberg table {key} in the {self.which} state")
        return StaticTable.from_metadata(str(content.fields["metadata_location"]),
                                         properties=dict(self._io))


class TableChanges(tuple):  # type: ignore[type-arg]
    """The table-level diff (target -> preview) as a tuple of `DiffEntry`, and callable:
    `ctx.changes("db.t")` is the row diff of one table, an Arrow table (`checks.changes`),
    reading only the files the merge changes."""

    gate: GateContext

    def __new__(cls, gate: GateContext) -> TableChanges:
        made = super().__new__(cls, gate.changes)
        made.gate = gate
        return made

    def __call__(self, table: str) -> Any:
        from spark_lakeversion.checks.changes import changes_table

        return changes_table(self.gate, table)


class CheckContext:
    """What a Python check reads: the preview (a readable ref expression), source and
    target with their heads, the changed tables with their table-level diff (`changes`;
    `changes("db.t")`: the rows the merge changes, an Arrow table), the store, and
    `catalog()`: the tables of the preview (`catalog("target")`, `catalog("source")`)."""

    def __init__(self, gate: GateContext) -> None:
        self.gate = gate
        self.preview = gate.preview
        self.source, self.source_head = gate.source, gate.source_head
        self.target, self.target_head = gate.target, gate.target_head
        self.changes = TableChanges(gate)
        self.changed_tables = gate.changed_tables
        self.store = gate.store

    def catalog(self, which: str = "preview") -> StateCatalog:
        if which not in RELATIONS:
            raise InvalidInput(f"a check reads only {', '.join(RELATIONS)}, not {which!r}")
        return StateCatalog(self.gate.relations.get(which, {}), self.gate.io, which)


def load_callable(target: str, policy: CheckPolicy) -> Callable[[CheckContext], Any]:
    """The function `target` names, if the operator installed it (an entry point) or
    allowed its module; `InvalidInput` otherwise (nothing is imported then)."""
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
    if not policy.allows_module(module_name):
        allowed = ", ".join(policy.check_modules) or "none"
        raise InvalidInput(f"python check {target!r}: module {module_name} is not allowed "
                           f"(installed entry points of group {ENTRY_POINT_GROUP} and the "
                           f"server's --check-module modules only; allowed: {allowed})")
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # noqa: BLE001 - an import that exits is refused too
        raise InvalidInput(f"python check {target!r}: cannot import {module_name}: "
                           f"{type(exc).__name__}: {exc}") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise InvalidInput(f"python check {target!r}: {module_name} has no function {attr}")
    return func  # type: ignore[no-any-return]


def run_python_check(context: GateContext, spec: CheckSpec,
                     on_cancel: Callable[[Callable[[], None]], None]) -> CheckReport:
    started = time.monotonic()
    outcome = load_callable(spec.spec, context.policy)(CheckContext(context))
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
