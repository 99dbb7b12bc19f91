"""The Iceberg REST catalog's logic, transport-free: every ref is a whole catalog.

`catalog.IcebergCatalog` composes the namespace, table and view services (`namespaces`,
`tables`, `views`) over one `context.CatalogContext` (store, warehouse, roots, FileIO);
`addressing` says which ref and namespace a request names, `requests` holds the spec's
typed request bodies, `commits` the store commit with gc's fence, `errors` the Iceberg
error types raised. The HTTP routes live in `spark_lakeversion.server.iceberg`.
"""
