"""Iceberg tables: content values and metadata files (`content.py`), file safety
(`files.py`), the `TableFormat` (`format.py`), content-aware merge (`merge/`) and gc's
reachability (`reachability.py`, `avro.py`).

Importing the package imports nothing: pyiceberg loads with the module that needs it.
"""
