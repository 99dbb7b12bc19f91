"""The shim builder compiles with javac and rebuilds exactly when the sources change."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from spark_lakeversion.spark import build

pytestmark = pytest.mark.slow


def test_rebuilds_only_when_sources_change(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    sources = tmp_path / "src"
    shutil.copytree(build.SOURCE_DIR, sources)
    monkeypatch.setattr(build, "SOURCE_DIR", sources)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LAKEVERSION_SHIM_JAR", raising=False)

    jar = build.ensure_shim_jar()
    assert jar.is_relative_to(tmp_path / "cache" / "spark-lakeversion" / "shim")
    with zipfile.ZipFile(jar) as z:
        names = set(z.namelist())
    assert "io/lakeversion/spark/LakeVersionCatalog.class" in names
    assert "io/lakeversion/spark/LakeVersionSparkSessionExtensions.class" in names
    built = jar.stat().st_mtime_ns

    assert build.ensure_shim_jar() == jar
    assert jar.stat().st_mtime_ns == built  # nothing changed: no rebuild

    java = sources / "io" / "lakeversion" / "spark" / "RefSyntax.java"
    java.write_text(java.read_text() + "\n// touched\n")
    assert not build.is_up_to_date(build.find_iceberg_runtime_jar())
    rebuilt = build.ensure_shim_jar()
    assert rebuilt.parent != jar.parent  # a folder per input hash
    assert build.is_up_to_date(build.find_iceberg_runtime_jar())
    assert jar.stat().st_mtime_ns == built  # the old jar is left alone

    java.write_text(java.read_text() + "\nclass Broken {\n")
    with pytest.raises(build.BuildError, match="javac failed"):
        build.ensure_shim_jar()
