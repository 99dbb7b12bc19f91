"""The Spark job of `airflow_dag.py`: append a day's orders to `lv.db.orders`.

    spark-submit ... airflow_spark_job.py ROWS [--bad]

A plain PySpark job: the branch and the server come from the operator's spark-submit
settings. `--bad` also writes an order with a negative amount, which the SQL check on
`main` (``SELECT * FROM db.orders WHERE amount < 0``) refuses at merge time.
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession


def main(rows: int, bad: bool) -> None:
    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lv.db")
    spark.sql("CREATE TABLE IF NOT EXISTS lv.db.orders (id BIGINT, amount DOUBLE) "
              "USING iceberg")
    orders = spark.range(rows).selectExpr("id", "CAST(id * 10 + 5 AS DOUBLE) AS amount")
    if bad:
        orders = orders.union(spark.sql("SELECT -1L AS id, -99.0D AS amount"))
    orders.writeTo("lv.db.orders").append()
    branch = spark.conf.get("spark.lakeversion.branch", "main")
    print(f"appended {orders.count()} orders on branch {branch}")
    spark.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10, "--bad" in sys.argv[2:])
