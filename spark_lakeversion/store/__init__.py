"""Persistence only: the narrow storage interface (`spi.py`) and its SQL implementation
(`sql/`), the content addressing of immutable objects (`objects.py`), and the values every
layer shares (`model.py`, `gc_state.py`). The algorithms over it live in
`spark_lakeversion.versioning`, whose `open_store(url)` opens a store."""
