"""Where the Iceberg metadata served for a Delta log lives, and which of its files a state
reaches: the folder's naming, shared by the translation that writes it and gc that keeps
or collects it."""

from __future__ import annotations

import json
import re

from spark_lakeversion.formats.delta import log
from spark_lakeversion.locations import normalize_path

#: the hidden folder beside a log's `_delta_log` holding the Iceberg metadata served for it
META_DIR = "_lakeversion_iceberg"
VERSIONED = re.compile(r"^v(\d{20})[.-]")


def meta_dir(location: str) -> str:
    return f"{location.rstrip('/')}/{META_DIR}"


def metadata_location(location: str, version: int) -> str:
    return f"{meta_dir(location)}/v{version:020d}.metadata.json"


def reachable_names(names: list[str], version: int) -> list[str]:
    """The files of a log's Iceberg folder a state at `version` may reach (gc)."""
    out = []
    for name in names:
        match = VERSIONED.match(name)
        if match and int(match.group(1)) <= version:
            out.append(name)
    return out


def fork_of(first: bytes | None, root: str) -> tuple[str, int] | None:
    """The (parent log, version) a log's version 0 (its JSON) says it was forked from
    (`branching.start_branch_log`), when that parent lies inside the table `root`."""
    if not first:
        return None
    for line in first.decode("utf-8", "replace").splitlines():
        try:
            info = json.loads(line).get("commitInfo")
        except (ValueError, AttributeError):
            return None
        if not isinstance(info, dict):
            continue
        params = info.get("operationParameters") or {}
        parent, version = params.get("parentLocation"), params.get("parentVersion")
        if info.get("operation") != log.OP_BRANCH or not isinstance(parent, str) or \
                not str(version).isdigit():
            return None
        inside = normalize_path(root).rstrip("/") + "/"
        if not (normalize_path(parent) + "/").startswith(inside):
            return None
        return parent.rstrip("/"), int(str(version))
    return None
