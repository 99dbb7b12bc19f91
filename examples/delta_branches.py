"""Delta Lake tables on catalog-wide branches, through deltalake (no Spark needed).

Creates a partitioned Delta table on main, branches `dev` (O(1)), edits rows on dev (its
first write starts a branch log naming main's files, copying no data), appends on main,
merges dev back under Delta's conflict rules, shows a conflict, rolls back, and collects
garbage. Runs in ./lakehouse/delta_example (recreated on every run).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa

from spark_lakeversion.api import connect
from spark_lakeversion.errors import ConflictError

ROOT = Path("lakehouse") / "delta_example"
SCHEMA = pa.schema([("id", pa.int64()), ("country", pa.string()), ("amount", pa.int64())])


def rows(*values: tuple[int, str, int]) -> pa.Table:
    return pa.table(list(zip(*values)), schema=SCHEMA)


def show(title: str, table: pa.Table) -> None:
    print(f"   {title}: {sorted(zip(*table.to_pydict().values()))}")


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    catalog = connect(f"sqlite:///{ROOT / 'store.db'}", warehouse=str(ROOT / "warehouse"))

    print("1. a Delta table on main")
    orders = catalog.branch("main").delta("sales.orders")
    orders.create(SCHEMA, partition_by=["country"])
    orders.append(rows((1, "fr", 10), (2, "fr", 20), (3, "de", 30)))
    catalog.tag("v1").create(from_="main")

    print("2. branch dev, edit rows there: main does not see them")
    catalog.branch("dev").create(from_="main")
    dev = catalog.branch("dev").delta("sales.orders")
    dev.update({"amount": "amount * 2"}, "country = 'de'")
    dev.delete("id = 1")
    show("dev ", dev.to_arrow())
    show("main", orders.to_arrow())
    print(f"   dev's branch log: {dev.state().location}")

    print("3. main appends meanwhile; merging dev replays its actions (no data copied)")
    orders.append(rows((4, "it", 40)))
    result = catalog.store.merge("dev", "main")
    stats = result.details[0].statistics
    print(f"   {result.details[0].action.value}, data bytes written: "
          f"{stats['replay']['data_bytes_written']}")
    show("main", orders.to_arrow())

    print("4. both sides rewrite the same file: Delta's ConcurrentDeleteDelete")
    catalog.branch("dev2").create(from_="main")
    catalog.branch("dev2").delta("sales.orders").delete("id = 4")
    orders.delete("id = 4")
    try:
        catalog.store.merge("dev2", "main")
    except ConflictError as exc:
        for conflict in exc.result.conflicts if exc.result else []:
            print(f"   conflict {conflict.type.value}: {conflict.message}")

    print("5. roll main's table back to tag v1 (a new log version)")
    orders.rollback("v1")
    show("main", orders.to_arrow())
    print(f"   last operation: {orders.history(1)[0]['operation']}")

    print("6. gc: delete dev's branch; its files go once no ref reaches them")
    catalog.branch("dev").delete()
    catalog.branch("dev2").delete(force=True)  # its delete never merged
    report = catalog.collect_garbage(roots=catalog.roots(), older_than="0s", force=True,
                                     keep_commits_since="0s", dry_run=True)
    print(f"   dry run with no grace period: {len(report.garbage)} file(s) no ref reaches")
    catalog.close()


if __name__ == "__main__":
    main()
