"""History over any storage: log (all commits or those changing one key), merge base, the
reflog and every table state ever stored (what gc reads), and gc's state."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import (
    MAX_AUDIT_RECORDS,
    AuditRecord,
    Commit,
    GcState,
    Key,
    KeyLike,
    ReflogEntry,
)
from spark_lakeversion.store.spi import Storage
from spark_lakeversion.versioning.interface import (
    TABLE_STATES_PAGE,
    LogPage,
    TableStatesPage,
    decode_page_token,
    encode_page_token,
)
from spark_lakeversion.versioning.names import FULL_HASH_LENGTH, is_commit_hash
from spark_lakeversion.versioning.objects import Objects
from spark_lakeversion.versioning.refs import Refs


class History:
    """Reads of the past: log, merge base, reflog, table states, gc's state, the audit
    trail."""

    def __init__(self, storage: Storage, objects: Objects, refs: Refs) -> None:
        self.storage = storage
        self.objects = objects
        self.refs = refs

    def _ancestors(self, head: str) -> Iterator[Commit]:
        """Every ancestor once, newest generation first (git's date-order-ish walk)."""
        seen = {head}
        heap = [self._walk_order(head)]
        while heap:
            *_, commit_id = heapq.heappop(heap)
            commit = self.objects.commit(commit_id)
            yield commit
            for parent in commit.parents:
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(heap, self._walk_order(parent))

    def _walk_order(self, commit_id: str) -> tuple[int, float, str]:
        commit, generation = self.objects.commit_and_generation(commit_id)
        return -generation, -commit.timestamp.timestamp(), commit_id

    def log(self, ref: str, *, key: KeyLike | None = None, limit: int = 50,
            page_token: str | None = None) -> LogPage:
        if not isinstance(limit, int) or limit < 1:
            raise InvalidInput("limit must be a positive integer")
        skip = decode_page_token(page_token) if page_token else 0
        head = self.refs.resolve(ref).commit_id
        touching = self.storage.commits_changing(Key.of(key)) if key is not None else None
        out: list[Commit] = []
        seen = 0
        for commit in self._ancestors(head):
            if touching is not None and commit.id not in touching:
                continue
            if seen >= skip:
                if len(out) == limit:
                    return LogPage(out, encode_page_token(skip + limit))
                out.append(commit)
            seen += 1
        return LogPage(out, None)

    def merge_base(self, a: str, b: str) -> str | None:
        return self.merge_base_of(self.refs.resolve(a).commit_id,
                                  self.refs.resolve(b).commit_id)

    def merge_base_of(self, a: str, b: str) -> str | None:
        """Highest-generation common ancestor; walks only commits above it."""
        if a == b:
            return a
        generation = self.objects.generation
        flags: dict[str, int] = {a: 1, b: 2}
        heap = [(-generation(a), a), (-generation(b), b)]
        heapq.heapify(heap)
        queued = {a, b}
        while heap:
            _, commit_id = heapq.heappop(heap)
            flag = flags[commit_id]
            if flag == 3:
                return commit_id
            for parent in self.objects.commit(commit_id).parents:
                flags[parent] = flags.get(parent, 0) | flag
                if parent not in queued:
                    queued.add(parent)
                    heapq.heappush(heap, (-generation(parent), parent))
        return None

    # ---- what gc reads ------------------------------------------------------------------
    def reflog(self, since: datetime) -> list[ReflogEntry]:
        in_force: dict[str, ReflogEntry] = {}  # per ref: its last entry before `since`
        later: list[ReflogEntry] = []
        for entry in self.storage.reflog():
            if entry.timestamp < since:
                in_force[entry.name] = entry
            else:
                later.append(entry)
        return sorted(in_force.values(), key=lambda e: e.timestamp) + later

    def table_states(self, page_token: str | None = None,
                     limit: int = TABLE_STATES_PAGE) -> TableStatesPage:
        if not isinstance(limit, int) or limit < 1:
            raise InvalidInput("limit must be a positive integer")
        if page_token is not None and (
                not isinstance(page_token, str) or len(page_token) != FULL_HASH_LENGTH
                or not is_commit_hash(page_token)):
            raise InvalidInput(f"page_token {str(page_token)[:64]!r} is not a page token "
                               "from a previous answer (pass next_page_token back)")
        states, after = self.storage.table_states(page_token, limit)
        return TableStatesPage(states, after)

    def location_owner(self, location: str, content_id: str | None = None
                       ) -> tuple[str, str] | None:
        return self.storage.location_owner(location, content_id)

    def gc_state(self) -> GcState:
        with self.storage.reading() as reader:
            return reader.gc_state()

    def begin_gc(self, cutoff: datetime, retained_since: datetime) -> GcState:
        return self.storage.begin_gc(cutoff, retained_since)

    # ---- the audit trail ------------------------------------------------------------------
    def record_audit(self, record: AuditRecord) -> None:
        self.storage.append_audit(record)

    def audit(self, since: datetime | None = None, principal: str | None = None,
              limit: int = MAX_AUDIT_RECORDS) -> list[AuditRecord]:
        if not isinstance(limit, int) or not 1 <= limit <= MAX_AUDIT_RECORDS:
            raise InvalidInput(f"limit must be an integer from 1 to {MAX_AUDIT_RECORDS}")
        return self.storage.audit(since, principal, limit)


__all__ = ["History"]
