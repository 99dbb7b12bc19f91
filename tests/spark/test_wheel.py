"""The wheel ships the shim: installed into a fresh venv, away from the checkout,
`spark_lakeversion.spark.session()` compiles the shim from the sources the wheel carries
(copied from `jars/shim/src` by setup.py's build hook) into the
user's cache and runs SQL through the lakeversion catalog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

JOB = textwrap.dedent("""
    import json, sys
    import spark_lakeversion
    from spark_lakeversion.spark import build, session

    spark = session(warehouse=sys.argv[1], **{"spark.master": "local[1]",
                                              "spark.ui.enabled": "false"})
    spark.sql("CREATE NAMESPACE lv.db")
    spark.sql("CREATE TABLE lv.db.t (id INT) USING iceberg")
    spark.sql("INSERT INTO lv.db.t VALUES (7)")
    spark.sql("CREATE BRANCH dev")
    rows = [r.id for r in spark.sql("SELECT id FROM lv.`db@dev`.t").collect()]
    print(json.dumps({"package": spark_lakeversion.__file__, "rows": rows,
                      "jar": str(build.ensure_shim_jar())}))
    spark.stop()
""")


def _dependency_dirs() -> list[str]:
    """Where the running interpreter finds pyspark, pyiceberg and the rest: the temporary
    venv borrows them instead of downloading them again."""
    dirs = [sysconfig.get_paths()["purelib"]]
    dirs += [p for p in sys.path if p.endswith("site-packages") and p not in dirs]
    return dirs


def test_installed_wheel_starts_a_session_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("spark_lakeversion", "jars"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(source)], check=True, cwd=tmp_path)
    [wheel] = dist.glob("spark_lakeversion-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert "spark_lakeversion/spark/shim/src/io/lakeversion/spark/LakeVersionCatalog.java" \
            in z.namelist()

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--target", str(site), str(wheel)], check=True, cwd=tmp_path)
    (site / "zz_dependencies.pth").write_text("\n".join(_dependency_dirs()) + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "job.py").write_text(JOB)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LAKEVERSION_SHIM_JAR", "PYSPARK_GATEWAY_PORT")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), LAKEVERSION_HOME=str(tmp_path / "home"))
    proc = subprocess.run([str(python), "job.py", str(tmp_path / "warehouse")], cwd=outside,
                          env=env, capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, proc.stderr[-4000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["rows"] == [7]
    assert Path(answer["package"]).is_relative_to(site)  # the wheel's copy, not the checkout
    assert Path(answer["jar"]).is_relative_to(tmp_path / "cache" / "spark-lakeversion")
