"""Transactional runs: a job writes on its own branch, merged only if it succeeds.

    python examples/transactional_run.py

Python's ``catalog.run(on="main")`` is what ``lakeversion run -- <command>`` does for a
whole process. Here the writer is pyiceberg; a Spark job writes the same way to
``lv.`db@<run.branch>`.orders`` (or runs under ``lakeversion run -- spark-submit ...``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog.rest import RestCatalog

from spark_lakeversion.api import connect
from spark_lakeversion.server.embedded import start_embedded_server


def orders_on(server_url: str, ref: str) -> RestCatalog:
    return RestCatalog(ref, uri=f"{server_url}/iceberg", warehouse=ref)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lakeversion-runs-") as root:
        demo(Path(root))


def demo(root: Path) -> None:
    server = start_embedded_server(f"sqlite:///{root / 'store.db'}", str(root / "warehouse"))
    catalog = connect(server.url)
    setup = orders_on(server.url, "main")
    setup.create_namespace("db")
    setup.create_table("db.orders", pa.schema([("id", pa.int64()), ("amount", pa.float64())]))
    # merges into main must pass this check (a dbt-style query selecting bad rows)
    catalog.branch("main").add_check("no_negative_amounts",
                                     sql="SELECT * FROM db.orders WHERE amount < 0")

    with catalog.run(on="main") as run:
        orders_on(server.url, run.branch.name).load_table("db.orders").append(
            pa.table({"id": [1, 2], "amount": [10.0, 20.0]}))
    merged = run.merge_result
    assert merged is not None and merged.new_head is not None
    print(f"run {run.id}: merged into main at {merged.new_head[:12]}; "
          f"branch {run.branch.name} deleted: {not run.branch.exists()}")

    try:
        with catalog.run(on="main", branch="nightly_bad") as bad:
            orders_on(server.url, "nightly_bad").load_table("db.orders").append(
                pa.table({"id": [3], "amount": [-5.0]}))
    except Exception as refused:
        print(f"run {bad.id} refused: {type(refused).__name__}; main unchanged, "
              f"branch {bad.branch.name} kept: {bad.branch.exists()}")
    main_rows = orders_on(server.url, "main").load_table("db.orders").scan().to_arrow()
    print(f"main has {main_rows.num_rows} orders")
    server.stop()


if __name__ == "__main__":
    main()
