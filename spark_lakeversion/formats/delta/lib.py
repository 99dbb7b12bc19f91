"""deltalake, imported where it is used and never by loading the format: `deltalake()`
answers the module or the install hint as `InvalidInput`."""

from __future__ import annotations

from typing import Any

from spark_lakeversion.errors import InvalidInput

INSTALL_HINT = "Delta tables need deltalake: pip install spark-lakeversion[delta]"


def deltalake() -> Any:
    """The deltalake module, or `InvalidInput` with the install hint."""
    try:
        import deltalake as module
    except ImportError:
        raise InvalidInput(INSTALL_HINT) from None
    return module
