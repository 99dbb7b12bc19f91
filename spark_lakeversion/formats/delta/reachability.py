"""What retained Delta states reach, for gc: each state's live data files (by absolute
path, wherever its log names them) and its log files up to its version. A table owns its
root, which holds its branch logs too, so a deleted branch's log and files are collected
once no retained state reaches them."""

from __future__ import annotations

from collections.abc import Mapping

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.iceberg.translate import (
    META_DIR,
    fork_of,
    reachable_names,
)
from spark_lakeversion.locations import AllowedRoots, normalize_path, parse_location
from spark_lakeversion.model import Content
from spark_lakeversion.tableformat.base import StateFiles


class DeltaStateFiles(StateFiles):
    def __init__(self, reachable: set[str], roots: AllowedRoots | None,
                 io: Mapping[str, str] | None = None) -> None:
        super().__init__(reachable)
        self.roots = roots
        self.io = io
        self.states_read = 0
        self._followed: set[tuple[str, int]] = set()
        self._logs: dict[str, list[tuple[int, str]]] = {}  # location -> (version, file)
        self._iceberg: dict[str, list[str]] = {}  # location -> its Iceberg metadata files
        self._iceberg_followed: set[tuple[str, int]] = set()

    def _refused(self, location: str) -> str | None:
        try:
            parsed = parse_location(location, "Delta location")
        except InvalidInput as exc:
            return exc.message
        if self.roots is not None and not self.roots.contains(parsed):
            return f"not read: outside the allowed locations ({self.roots.describe()})"
        return None

    def add(self, content: Content) -> None:
        self.table_ids.add(content.id)
        self.table_errors.setdefault(content.id, {})
        try:
            state = DeltaState.of(content)
        except InvalidInput as exc:
            self.table_errors[content.id][f"content {content.id}"] = exc.message
            return
        for where in (state.root, state.location):
            refused = self._refused(where)
            if refused:
                self.table_errors[content.id][where] = refused
                return
        self.table_locations.setdefault(content.id, set()).add(state.root)
        if (state.location, state.version) in self._followed:
            return
        self._followed.add((state.location, state.version))
        try:
            files = log.read_state(state.location, state.version, io=self.io)
            self.states_read += 1
            for fid in files.files:
                self.mark(fid)
            self._mark_log(state.location, state.version, state.root)
        except Exception as exc:  # noqa: BLE001 - any failure means "unknown": keep the table
            self.table_errors[content.id][state.location] = f"{type(exc).__name__}: {exc}"

    def _mark_log(self, location: str, version: int, root: str) -> None:
        entries = self._logs.get(location)
        if entries is None:
            entries = self._logs[location] = log.log_files(location, self.io)
        for number, uri in entries:
            if number <= version:
                self.mark(normalize_path(uri))
        self.mark(normalize_path(f"{log.log_dir(location)}/_last_checkpoint"))
        self._mark_iceberg(location, version, root)

    def _mark_iceberg(self, location: str, version: int, root: str) -> None:
        """The Iceberg metadata served for this log (`formats/delta/iceberg/translate.py`)
        that a state at `version` may reach: every file a version up to it wrote, and for a
        branch log its parent's up to the fork (its served history reuses them). Later
        versions' files (a log that moved on without a retained state) are collectable."""
        if (location, version) in self._iceberg_followed:
            return
        self._iceberg_followed.add((location, version))
        names = self._iceberg.get(location)
        directory = f"{location.rstrip('/')}/{META_DIR}"
        if names is None:
            names = self._iceberg[location] = storage.list_names(directory, self.io)
        for name in reachable_names(names, version):
            self.mark(normalize_path(f"{directory}/{name}"))
        first = storage.read_bytes(log.commit_uri(location, 0), self.io)
        fork = fork_of(first, root) if first is not None else None
        if fork is not None:
            self._mark_iceberg(fork[0], fork[1], root)

    def followed(self, content: Content) -> bool:
        fields = content.fields
        return (fields.get("location", "").rstrip("/"), fields.get("version")) in self._followed

    def dropped(self, content: Content, known: bool) -> tuple[list[str] | None, dict[str, str]]:
        """A dropped table owned its root; a state of a table gc knows (a deleted branch)
        lies under that root already."""
        if known or self.followed(content):
            return None, {}
        try:
            state = DeltaState.of(content)
        except InvalidInput as exc:
            return None, {f"content {content.id}": exc.message}
        refused = self._refused(state.root)
        if refused:
            return None, {state.root: refused}
        return [state.root], {}

    def counters(self) -> dict[str, int]:
        return {"delta_states_read": self.states_read}
