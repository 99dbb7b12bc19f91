"""A plain PySpark job with no lakeversion code: the branch comes from spark-submit.

    lakeversion spark-submit --branch dev --create-branch -- examples/spark_submit_job.py 100

(`--create-branch` makes `dev` from `main` on a fresh store; without it a missing branch is
one error line before Spark starts.)

`lv.db.events` resolves on the branch given to spark-submit, so the same job writes to
`dev` in a test run and to `main` in production; its commits carry the Spark application
id and name (see `SHOW LOG` -> properties).
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession


def main(rows: int) -> None:
    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    branch = spark.conf.get("spark.lakeversion.branch", "main")
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lv.db")
    spark.sql("CREATE TABLE IF NOT EXISTS lv.db.events (id BIGINT, kind STRING) USING iceberg")
    spark.range(rows).selectExpr("id", "IF(id % 2 = 0, 'even', 'odd') AS kind") \
        .writeTo("lv.db.events").append()
    total = spark.table("lv.db.events").count()
    print(f"appended {rows} rows to lv.db.events on branch {branch}; it now has {total}")
    spark.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
