"""Shared set-up of the file-safety tests: a warehouse `W`, a sibling `victim` directory with
planted old files, an extra allowed root, and a byte-exact listing of all three."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from spark_lakeversion.server.embedded import EmbeddedServer


@dataclass
class Site:
    """The directories of one test: the server writes under `warehouse` and `extra` only."""

    root: Path
    warehouse: Path
    extra: Path
    victim: Path
    server: EmbeddedServer

    @property
    def w(self) -> str:
        return f"file://{self.warehouse}"

    def listing(self) -> dict[str, str]:
        """Every file under the test's root (W, extra, victim, store aside): path -> sha256
        of its bytes, so a changed, deleted or new file all show."""
        out = {}
        for path in sorted(self.root.rglob("*")):
            if path.name.startswith("store.db") or not path.is_file() and not path.is_fifo():
                continue
            if path.is_fifo():
                out[str(path)] = "fifo"
                continue
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return out

    def new_files(self, before: dict[str, str]) -> set[str]:
        after = self.listing()
        assert all(after.get(p) == h for p, h in before.items()), "a file changed or vanished"
        return set(after) - set(before)


def plant(site_root: Path) -> tuple[Path, Path, Path]:
    warehouse, extra, victim = site_root / "W", site_root / "extra", site_root / "victim"
    for d in (warehouse, extra, victim / "metadata"):
        d.mkdir(parents=True)
    (victim / "secret.txt").write_text("old secret\n")
    (victim / "file.txt").write_text("old file\n")
    (victim / "metadata" / "00000-0000.metadata.json").write_text("{}\n")
    (warehouse / "planted.txt").write_text("planted in W\n")
    os.utime(victim / "secret.txt", (1_000_000_000, 1_000_000_000))
    return warehouse, extra, victim
