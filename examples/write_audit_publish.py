"""Write-audit-publish: land data on a branch, check it there, publish by merging.

Readers of `main` never see unaudited rows: the load goes to an ephemeral branch, audits
query that branch with `db@branch.table`, and only a passing audit merges it into main
(atomically, for every table the load touched); a failing one drops the branch.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

from spark_lakeversion.spark import session

ROOT = Path("lakehouse") / "wap"


def load_and_publish(spark: object, batch: list[tuple[int, str, float]]) -> bool:
    sql = spark.sql  # type: ignore[attr-defined]
    branch = f"load-{uuid.uuid4().hex[:8]}"
    sql(f"CREATE BRANCH {branch}")
    # write: only the branch sees the batch
    spark.createDataFrame(batch, "id INT, customer STRING, amount DOUBLE") \
        .writeTo(f"db@{branch}.payments").append()  # type: ignore[attr-defined]
    # audit: on the branch, never on main
    bad = sql(f"SELECT count(*) AS n FROM lv.db@{branch}.payments "
              "WHERE amount <= 0 OR customer IS NULL").first().n
    dupes = sql(f"SELECT count(*) - count(DISTINCT id) AS n FROM lv.db@{branch}.payments") \
        .first().n
    if bad or dupes:
        print(f"   audit failed on {branch}: {bad} invalid, {dupes} duplicate rows; dropping it")
        sql(f"DROP BRANCH {branch}")
        return False
    # publish: one atomic merge
    for row in sql(f"MERGE BRANCH {branch} INTO main").collect():
        print(f"   published {row.table}: {row.action} -> {row.commit_id[:10]}")
    sql(f"DROP BRANCH {branch}")
    return True


def main() -> int:
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    spark = session(store=f"sqlite:///{ROOT / 'store.db'}",
                    warehouse=str((ROOT / "warehouse").resolve()),
                    **{"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    spark.sql("CREATE NAMESPACE lv.db")
    spark.sql("CREATE TABLE lv.db.payments (id INT, customer STRING, amount DOUBLE) "
              "USING iceberg")
    print("batch 1 (clean):")
    load_and_publish(spark, [(1, "ada", 10.0), (2, "bob", 25.5)])
    print("batch 2 (a negative amount):")
    load_and_publish(spark, [(3, "cy", 7.0), (4, "dee", -3.0)])
    print("main now:")
    for row in spark.sql("SELECT * FROM lv.db.payments ORDER BY id").collect():
        print(f"   {row.id}  {row.customer:<5} {row.amount}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
