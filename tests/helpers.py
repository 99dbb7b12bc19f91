"""Helpers shared by the whole suite (test modules import these, never each other):
store URLs for every backend, PostgreSQL required in CI."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get("LAKEVERSION_TEST_POSTGRES",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres",
                             connect_timeout=3):
            return True
    except Exception:
        return False


def require_postgres() -> None:
    """Skip locally when PostgreSQL is down; in CI a missing PostgreSQL is a failure."""
    if postgres_available():
        return
    if IN_CI:
        pytest.fail("PostgreSQL on 127.0.0.1:5432 is required in CI (CI=true)")
    pytest.skip("PostgreSQL on 127.0.0.1:5432 is not running (it must in CI)")


def fresh_postgres_url() -> str:
    """A PostgreSQL store URL in a schema of its own, so tests never see each other."""
    import psycopg

    schema = f"lv_{uuid.uuid4().hex[:12]}"
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


BACKENDS = ["sqlite-memory", "sqlite-file", "postgres"]


def make_store_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite-memory":
        return "sqlite:///:memory:"
    if backend == "sqlite-file":
        return f"sqlite:///{tmp_path / 'store.db'}"
    require_postgres()
    return fresh_postgres_url()


def fake_spark_home(root: Path, exit_code: int = 0) -> Path:
    """A `$SPARK_HOME` whose `bin/spark-submit` only writes its arguments to
    `<home>/started` (one a line): tests tell whether Spark would have started, and with
    what, without starting it."""
    home = root / "fake-spark"
    (home / "bin").mkdir(parents=True)
    script = home / "bin" / "spark-submit"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{home}/started"\nexit {exit_code}\n')
    script.chmod(0o755)
    return home


def apply_changes(base: Sequence[tuple[Any, ...]],
                  *changes: Mapping[int, tuple[Any, ...] | None]) -> list[tuple[Any, ...]]:
    """`base` rows (keyed by their first value) with each change applied by key (None:
    deleted), sorted: the rows a merge test expects."""
    rows = {r[0]: r for r in base}
    for change in changes:
        for i, r in change.items():
            if r is None:
                rows.pop(i, None)
            else:
                rows[i] = r
    return sorted(rows.values())
