"""Store-only walkthrough: branches, a diff, a merge with a conflict, a rollback, the log.

Runs on a fresh throwaway SQLite store; `lakeversion demo` runs the same code.
Pass ``--keep`` to keep the store and explore it with the CLI afterwards.
"""

from __future__ import annotations

import sys

from spark_lakeversion.cli.demo import run_demo

if __name__ == "__main__":
    run_demo(print, keep="--keep" in sys.argv[1:])
