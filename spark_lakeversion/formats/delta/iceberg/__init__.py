"""Every Delta table is also an Iceberg table: Iceberg metadata generated from a Delta log
at one version (`translate.py`, with `schema.py` and `stats.py`), and Iceberg commits
turned back into one Delta version (`commit.py`). pyiceberg is imported by the modules,
not by this package."""
