"""Where the JVM pieces come from: the Iceberg runtime jar, the AWS SDK v2 jars (for
Iceberg's S3FileIO) and our shim jar."""

from __future__ import annotations

import importlib.util
import os
import re
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


#: the AWS SDK v2 release whose jars Iceberg's S3FileIO runs on (1.10 is built with 2.29.x)
AWS_SDK_PACKAGE = "bodo_iceberg_connector"  # PyPI bodo-iceberg-connector, installed --no-deps
_SDK_JAR = re.compile(r"^s3-(2\.\d+\.\d+)\.jar$")
#: jars of the SDK's own dependencies (not versioned with it) that S3FileIO needs
_SDK_COMPANIONS = ("reactive-streams-", "eventstream-")


def find_aws_sdk_jars(explicit: str | None = None) -> list[Path]:
    """The AWS SDK v2 jars for Iceberg's S3FileIO, found like the Iceberg runtime jar: a
    directory given (or $LAKEVERSION_AWS_SDK_JARS), else the copy the PyPI package
    `bodo-iceberg-connector` carries (located without importing it), else none.

    Only the SDK v2 jars (`<artifact>-2.x.y.jar`) and their two companions are taken from
    that directory: the Hadoop, Hive and SDK v1 jars beside them would clash with Spark's."""
    candidate = explicit or os.environ.get("LAKEVERSION_AWS_SDK_JARS")
    if candidate:
        directory = Path(candidate)
        if not directory.is_dir():
            from spark_lakeversion.errors import InvalidInput

            raise InvalidInput(f"AWS SDK jar directory {candidate} does not exist")
    else:
        spec = importlib.util.find_spec(AWS_SDK_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            return []
        directory = Path(list(spec.submodule_search_locations)[0]) / "jars" / "libs"
        if not directory.is_dir():
            return []
    names = sorted(p.name for p in directory.iterdir())
    versions = [m.group(1) for m in map(_SDK_JAR.match, names) if m]
    if not versions:
        return []
    suffix = f"-{versions[-1]}.jar"
    return [directory / n for n in names
            if n.endswith(suffix) or (n.startswith(_SDK_COMPANIONS) and n.endswith(".jar"))]
