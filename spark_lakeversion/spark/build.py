"""Builds the JVM shim jar with javac, and rebuilds it only when its sources change.

No Maven or Gradle: the shim compiles against the jars pyspark already ships plus the
Iceberg runtime jar, which keeps set-up offline. The Java sources live in the checkout's
`jars/shim/src`; a wheel carries a copy as package data (`spark/shim/src`, copied by
setup.py's `build_py`), so an installed wheel builds its shim as a checkout does. The jar goes
to a per-user cache directory, in a folder named by the hash of every input (sources,
compiler, classpath): editing a `.java` file is enough to get a fresh jar on the next
`ensure_shim_jar()`, and installs of different versions never share a jar.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from spark_lakeversion.errors import InvalidInput, LakeVersionError
from spark_lakeversion.spark.jars import find_iceberg_runtime_jar

#: bump when this builder's output changes shape, so stale jars are rebuilt
BUILDER_VERSION = "2"
JAR_NAME = "lakeversion-spark-shim.jar"
JAVA_RELEASE = "11"  # java.net.http; Spark 3.5 runs on 8/11/17, the shim needs 11+



def find_sources() -> Path:
    """The checkout's `jars/shim/src` when running from a checkout (or an editable install),
    else the copy an installed wheel carries beside this module."""
    here = Path(__file__).resolve().parent
    root = here.parents[1]
    checkout = root / "jars" / "shim" / "src"
    if (root / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return here / "shim" / "src"


SOURCE_DIR = find_sources()


class BuildError(LakeVersionError):
    """javac is missing or the shim does not compile; the message has javac's output."""

    code = "SERVER_ERROR"


def pyspark_jars_dir() -> Path:
    import pyspark

    path = Path(pyspark.__file__).resolve().parent / "jars"
    if not path.is_dir():
        raise InvalidInput(f"pyspark at {path.parent} ships no jars/ directory")
    return path


def _sources() -> list[Path]:
    return sorted(SOURCE_DIR.rglob("*.java"))


def _javac() -> str:
    javac = shutil.which("javac")
    if javac is None and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "javac"
        javac = str(candidate) if candidate.is_file() else None
    if javac is None:
        raise BuildError("javac not found: install a JDK (11+) or set JAVA_HOME")
    return javac


def source_hash(iceberg_jar: Path | None = None) -> str:
    """Hash of everything that shapes the jar: sources, builder, classpath identity."""
    digest = hashlib.sha256()
    digest.update(f"builder={BUILDER_VERSION};release={JAVA_RELEASE}\n".encode())
    for source in _sources():
        digest.update(str(source.relative_to(SOURCE_DIR)).encode() + b"\0")
        digest.update(source.read_bytes() + b"\0")
    digest.update(f"iceberg={iceberg_jar.name if iceberg_jar else None}\n".encode())
    import pyspark

    digest.update(f"pyspark={pyspark.__version__}\n".encode())
    return digest.hexdigest()


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/spark-lakeversion/shim` (default `~/.cache/...`): built jars, one
    folder per input hash."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spark-lakeversion" / "shim"


def shim_jar_path(iceberg_jar: Path | None = None) -> Path:
    """Where the jar built from these inputs lives (whether or not it is built yet)."""
    return cache_dir() / source_hash(iceberg_jar)[:32] / JAR_NAME


def is_up_to_date(iceberg_jar: Path | None = None) -> bool:
    return shim_jar_path(iceberg_jar).is_file()


def ensure_shim_jar(iceberg_jar: str | Path | None = None, *, force: bool = False) -> Path:
    """The shim jar, compiled first if missing or older than its sources.

    $LAKEVERSION_SHIM_JAR points at a prebuilt jar (e.g. on a cluster without a JDK).
    Concurrent callers (tests, spark-submit) serialise on a lock file.
    """
    prebuilt = os.environ.get("LAKEVERSION_SHIM_JAR")
    if prebuilt:
        path = Path(prebuilt)
        if not path.is_file():
            raise InvalidInput(f"LAKEVERSION_SHIM_JAR={prebuilt} does not exist")
        return path
    if not SOURCE_DIR.is_dir():
        raise InvalidInput(f"shim sources not found at {SOURCE_DIR}; set LAKEVERSION_SHIM_JAR "
                           "to a prebuilt jar")
    iceberg = find_iceberg_runtime_jar(str(iceberg_jar) if iceberg_jar else None)
    if iceberg is None:
        raise InvalidInput("the Iceberg runtime jar is needed to compile the shim: "
                           "pip install snowpark-connect-deps-iceberg==1.0.2 or set "
                           "LAKEVERSION_ICEBERG_JAR")
    jar = shim_jar_path(iceberg)
    if not force and jar.is_file():
        return jar
    jar.parent.mkdir(parents=True, exist_ok=True)
    with open(jar.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not force and jar.is_file():  # another process built it meanwhile
                return jar
            _compile(iceberg, jar)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return jar


def _compile(iceberg: Path, jar: Path) -> None:
    expected = source_hash(iceberg)
    classpath = os.pathsep.join([str(pyspark_jars_dir() / "*"), str(iceberg)])
    with tempfile.TemporaryDirectory(prefix="lv-shim-") as tmp:
        classes = Path(tmp) / "classes"
        classes.mkdir()
        cmd = [_javac(), "--release", JAVA_RELEASE, "-encoding", "UTF-8", "-nowarn",
               "-Xlint:none", "-d", str(classes), "-cp", classpath,
               *[str(s) for s in _sources()]]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"javac failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        partial = jar.with_suffix(".partial")  # beside the jar: same file system
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("META-INF/MANIFEST.MF",
                         "Manifest-Version: 1.0\nCreated-By: spark_lakeversion.spark.build\n"
                         f"Lakeversion-Source-Hash: {expected}\n")
            for path in sorted(classes.rglob("*.class")):
                out.write(path, str(path.relative_to(classes)))
        os.replace(partial, jar)  # atomic: readers never see half a jar


def main(argv: list[str] | None = None) -> int:
    """`python -m spark_lakeversion.spark.build [--force]`: print the jar's path."""
    args = sys.argv[1:] if argv is None else argv
    try:
        path = ensure_shim_jar(force="--force" in args)
    except LakeVersionError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
