"""Where the JVM pieces come from: the Iceberg runtime jar and our shim jar."""

from __future__ import annotations

import os
from pathlib import Path

ICEBERG_MAVEN_COORDINATE = "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.2"
ICEBERG_JAR_NAME = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"


def find_iceberg_runtime_jar(explicit: str | None = None) -> Path | None:
    """An explicit path (or $LAKEVERSION_ICEBERG_JAR), else the PyPI wheel's copy, else None.

    None means: fall back to `spark.jars.packages` with `ICEBERG_MAVEN_COORDINATE`.
    """
    candidate = explicit or os.environ.get("LAKEVERSION_ICEBERG_JAR")
    if candidate:
        path = Path(candidate)
        if not path.is_file():
            from spark_lakeversion.errors import InvalidInput

            raise InvalidInput(f"Iceberg runtime jar {candidate} does not exist")
        return path
    try:
        import snowpark_connect_deps_iceberg  # type: ignore[import-untyped]
    except ImportError:
        return None
    jar = Path(snowpark_connect_deps_iceberg.__file__).parent / "jars" / ICEBERG_JAR_NAME
    return jar if jar.is_file() else None
