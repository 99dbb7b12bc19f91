"""Persistence only: the narrow storage interface (`spi.py`) and its SQL implementation
(`sql/`), and the content addressing of immutable objects (`objects.py`). The values it
stores live in `spark_lakeversion.model`; the algorithms over it in
`spark_lakeversion.versioning`, whose `open_store(url)` opens a store."""
