"""Where the open vocabularies find the codes of installed formats.

A table format declares itself in the entry-point group `FORMATS_ENTRY_POINT_GROUP`
(`tableformat.base.FormatRegistry` loads it there too). Loading an entry point imports the
format, which registers its codes, and a format that merely declares `content_type` /
`conflict_types` as strings gets them registered here. `Code` runs this on the first code
nobody registered, so stored data reads the same whichever module ran first; nothing here
imports a format by name.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from spark_lakeversion.model.codes import Code
from spark_lakeversion.model.contents import ContentType
from spark_lakeversion.model.merges import ConflictType

#: the entry-point group a table format declares itself in
FORMATS_ENTRY_POINT_GROUP = "spark_lakeversion.formats"


def load_installed_codes() -> None:
    """Register the codes of every installed format (one whose optional dependency is
    missing at import is skipped, as the format registry skips it)."""
    for ep in entry_points(group=FORMATS_ENTRY_POINT_GROUP):
        try:
            declared = ep.load()
        except ImportError:
            continue
        content_type = getattr(declared, "content_type", None)
        if isinstance(content_type, str):
            ContentType.register(content_type)
        for conflict in getattr(declared, "conflict_types", ()) or ():
            if isinstance(conflict, str):
                ConflictType.register(conflict)


Code.on_unknown.append(load_installed_codes)
