"""The store-only walkthrough behind `lakeversion demo` and examples/store_walkthrough.py.

It tells the story of a small catalog: tables committed on main, an isolated ETL branch,
a diff, a clean three-way merge, a merge conflict and its resolution, a table rollback and
the history. Tables are opaque format-tagged values here (no Spark, no data files): the
point is what the version store does with them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.cli.output import (
    describe_content,
    render_diff,
    render_entries,
    render_log,
    render_merge_result,
    short,
)
from spark_lakeversion.errors import ConflictError
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.model import Content, ContentType, Key, Put

Say = Callable[[str], None]


def delta_table(table_id: str, name: str, version: int) -> Content:
    """A Delta table state: where it lives and which log version is current."""
    return Content(DELTA_TABLE, table_id,
                   {"location": f"s3://lake/sales/{name}", "version": version})


def run_demo(say: Say = print, *, keep: bool = False) -> str:
    """Run the walkthrough on a fresh SQLite store in a temporary directory; return its URL.

    With `keep`, the store stays on disk so its URL can be passed to ``lakeversion --store``.
    """
    directory = Path(tempfile.mkdtemp(prefix="lakeversion-demo-"))
    url = f"sqlite:///{directory / 'store.db'}"
    try:
        with connect(url, author="demo") as catalog:
            walkthrough(catalog, say)
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
    if keep:
        say("")
        say(f"The demo store is kept: lakeversion --store {url} log")
    return url


def walkthrough(catalog: Catalog, say: Say = print) -> None:
    """The narrative itself, on any (empty) catalog."""

    def step(title: str) -> None:
        say("")
        say(f"== {title}")

    def indented(text: str) -> None:
        for line in text.splitlines():
            say(f"   {line}")

    main = catalog.branch("main")

    step("1. main starts with a namespace and two tables, committed atomically")
    with main.transaction("create sales tables") as tx:
        tx.put("sales", Content(ContentType.NAMESPACE, "ns-sales", {"properties": {}}))
        tx.put("sales.orders", delta_table("t-orders", "orders", 1))
        tx.put("sales.customers", delta_table("t-customers", "customers", 1))
    indented(render_entries(list(main.entries().items())))
    v1 = catalog.tag("v1").create(from_=main)
    say(f"   tagged main as {v1.name} ({short(v1.head.id)})")

    step("2. branch `etl` from main: O(1), nothing is copied")
    etl = catalog.branch("etl").create(from_=main)
    with etl.transaction("etl: load new orders, add returns table") as tx:
        tx.put("sales.orders", delta_table("t-orders", "orders", 2))
        tx.put("sales.returns", delta_table("t-returns", "returns", 1))
    say("   on etl: sales.orders moved to version 2, sales.returns added")
    say("   main is untouched; diff main -> etl:")
    indented(render_diff(main.diff(etl)))

    step("3. main moves on independently, then etl merges in cleanly (three-way)")
    main.commit([_put("sales.customers", delta_table("t-customers", "customers", 2))],
                message="update customers")
    result = etl.merge_into(main)
    indented(render_merge_result(result))

    step("4. two branches change the same table: a conflict, reported as data")
    fix = catalog.branch("fix-orders").create(from_=main)
    fix.commit([_put("sales.orders", delta_table("t-orders", "orders", 3))],
               message="fix-orders: repair bad rows")
    main.commit([_put("sales.orders", delta_table("t-orders", "orders", 4))],
                message="nightly load of orders")
    try:
        fix.merge_into(main)
        say("   (unexpected) the merge applied without a conflict")
    except ConflictError as conflict:
        say(f"   merge refused with {len(conflict.conflicts)} conflict(s):")
        for c in conflict.conflicts:
            say(f"   {c.type.value} on {c.key}: {c.message}")
        say(f"   main still at {short(main.head.id)}: nothing was written")

    step("5. resolve it: preview, then let the fix win for sales.orders")
    preview = fix.merge_into(main, dry_run=True, behaviors={"sales.orders": "source-wins"})
    indented(render_merge_result(preview))
    resolved = fix.merge_into(main, behaviors={"sales.orders": "source-wins"},
                              message="merge fix-orders (fix wins on sales.orders)")
    indented(render_merge_result(resolved))
    say(f"   sales.orders on main: {describe_content(main.table('sales.orders'))}")

    step("6. a bad job writes sales.orders; roll just that table back")
    main.commit([_put("sales.orders", delta_table("t-orders", "orders", 99))],
                message="bad job: truncated orders")
    say(f"   after the bad job: {describe_content(main.table('sales.orders'))}")
    rollback = main.rollback_table("sales.orders", to=main.ancestor(1))
    say(f"   rolled back to main~1 as commit {short(rollback.id)}")
    say(f"   sales.orders on main: {describe_content(main.table('sales.orders'))}")
    say(f"   sales.customers kept its newer state: "
        f"{describe_content(main.table('sales.customers'))}")

    step("7. history of main, and of sales.orders alone")
    indented(render_log(list(main.log())))
    say("   -- only commits that changed sales.orders:")
    indented(render_log(list(main.log(table="sales.orders"))))
    say("   -- the tag v1 still shows the first state:")
    indented(render_entries(list(v1.tables().items())))


def _put(key: str, content: Content) -> Put:
    return Put(Key.of(key), content)
