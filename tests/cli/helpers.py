"""Running the CLI in-process for the CLI tests: exit code checked, never a traceback."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from spark_lakeversion.cli.main import cli


def run(url: str, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--store", url, *args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result


def run_json(url: str, *args: str, code: int = 0, quiet: bool = True) -> Any:
    """The JSON document on stdout; with `quiet`, nothing may go to stderr."""
    result = run(url, "--output", "json", *args, code=code)
    if quiet:
        assert result.stderr == ""
    return json.loads(result.stdout)
