"""The store-only walkthrough behind `lakeversion demo` and examples/store_walkthrough.py.

It tells the story of a small catalog of real Delta tables (written by deltalake into a
local warehouse next to the store: no Spark, no network): tables on main, an isolated ETL
branch, a diff, a clean three-way merge, a real conflict (both sides rewrote the same rows)
and its resolution, a table rollback and the history.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.cli.output import render_log, render_merge_result, short
from spark_lakeversion.errors import ConflictError
from spark_lakeversion.model import DiffEntry

Say = Callable[[str], None]


def _pyarrow() -> Any:
    import pyarrow as pa

    return pa


def orders(*rows: tuple[int, str, float]) -> Any:
    """Rows of sales.orders (id, item, amount) as a pyarrow table."""
    pa = _pyarrow()
    schema = pa.schema([("id", pa.int64()), ("item", pa.string()), ("amount", pa.float64())])
    return pa.table([list(column) for column in zip(*rows)], schema=schema)


def customers(*rows: tuple[int, str]) -> Any:
    pa = _pyarrow()
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    return pa.table([list(column) for column in zip(*rows)], schema=schema)


def run_demo(say: Say = print, *, keep: bool = False) -> str:
    """Run the walkthrough on a fresh SQLite store and local warehouse in a temporary
    directory; return the store's URL.

    With `keep`, the directory stays on disk so its URL can be passed to
    ``lakeversion --store``.
    """
    directory = Path(tempfile.mkdtemp(prefix="lakeversion-demo-"))
    url = f"sqlite:///{directory / 'store.db'}"
    try:
        with connect(url, author="demo", warehouse=str(directory / "warehouse")) as catalog:
            walkthrough(catalog, say)
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
    if keep:
        say("")
        say(f"The demo store is kept: lakeversion --store {url} log")
    return url


def rows_of(catalog: Catalog, ref: str, key: str) -> str:
    """A table's rows at a ref, sorted, on one line."""
    table = catalog.ref(ref).delta(key).to_arrow()
    return ", ".join(str(row) for row in sorted(zip(*table.to_pydict().values())))


def render_changes(entries: list[DiffEntry]) -> str:
    """The diff as `+`/`-`/`~` lines naming Delta versions (the locations are long)."""
    def version(content: Any) -> str:
        return f"Delta version {content.fields.get('version')}"

    lines = []
    for entry in entries:
        before, after = entry.from_content, entry.to_content
        if before is None and after is not None:
            lines.append(f"+ {entry.key}  {after.type.value}, {version(after)}")
        elif after is None and before is not None:
            lines.append(f"- {entry.key}  {before.type.value}")
        elif before is not None and after is not None:
            moved = before.fields.get("location") != after.fields.get("location")
            lines.append(f"~ {entry.key}  {version(before)} -> {version(after)}"
                         + (" of the branch's own log" if moved else ""))
    return "\n".join(lines) or "no differences"


def walkthrough(catalog: Catalog, say: Say = print) -> None:
    """The narrative itself, on any (empty) catalog with a local warehouse."""

    def step(title: str) -> None:
        say("")
        say(f"== {title}")

    def indented(text: str) -> None:
        for line in text.splitlines():
            say(f"   {line}")

    def show(ref: str, key: str) -> None:
        say(f"   {key} on {ref}: {rows_of(catalog, ref, key)}")

    main = catalog.branch("main")

    step("1. main starts with two Delta tables, sales.orders and sales.customers")
    main_orders, main_customers = main.delta("sales.orders"), main.delta("sales.customers")
    # keyed by `id` (the row identity a row-level merge uses; README: Delta identifier)
    main_orders.create(orders((1, "book", 0.0)).schema,
                       configuration={"lakeversion.identifierFields": "id"})
    main_orders.append(orders((1, "book", 12.0), (2, "lamp", 30.0)),
                       message="load orders")
    main_customers.create(customers((1, "ada")).schema)
    main_customers.append(customers((1, "ada")), message="load customers")
    show("main", "sales.orders")
    v1 = catalog.tag("v1").create(from_=main)
    say(f"   tagged main as {v1.name} ({short(v1.head.id)})")

    step("2. branch `etl` from main: O(1), nothing is copied")
    etl = catalog.branch("etl").create(from_=main)
    etl.delta("sales.orders").append(orders((3, "desk", 150.0)),
                                     message="etl: load new orders")
    etl.delta("sales.returns").create(orders((1, "book", 0.0)).schema,
                                      message="etl: add returns table")
    say("   on etl: sales.orders got a new order, sales.returns was added")
    show("etl", "sales.orders")
    say("   main is untouched; diff main -> etl:")
    indented(render_changes(main.diff(etl)))

    step("3. main moves on independently, then etl merges in cleanly (three-way)")
    main_customers.append(customers((2, "bob")), message="update customers")
    indented(render_merge_result(etl.merge_into(main)))
    show("main", "sales.orders")

    step("4. two branches change the same rows: a conflict, reported as data")
    fix = catalog.branch("fix-orders").create(from_=main)
    fix.delta("sales.orders").update({"amount": "33.0"}, "id = 2",
                                     message="fix-orders: repair the lamp's price")
    main_orders.delete("id = 2", message="nightly job: drop the lamp order")
    head = main.head.id
    try:
        fix.merge_into(main)
        say("   (unexpected) the merge applied without a conflict")
    except ConflictError as conflict:
        say(f"   merge refused with {len(conflict.conflicts)} conflict(s):")
        for c in conflict.conflicts:
            say(f"   {c.type.value} on {c.key}: {c.message}")
        state = "nothing was written" if main.head.id == head else "(unexpected) main moved"
        say(f"   main still at {short(main.head.id)}: {state}")

    step("5. resolve it: preview, then let the fix win for sales.orders")
    preview = fix.merge_into(main, dry_run=True, behaviors={"sales.orders": "source-wins"})
    indented(render_merge_result(preview))
    resolved = fix.merge_into(main, behaviors={"sales.orders": "source-wins"},
                              message="merge fix-orders (fix wins on sales.orders)")
    indented(render_merge_result(resolved))
    show("main", "sales.orders")

    step("6. a bad job overwrites sales.orders; roll just that table back")
    main_orders.overwrite(orders((99, "oops", -1.0)), message="bad job: truncated orders")
    show("main", "sales.orders")
    rollback = main.rollback_table("sales.orders", to=main.ancestor(1))
    say(f"   rolled back to main~1 as commit {short(rollback.id)}")
    show("main", "sales.orders")
    show("main", "sales.customers")
    say("   (sales.customers kept its newer rows)")

    step("7. history of main, and of sales.orders alone")
    indented(render_log(list(main.log())))
    say("   -- only commits that changed sales.orders:")
    indented(render_log(list(main.log(table="sales.orders"))))
    say("   -- the tag v1 still shows the first rows:")
    show("v1", "sales.orders")
