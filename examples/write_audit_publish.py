"""Write-audit-publish with a real merge gate: land data on a branch, let the gate audit
the exact state the merge would publish, publish only if it passes.

`main` is protected (no direct writes) and carries one SQL check. Each batch goes to an
ephemeral branch and is merged into main; the check runs on the merge preview (main's rows
plus the batch), so a batch that duplicates an id already on main is caught too. A failing
check refuses the merge with `ChecksFailed` and its reports: nothing reaches main.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import spark_lakeversion as lv
from spark_lakeversion.errors import ChecksFailed
from spark_lakeversion.spark import session

ROOT = Path("lakehouse") / "wap"
AUDIT = """
SELECT id, 'invalid' AS problem FROM db.payments WHERE amount <= 0 OR customer IS NULL
UNION ALL
SELECT id, 'duplicate id' AS problem FROM db.payments GROUP BY id HAVING count(*) > 1
"""


def load_and_publish(spark: object, batch: list[tuple[int, str, float]]) -> bool:
    sql = spark.sql  # type: ignore[attr-defined]
    branch = f"load-{uuid.uuid4().hex[:8]}"
    sql(f"CREATE BRANCH {branch}")
    # write: only the branch sees the batch
    spark.createDataFrame(batch, "id INT, customer STRING, amount DOUBLE") \
        .writeTo(f"db@{branch}.payments").append()  # type: ignore[attr-defined]
    try:
        # audit + publish: the gate checks the merge preview, then moves main atomically
        for row in sql(f"MERGE BRANCH {branch} INTO main").collect():
            print(f"   published {row.table}: {row.action} -> {row.commit_id[:10]}")
        return True
    except ChecksFailed as failed:
        print(f"   audit failed on {branch}; main is unchanged (preview "
              f"{failed.preview and failed.preview[:10]} kept for debugging):")
        for report in failed.reports:
            print(f"     {report['name']}: {report['violations']} violation(s), "
                  f"e.g. {report['samples'][:2]}")
        return False
    finally:
        sql(f"DROP BRANCH {branch} FORCE")  # a refused batch is dropped with its commits


def main() -> int:
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    store = f"sqlite:///{ROOT / 'store.db'}"
    spark = session(store=store, warehouse=str((ROOT / "warehouse").resolve()),
                    **{"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    spark.sql("CREATE NAMESPACE lv.db")
    spark.sql("CREATE TABLE lv.db.payments (id INT, customer STRING, amount DOUBLE) "
              "USING iceberg")
    spark.sql("ALTER BRANCH main SET PROTECTED")
    with lv.connect(store) as catalog:  # checks are settings of the store, not data
        catalog.branch("main").add_check("payments_valid", sql=AUDIT,
                                         tables=["db.payments"])
    print("batch 1 (clean):")
    load_and_publish(spark, [(1, "ada", 10.0), (2, "bob", 25.5)])
    print("batch 2 (a negative amount, and id 2 again):")
    load_and_publish(spark, [(2, "cy", 7.0), (4, "dee", -3.0)])
    print("main now:")
    for row in spark.sql("SELECT * FROM lv.db.payments ORDER BY id").collect():
        print(f"   {row.id}  {row.customer:<5} {row.amount}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
