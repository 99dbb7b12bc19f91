"""Check engines of merge gates (`spark_lakeversion.versioning.gates`): SQL on DuckDB over
exactly the preview, target and source states the gate hands over, confined to their files
(`sql.py`, its rules in `sql_rules.py`), Python callables the operator installed
(`python.py`), webhooks to allowed hosts (`webhook.py`); `runner.py` runs them in parallel
with timeouts and validates a check when it is added. None of them reaches the server.

The SQL engine needs ``pip install 'spark-lakeversion[checks]'`` (DuckDB and its iceberg,
avro, httpfs and delta extensions, carried by pip packages: nothing is downloaded at run
time).
"""
