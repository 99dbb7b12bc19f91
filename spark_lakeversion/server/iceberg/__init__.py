"""The Iceberg REST catalog under `/iceberg`, HTTP only: `routes` (parse a request, call
the catalog of `spark_lakeversion.formats.iceberg.catalog`, render), `render` (its answers
as JSON), `paging` (`pageToken`/`pageSize`) and `vending` (credentials a client asks for)."""
