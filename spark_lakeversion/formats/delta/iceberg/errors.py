"""The one refusal of the translation: a Delta table (or commit) the Iceberg side cannot
express, named, never served with wrong rows."""

from __future__ import annotations

from spark_lakeversion.errors import InvalidInput


class Untranslatable(InvalidInput):
    """A Delta feature or value Iceberg metadata cannot express (or an Iceberg change a
    Delta version cannot)."""


def untranslatable(why: str) -> Untranslatable:
    return Untranslatable(f"this Delta table cannot be served as an Iceberg table: {why}")
