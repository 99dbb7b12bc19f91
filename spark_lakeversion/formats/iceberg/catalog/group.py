"""Group commit: requests to one lane (one table of one branch, one caller) that arrive
while a commit of that lane is in flight wait in a queue; when it finishes, the first of
them leads the next commit for the whole queue (up to `max_members`), so a burst of N
appends costs a few store commits instead of N. The queue is per process: with several
servers on one database the store's compare-and-swap stays the arbiter.

Each member gets its own answer (`Member.outcome`). A member waits at most `max_wait_s`
in the queue; then it leaves and runs alone, as it would have without the queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class Member(Generic[T, R]):
    """One queued request and its answer (a result or an exception)."""

    request: T
    result: R | None = None
    error: BaseException | None = None
    done: bool = False
    batch: list[Member[T, R]] = field(default_factory=list)
    wake: threading.Event = field(default_factory=threading.Event)

    def succeed(self, result: R) -> None:
        self.result, self.error, self.done = result, None, True

    def fail(self, error: BaseException) -> None:
        self.result, self.error, self.done = None, error, True

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass
class _Lane:
    pending: list[Member[Any, Any]] = field(default_factory=list)


class GroupCommits(Generic[T, R]):
    """The per-process queues of one catalog, one lane per key."""

    def __init__(self, max_members: int, max_wait_s: float) -> None:
        self.max_members = max(1, max_members)
        self.max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self._lanes: dict[Hashable, _Lane] = {}

    def busy(self, lane_key: Hashable) -> bool:
        """Whether a commit of this lane is in flight (a request arriving now will wait)."""
        with self._lock:
            return lane_key in self._lanes

    def submit(self, lane_key: Hashable, request: T,
               run: Callable[[list[Member[T, R]]], None]) -> R:
        """`request`'s answer: committed alone when its lane is idle, else with the
        requests queued behind the commit in flight. `run` must answer every member."""
        member: Member[T, R] = Member(request)
        with self._lock:
            lane = self._lanes.get(lane_key)
            if lane is None:
                self._lanes[lane_key] = _Lane()
                member.batch = [member]
            else:
                lane.pending.append(member)
        if not member.batch:
            if not member.wake.wait(self.max_wait_s):
                with self._lock:
                    queued = lane is not None and member in lane.pending
                    if queued and lane is not None:
                        lane.pending.remove(member)
                if queued:  # waited long enough: run alone, as without the queue
                    self._run(run, [member])
                    return member.outcome()
                member.wake.wait()  # picked up just now: its batch answers it
            if member.done:
                return member.outcome()
        try:
            self._run(run, member.batch)
        finally:
            self._hand_off(lane_key)
        return member.outcome()

    @staticmethod
    def _run(run: Callable[[list[Member[T, R]]], None], batch: list[Member[T, R]]) -> None:
        try:
            run(batch)
        except BaseException as exc:  # noqa: BLE001 - every member gets the answer
            for m in batch:
                if not m.done:
                    m.fail(exc)
        for m in batch:
            if not m.done:
                m.fail(RuntimeError("group commit left a member unanswered"))
            m.wake.set()

    def _hand_off(self, lane_key: Hashable) -> None:
        """The next batch's first member leads it; an empty queue closes the lane."""
        with self._lock:
            lane = self._lanes[lane_key]
            if not lane.pending:
                del self._lanes[lane_key]
                return
            batch = lane.pending[:self.max_members]
            del lane.pending[:self.max_members]
            batch[0].batch = batch
            batch[0].wake.set()
