"""The one build hook: the Spark shim's Java sources live in `jars/shim/src` (outside the
package, as the design card lays out), and setuptools' `package-data` cannot reach outside
a package. `build_py` copies them into the wheel as `spark_lakeversion/spark/shim/src`, so
an installed wheel compiles its shim as a checkout does (`spark_lakeversion/spark/build.py`
looks in the checkout's `jars/` first, then in that packaged copy). Everything else is in
pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIM_SOURCES = Path(__file__).resolve().parent / "jars" / "shim" / "src"
PACKAGED = Path("spark_lakeversion") / "spark" / "shim" / "src"


class BuildPyWithShim(build_py):
    """`build_py`, plus the shim's `.java` files copied into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's jars/ directly
        if not SHIM_SOURCES.is_dir():
            raise SystemExit(f"the shim's sources are missing: {SHIM_SOURCES}")
        target = Path(self.build_lib) / PACKAGED
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(SHIM_SOURCES, target, ignore=shutil.ignore_patterns("*.class"))


setup(cmdclass={"build_py": BuildPyWithShim})
