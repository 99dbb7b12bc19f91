"""The table-format plugin interface, one floor below the version-control layer:
`base.py` (`TableFormat`, `StateFiles`, the entry-point registry `FORMATS`), `merger.py`
(`ContentMerger`, what a format's merge returns) and `validate.py` (contents handed to a
commit, checked by their format; the one overlap rule). The formats themselves live in
`spark_lakeversion/formats/` above `versioning/` and `gc/`, which reach them only through
this registry."""
