"""`lakeversion bench gc`: time to compute reachability over a large branched catalog.

The catalog (default 1,000 tables x 20 snapshots across 10 branches) is built directly
with pyiceberg's manifest and manifest-list writers, as real fast appends lay it out: each
snapshot adds one manifest and carries every earlier manifest forward, so manifests are
shared between snapshots, metadata files and branches. `main` gets the first half of the
snapshots of every table (one store commit per round of appends), then each branch forks
from `main` and appends its share of the rest. Data files are named, not written:
reachability never opens them.

Reported: build and reachability seconds, manifests read vs. distinct manifests (equal,
with at most one read per file, when the read-once cache works) vs. manifest references
in all manifest lists (what a per-snapshot reader would read), and the other counts.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {"tables": 1000, "snapshots": 20, "branches": 10, "full_gc": False}


def _template() -> dict[str, Any]:
    """A valid v2 metadata document (pyiceberg's own), to copy per state."""
    from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
    from pyiceberg.schema import Schema
    from pyiceberg.table.metadata import new_table_metadata
    from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
    from pyiceberg.types import LongType, NestedField

    schema = Schema(NestedField(1, "id", LongType(), required=True))
    metadata = new_table_metadata(schema, UNPARTITIONED_PARTITION_SPEC, UNSORTED_SORT_ORDER,
                                  "file:///placeholder", {}, table_uuid=uuid.uuid4())
    data: dict[str, Any] = json.loads(metadata.model_dump_json())
    return data


class _TableBuilder:
    """One table's files: manifests, manifest lists and metadata, written like appends."""

    def __init__(self, root: Path, name: str, template: dict[str, Any], io: Any) -> None:
        from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
        from pyiceberg.schema import Schema
        from pyiceberg.types import LongType, NestedField

        self.location = (root / name).as_uri()
        self.uuid = str(uuid.uuid4())
        self.template = template
        self.io = io
        self.spec = UNPARTITIONED_PARTITION_SPEC
        self.schema = Schema(NestedField(1, "id", LongType(), required=True))
        (root / name / "metadata").mkdir(parents=True)
        self.version = 0

    def snapshot(self, snapshot_id: int, parent: dict[str, Any] | None,
                 manifests: list[Any], sequence_number: int) -> tuple[dict[str, Any], list[Any]]:
        """One fast append: a new manifest for one new data file, plus all earlier ones."""
        from pyiceberg.manifest import (
            DataFile,
            DataFileContent,
            FileFormat,
            ManifestEntry,
            ManifestEntryStatus,
            write_manifest,
            write_manifest_list,
        )
        from pyiceberg.typedef import Record

        tag = uuid.uuid4().hex
        data_file = DataFile.from_args(
            content=DataFileContent.DATA, file_path=f"{self.location}/data/{tag}.parquet",
            file_format=FileFormat.PARQUET, partition=Record(), record_count=1,
            file_size_in_bytes=512)
        manifest_path = f"{self.location}/metadata/{tag}-m0.avro"
        with write_manifest(2, self.spec, self.schema, self.io.new_output(manifest_path),
                            snapshot_id, "null") as writer:
            writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED,
                                               snapshot_id=snapshot_id, data_file=data_file))
        all_manifests = [writer.to_manifest_file(), *manifests]
        list_path = f"{self.location}/metadata/snap-{snapshot_id}-1-{tag}.avro"
        with write_manifest_list(2, self.io.new_output(list_path), snapshot_id,
                                 parent["snapshot-id"] if parent else None, sequence_number,
                                 "null") as list_writer:
            list_writer.add_manifests(all_manifests)
        snap = {"snapshot-id": snapshot_id, "sequence-number": sequence_number,
                "timestamp-ms": int(time.time() * 1000), "manifest-list": list_path,
                "summary": {"operation": "append"}, "schema-id": 0}
        if parent:
            snap["parent-snapshot-id"] = parent["snapshot-id"]
        return snap, all_manifests

    def metadata(self, snapshots: list[dict[str, Any]], log: list[str]) -> str:
        """Write a metadata file whose current snapshot is the last one."""
        doc = copy.copy(self.template)
        current = snapshots[-1]
        doc.update({
            "table-uuid": self.uuid, "location": self.location, "snapshots": snapshots,
            "current-snapshot-id": current["snapshot-id"],
            "last-sequence-number": current["sequence-number"],
            "refs": {"main": {"snapshot-id": current["snapshot-id"], "type": "branch"}},
            "snapshot-log": [{"snapshot-id": s["snapshot-id"], "timestamp-ms": s["timestamp-ms"]}
                             for s in snapshots],
            "metadata-log": [{"metadata-file": f, "timestamp-ms": int(time.time() * 1000)}
                             for f in log],
            "last-updated-ms": int(time.time() * 1000),
        })
        self.version += 1
        path = f"{self.location}/metadata/{self.version:05d}-{uuid.uuid4()}.metadata.json"
        Path(path[len("file://"):]).write_text(json.dumps(doc))
        return path

    def content(self, metadata_location: str, snapshot_id: int) -> Any:
        from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
        from spark_lakeversion.model import Content

        return Content(ICEBERG_TABLE, self.uuid, {
            "metadata_location": metadata_location, "snapshot_id": snapshot_id,
            "schema_id": 0, "spec_id": 0, "sort_order_id": 0})


