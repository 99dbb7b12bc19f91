"""Check engines of merge gates (`spark_lakeversion.versioning.gates`): SQL on DuckDB
reading the preview through our own Iceberg REST catalog (`sql.py`), Python callables
(`python.py`), webhooks (`webhook.py`); `runner.py` runs them in parallel with timeouts.

The SQL engine needs ``pip install 'spark-lakeversion[checks]'`` (DuckDB and its iceberg,
avro and httpfs extensions, carried by pip packages: nothing is downloaded at run time).
"""
