"""examples/access_control.py runs as a user runs it (own process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "access_control.py"


def test_access_control_example(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "refused: access denied: principal 'etl' lacks 'create' on ref 'dev'" in out
    assert "refused: access denied: principal 'etl' lacks 'write' on ref 'main'" in out
    assert "etl sees refs: ['etl-daily', 'main']" in out
    assert "create_ref dev        denied" in out and "merge      main       done" in out