#: per table: its snapshot chain, current manifests and metadata log on one branch
_Chain = tuple[list[dict[str, Any]], list[Any], list[str]]


def _append_round(builders: list[_TableBuilder], chains: list[_Chain],
                  first_id: int) -> list[Any]:
    """One fast append to every table, extending each chain in place; snapshot ids are
    `first_id`, `first_id + 1`, ... Returns the store Puts of the new table states."""
    from spark_lakeversion.model import Key, Put

    puts = []
    for offset, (builder, (snaps, manifests, log)) in enumerate(zip(builders, chains)):
        snap, all_manifests = builder.snapshot(first_id + offset, snaps[-1] if snaps else None,
                                               manifests, len(snaps) + 1)
        snaps.append(snap)
        manifests[:] = all_manifests
        location = builder.metadata(list(snaps), list(log))
        log.append(location)
        puts.append(Put(Key(("db", Path(builder.location).name)),
                        builder.content(location, snap["snapshot-id"])))
    return puts


def build(root: Path, tables: int, snapshots: int, branches: int) -> tuple[Any, dict[str, Any]]:
    """The branched catalog under `root`; returns (store, counts)."""
    from pyiceberg.io.pyarrow import PyArrowFileIO

    from spark_lakeversion.model import RefType
    from spark_lakeversion.wiring import open_store

    store = open_store(f"sqlite:///{root / 'store.db'}")
    io = PyArrowFileIO()
    template = _template()
    builders = [_TableBuilder(root / "warehouse" / "db", f"t{i:05d}", template, io)
                for i in range(tables)]
    on_main = max(1, snapshots // 2)
    per_branch = max(0, (snapshots - on_main) // max(branches, 1))
    next_id = 1
    chains: list[_Chain] = [([], [], []) for _ in builders]
    for _round in range(on_main):
        store.commit("main", _append_round(builders, chains, next_id),
                     message=f"append round {_round}")
        next_id += len(builders)
    for b in range(branches):
        name = f"branch-{b:02d}"
        store.create_ref(name, RefType.BRANCH, "main")
        # each branch continues every table's chain from main's head
        forks: list[_Chain] = [(list(snaps), list(manifests), list(log))
                               for snaps, manifests, log in chains]
        for _round in range(per_branch):
            store.commit(name, _append_round(builders, forks, next_id),
                         message=f"{name} append round {_round}")
            next_id += len(builders)
    counts = {"snapshots_per_table": on_main + branches * per_branch,
              "manifests_written": next_id - 1}  # one manifest per snapshot written
    return store, counts


def run(**options: Any) -> dict[str, Any]:
    """Build the catalog in a temporary directory, then time reachability over it."""
    from spark_lakeversion.gc import collect_garbage, compute_reachability

    opts = {**DEFAULTS, **options}
    tables, snapshots, branches = int(opts["tables"]), int(opts["snapshots"]), \
        int(opts["branches"])
    root = Path(tempfile.mkdtemp(prefix="lakeversion-bench-gc-"))
    try:
        started = time.perf_counter()
        store, counts = build(root, tables, snapshots, branches)
        build_seconds = time.perf_counter() - started
        started = time.perf_counter()
        roots = [(root / "warehouse").as_uri()]
        reach, commits, states = compute_reachability(store, roots=roots)
        seconds = time.perf_counter() - started
        counters = reach.counters()
        figures: dict[str, Any] = {
            "tables": tables, "branches": branches, **counts,
            "refs": len(store.list_refs()), "retained_commits": commits,
            "table_states": states,
            "build_seconds": round(build_seconds, 2),
            "reachability_seconds": round(seconds, 2),
            **{name: counters[name] for name in (
                "metadata_files_read", "manifest_lists_read", "manifests_read",
                "manifests_total", "manifest_references", "max_reads_per_file")},
            "each_manifest_read_at_most_once": counters["max_reads_per_file"] <= 1
            and counters["manifests_read"] == counters["manifests_total"],
            "files_reachable": len(reach.reachable),
        }
        if opts["full_gc"]:
            started = time.perf_counter()
            report = collect_garbage(store, roots=roots, older_than="0s", force=True,
                                     dry_run=True)
            figures["gc_skipped_tables"] = len(report.skipped_tables)
            figures["gc_dry_run_seconds"] = round(time.perf_counter() - started, 2)
            figures["gc_files_listed"] = report.files_listed
            figures["gc_garbage_files"] = len(report.garbage)
        store.close()
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)
