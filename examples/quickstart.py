"""Quickstart: git for lakehouse tables, inside Spark (`make demo`).

Runs on the embedded default: a SQLite version store and a local warehouse under
$LAKEVERSION_HOME/quickstart (default ./lakehouse/quickstart; recreated on every run), with
an embedded server for the session.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.spark import session
from spark_lakeversion.versioning import lakeversion_home

ROOT = lakeversion_home() / "quickstart"


def step(number: int, title: str) -> None:
    print(f"\n== {number}. {title}")


def table(rows: list[Any], columns: list[str] | None = None) -> None:
    """Print rows as a small aligned table (hashes shortened to 10 characters)."""
    if not rows:
        print("   (no rows)")
        return
    columns = columns or list(rows[0].asDict())

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text[:10] if len(text) == 40 and all(c in "0123456789abcdef" for c in text) \
            else text

    cells = [[cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("   " + "  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("   " + "  ".join(v.ljust(w) for v, w in zip(row, widths)))


def main() -> int:
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    print(f"Starting Spark with an embedded lakeversion server (store {ROOT}/store.db) ...")
    spark = session(branch="main", store=f"sqlite:///{ROOT / 'store.db'}",
                    warehouse=str(ROOT / "warehouse"),
                    **{"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                       "spark.sql.shuffle.partitions": "2"})
    spark.sparkContext.setLogLevel("ERROR")
    sql = spark.sql

    def orders(ref: str = "main") -> list[Any]:
        return sql(f"SELECT id, item, amount, status FROM lv.db@{ref}.orders ORDER BY id") \
            .collect()

    step(1, "Create db.orders on main, keyed by id (its identifier field)")
    sql("CREATE NAMESPACE lv.db")
    sql("CREATE TABLE lv.db.orders (id INT NOT NULL, item STRING, amount DOUBLE, "
        "status STRING) USING iceberg")
    sql("ALTER TABLE lv.db.orders SET IDENTIFIER FIELDS id")
    sql("INSERT INTO lv.db.orders VALUES (1, 'book', 12.0, 'open'), (2, 'lamp', 30.0, 'open'),"
        " (3, 'desk', 150.0, 'open')")
    table(orders())

    step(2, "CREATE BRANCH dev")
    table(sql("CREATE BRANCH dev").collect())

    step(3, "Transform db@dev.orders in Spark SQL (add 10% tax); main is unchanged")
    sql("UPDATE db@dev.orders SET amount = round(amount * 1.1, 2)")
    print("   dev:")
    table(orders("dev"))
    print("   main:")
    table(orders("main"))

    step(4, "A hotfix lands on main; both sides rewrote the same file: merged row by row")
    hotfix = "UPDATE lv.db.orders SET status = 'cancelled' WHERE id = 2"
    print(f"   main: {hotfix}")
    sql(hotfix)
    table(sql("MERGE BRANCH dev INTO main").collect(), ["table", "action", "commit_id"])
    print("   row 2 has main's status and dev's amount (merged cell by cell):")
    table(orders())

    step(5, "Both sides change the same cell: a ROW_CONFLICT, settled ON ROW CONFLICT")
    sql("UPDATE lv.db@dev.orders SET status = 'shipped' WHERE id = 3")
    sql("UPDATE lv.db.orders SET status = 'lost' WHERE id = 3")
    table(sql("MERGE BRANCH dev INTO main DRY RUN").collect(),
          ["table", "action", "conflict_type", "message"])
    try:
        sql("MERGE BRANCH dev INTO main")
    except ConflictError as exc:
        print(f"   a real merge is refused: {type(exc).__name__}: {exc.message.splitlines()[0]}")
    table(sql("MERGE BRANCH dev INTO main ON ROW CONFLICT source_wins").collect(),
          ["table", "action", "commit_id"])
    table(orders())

    step(6, "Both sides append to db.orders: merged inside the table, no conflict")
    sql("INSERT INTO lv.db@dev.orders VALUES (4, 'chair', 45.0, 'open')")
    sql("INSERT INTO lv.db.orders VALUES (5, 'pen', 2.0, 'open')")
    table(sql("MERGE BRANCH dev INTO main").collect(), ["table", "action", "commit_id"])
    table(orders())

    step(7, "A bad write on main, undone with ROLLBACK TABLE")
    sql("INSERT INTO lv.db.orders VALUES (99, 'oops', -1.0, 'bogus')")
    print("   after the bad write:")
    table(orders())
    table(sql("ROLLBACK TABLE db.orders TO main~1").collect(), ["table", "commit_id", "message"])
    table(orders())

    step(8, "SHOW LOG")
    table(sql("SHOW LOG LIMIT 10").collect(), ["commit_id", "author", "message"])

    spark.stop()
    print("\nDone. Try it yourself: python -i -c \"from spark_lakeversion.spark import "
          "session; spark = session()\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
