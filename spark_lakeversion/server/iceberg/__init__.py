"""The Iceberg REST catalog under `/iceberg`, one layer per file: `addressing` (which ref
and namespace a request names), `requests` (bodies), `catalog` (the logic, over
`namespaces`, `base` and `commits`; returns domain values), `render` (their JSON) and
`routes` (HTTP)."""
