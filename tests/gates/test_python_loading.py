"""Python checks are found by entry point (group `spark_lakeversion.checks`), by
`module:function` and by dotted path of a module the operator allowed; anything else is a
clear `InvalidInput`, and a module not allowed is not even imported."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.checks.python import load_callable
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.versioning.gates.policy import CheckPolicy
from tests.gates import helpers

ALLOWED = CheckPolicy.of([helpers.CHECK_MODULE, "no_such_module_xyz"])


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[None]:
    """A real distribution on sys.path declaring one check entry point."""
    dist = tmp_path / "acme_checks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[spark_lakeversion.checks]\nacme-small = tests.gates.helpers:at_most_five_rows\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))


def test_entry_point_and_paths(installed_plugin: None) -> None:
    # an installed entry point needs no --check-module
    assert load_callable("acme-small", CheckPolicy()) is helpers.at_most_five_rows
    assert load_callable("tests.gates.helpers:at_most_five_rows", ALLOWED) \
        is helpers.at_most_five_rows
    assert load_callable("tests.gates.helpers.changed_tables_named", ALLOWED) \
        is helpers.changed_tables_named


@pytest.mark.parametrize(("target", "message"), [
    ("nothing_here", "no entry point of that name"),
    ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
    ("tests.gates.helpers:CHECK_MODULE", "has no function CHECK_MODULE"),
])
def test_unknown_targets_are_invalid_input(target: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_callable(target, ALLOWED)


@pytest.mark.parametrize("target", ["sys:exit", "os.system", "tests.gates.helpers:CALLS",
                                    "tests.gates:helpers", "tests.gates.helpersx:f"])
def test_modules_not_allowed_are_refused_before_import(target: str) -> None:
    # allowed: os.path and a submodule of helpers; a name that only starts alike is not
    policy = CheckPolicy.of(["os.path", "tests.gates.helpers.sub"])
    with pytest.raises(InvalidInput, match="is not allowed"):
        load_callable(target, policy)
    assert "tests.gates.helpersx" not in sys.modules
