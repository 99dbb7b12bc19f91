"""Fixtures of the Iceberg format's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.formats.iceberg.helpers import RowLake


@pytest.fixture(params=[True, False], ids=["keyed", "keyless"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> RowLake:
    """The row merge's lake, once keyed and once keyless (a module may define its own
    `lake`, as `test_staged.py` does)."""
    return RowLake(tmp_path, keyed=request.param)
