"""Run an example (or any Python snippet) the way users do, in its own process, under the
network guard of `netguard/sitecustomize.py`, and fail on any stray network call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NETGUARD = Path(__file__).resolve().parent / "netguard"

#: what the AWS SDKs print when they fall back to the instance-metadata service (Rust and
#: Java clients connect outside Python's socket module, so their attempts show here)
CLOUD_MARKERS = ("169.254.169.254", "IMDS", "instance metadata", "InstanceProfile")


def run_guarded(args: list[str], cwd: Path, *, timeout: float = 600,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in `cwd` under the guard; asserts it succeeded, opened no non-loopback
    connection and printed no cloud-metadata warning."""
    log = cwd / "netguard.log"
    log.unlink(missing_ok=True)
    path = os.pathsep.join([str(NETGUARD), str(REPO), os.environ.get("PYTHONPATH", "")])
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "PYTHONPATH": path,
                "LAKEVERSION_NETGUARD_LOG": str(log)}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    calls = log.read_text() if log.exists() else ""
    assert calls == "", f"non-loopback network calls:\n{calls}"
    output = done.stdout + done.stderr
    leaked = [m for m in CLOUD_MARKERS if m in output]
    assert not leaked, f"cloud metadata lookups ({leaked}):\n{output[-3000:]}"
    return done


def run_example(script: str, cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run examples/SCRIPT under the guard; its stdout."""
    return run_guarded([str(EXAMPLES / script), *args], cwd, env=env).stdout
