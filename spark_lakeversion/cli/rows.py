"""`lakeversion diff FROM TO --table db.t --rows`: the row diff of one table, as text (an
aligned table), JSON (`{"from", "to", "table", "total", "rows", "statistics"}`) or CSV (a
header, then one line per row, `change` first)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import click

from spark_lakeversion.cli.output import emit, get_state, printable, to_json
from spark_lakeversion.errors import InvalidInput


def render_rows(table: Any) -> str:
    """An aligned text table of an Arrow table (values as Python prints them)."""
    if table.num_rows == 0:
        return "no differences"
    names = table.column_names
    rows = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
    widths = [max(len(n), *(len(r[i]) for r in rows)) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "null" if value is None else str(value)


def emit_row_diff(ctx: click.Context, from_ref: str, to_ref: str, table: str | None,
                  columns: str | None, limit: int | None, summary: bool,
                  output: str | None) -> None:
    """Print the row diff of `table` from FROM to TO in `output` (default: the global one)."""
    if not table:
        raise InvalidInput("--rows needs --table KEY (the table whose rows to compare)")
    state = get_state(ctx)
    fmt = output or state.output
    names: Sequence[str] | None = None
    if columns is not None:
        names = [c.strip() for c in columns.split(",")]
        if not all(names):
            raise InvalidInput(f"--columns takes names separated by commas, not {columns!r}")
    rows = state.catalog.ref(from_ref).diff_rows(to_ref, table, columns=names, limit=limit,
                                                 summary=summary)
    if fmt == "csv":
        import pyarrow.csv as pacsv

        sink = io.BytesIO()
        pacsv.write_csv(rows, sink)
        click.echo(printable(sink.getvalue().decode()), nl=False)
        return
    if fmt == "json":
        from spark_lakeversion.rows.page import json_rows

        click.echo(to_json({"from": from_ref, "to": to_ref, "table": table,
                            "summary": summary, "rows": json_rows(rows)}))
        return
    emit(ctx, None, lambda _: render_rows(rows))
