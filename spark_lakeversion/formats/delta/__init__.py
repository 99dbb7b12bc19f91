"""Delta Lake tables as the second `TableFormat` plugin (issue 15).

A Delta table's state on a ref is ``Content(DELTA_TABLE, <metaData id>, {location, version,
root, writer})``: the log directory this ref reads, its log version, the table's own
directory (branch logs live under ``<root>/_branches/``) and the branch that owns the log
at ``location``. A branch shares its parent's state until its first write, which starts a
branch log listing the parent's live files by relative path (`branching.py`,
`log.add_path`), so no data file is copied. deltalake is imported where it is used
(`lib.deltalake()`), never by loading the format. Everything of Delta lives here: the
handle behind `Reference.delta` (`handle.py`) and the server's create and register
(`tables.py`) too; the server and the CLI only route to them.
"""
