"""`GcReport`: what a gc run found and did, and its JSON document (CLI, REST, bench)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from spark_lakeversion.gc.files import ListedFile


@dataclass
class GcReport:
    """What a gc run found and did; `to_dict()` is the JSON report (CLI, REST, bench)."""

    dry_run: bool
    now: datetime
    older_than: timedelta
    keep_commits_since: timedelta
    refs: int = 0
    retained_commits: int = 0
    tables: int = 0
    table_states: int = 0
    locations: list[str] = field(default_factory=list)
    protected_locations: list[str] = field(default_factory=list)
    files_listed: int = 0
    files_reachable: int = 0
    metadata_files_read: int = 0
    manifest_lists_read: int = 0
    manifests_read: int = 0
    manifests_total: int = 0
    manifest_references: int = 0
    max_reads_per_file: int = 0
    rechecks: int = 0
    spared_by_recheck: int = 0
    kept_young: int = 0
    bytes_kept_young: int = 0
    garbage: list[ListedFile] = field(default_factory=list)
    deleted: int = 0
    bytes_reclaimed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    #: tables gc left alone, each {"content_id", "keys", "locations", "reasons"}: a location
    #: outside the allowed roots or shared with another table, or unreadable history
    skipped_tables: list[dict[str, Any]] = field(default_factory=list)
    gc_epoch: int | None = None  # the epoch this run recorded (None for a dry run)
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GcReport:
        """The report back from its JSON document (what `POST /api/v1/gc` answers)."""
        report = cls(dry_run=bool(data["dry_run"]), now=datetime.fromisoformat(data["now"]),
                     older_than=timedelta(seconds=data["older_than_seconds"]),
                     keep_commits_since=timedelta(seconds=data["keep_commits_since_seconds"]))
        for name in ("refs", "retained_commits", "tables", "table_states", "files_listed",
                     "files_reachable", "metadata_files_read", "manifest_lists_read",
                     "manifests_read", "manifests_total", "manifest_references",
                     "max_reads_per_file", "rechecks", "spared_by_recheck", "kept_young",
                     "bytes_kept_young", "bytes_reclaimed"):
            setattr(report, name, int(data.get(name, 0)))
        report.deleted = int(data.get("deleted_files", 0))
        report.locations = list(data.get("locations", []))
        report.protected_locations = list(data.get("protected_locations", []))
        report.garbage = [ListedFile(f["path"], int(f["size"]),
                                     datetime.fromisoformat(f["mtime"]) if f.get("mtime")
                                     else None) for f in data.get("files", [])]
        report.errors = list(data.get("errors", []))
        report.skipped_tables = list(data.get("skipped_tables", []))
        report.gc_epoch = data.get("gc_epoch")
        report.seconds = dict(data.get("seconds", {}))
        return report

    @property
    def garbage_bytes(self) -> int:
        return sum(f.size for f in self.garbage)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "older_than_seconds": self.older_than.total_seconds(),
            "keep_commits_since_seconds": self.keep_commits_since.total_seconds(),
            "grace_cutoff": (self.now - self.older_than).isoformat(),
            "history_cutoff": (self.now - self.keep_commits_since).isoformat(),
            "refs": self.refs,
            "retained_commits": self.retained_commits,
            "tables": self.tables,
            "table_states": self.table_states,
            "locations": self.locations,
            "protected_locations": self.protected_locations,
            "files_listed": self.files_listed,
            "files_reachable": self.files_reachable,
            "metadata_files_read": self.metadata_files_read,
            "manifest_lists_read": self.manifest_lists_read,
            "manifests_read": self.manifests_read,
            "manifests_total": self.manifests_total,
            "manifest_references": self.manifest_references,
            "max_reads_per_file": self.max_reads_per_file,
            "rechecks": self.rechecks,
            "spared_by_recheck": self.spared_by_recheck,
            "kept_young": self.kept_young,
            "bytes_kept_young": self.bytes_kept_young,
            "garbage_files": len(self.garbage),
            "garbage_bytes": self.garbage_bytes,
            "deleted_files": self.deleted,
            "bytes_reclaimed": self.bytes_reclaimed,
            "files": [f.to_dict() for f in self.garbage],
            "errors": self.errors,
            "skipped_tables": self.skipped_tables,
            "gc_epoch": self.gc_epoch,
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }
