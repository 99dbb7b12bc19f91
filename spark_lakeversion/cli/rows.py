"""`lakeversion diff FROM TO --table db.t --rows`: the row diff of one table, as text (an
aligned table), JSON (`{"from", "to", "table", "total", "rows", "statistics"}`) or CSV (a
header, then one line per row, `change` first). `--engine spark` reads and compares the
rows in a local SparkSession instead of the server (`spark/rows.py`)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


@contextmanager
def spark_session(store_url: str | None) -> Iterator[Any]:
    """A SparkSession on the CLI's store for `--engine spark`, through a lakeversion catalog
    on its server when the store is one (http(s), token from LAKEVERSION_TOKEN), else on an
    embedded server over the store. A session already running in this process (an
    embedding program's) is borrowed with a catalog of its own and left running; one started
    here is stopped. Without PySpark a typed error."""
    import importlib.util
    import os
    import secrets

    from spark_lakeversion.runs import env_server_url

    if importlib.util.find_spec("pyspark") is None:
        raise InvalidInput("--engine spark needs PySpark: pip install 'spark-lakeversion[spark]'")
    from pyspark.sql import SparkSession

    from spark_lakeversion.spark import CATALOG_CLASS, session

    url = store_url or env_server_url()
    token = os.environ.get("LAKEVERSION_TOKEN")
    server = None
    if url is None or url.split(":", 1)[0].lower() not in ("http", "https"):
        from spark_lakeversion.server.embedded import start_embedded_server

        server = start_embedded_server(url)
        url, token = server.url, None
    existing = SparkSession.getActiveSession()
    try:
        if existing is None:
            conf: dict[str, Any] = {"spark.ui.enabled": "false", "spark.log.level": "ERROR",
                                    "spark.ui.showConsoleProgress": "false"}
            if token:
                conf["spark.sql.catalog.lv.token"] = token
            spark = session(server=url, **conf)
            try:
                yield spark
            finally:
                spark.stop()
            return
        name = f"lv_cli_{secrets.token_hex(4)}"
        previous = existing.conf.get("spark.lakeversion.catalog", None)
        settings = {"": CATALOG_CLASS, ".uri": url, **({".token": token} if token else {})}
        for suffix, value in settings.items():
            existing.conf.set(f"spark.sql.catalog.{name}{suffix}", value)
        existing.conf.set("spark.lakeversion.catalog", name)
        try:
            yield existing
        finally:
            if previous is None:
                existing.conf.unset("spark.lakeversion.catalog")
            else:
                existing.conf.set("spark.lakeversion.catalog", previous)
    finally:
        if server is not None:
            server.stop()


def emit_row_diff(ctx: click.Context, from_ref: str, to_ref: str, table: str | None,
                  columns: str | None, limit: int | None, summary: bool,
                  output: str | None, engine: str = "duckdb") -> None:
    """Print the row diff of `table` from FROM to TO in `output` (default: the global one),
    computed by `engine` (`duckdb` in the server, `spark` in a local SparkSession)."""
    if not table:
        raise InvalidInput("--rows needs --table KEY (the table whose rows to compare)")
    state = get_state(ctx)
    fmt = output or state.output
    names: Sequence[str] | None = None
    if columns is not None:
        names = [c.strip() for c in columns.split(",")]
        if not all(names):
            raise InvalidInput(f"--columns takes names separated by commas, not {columns!r}")
    ref = state.catalog.ref(from_ref)
    if engine == "spark":
        with spark_session(state.store_url) as spark:
            rows = ref.diff_rows(to_ref, table, columns=names, limit=limit, summary=summary,
                                 engine="spark", spark=spark)
    else:
        rows = ref.diff_rows(to_ref, table, columns=names, limit=limit, summary=summary)
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
