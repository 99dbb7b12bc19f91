"""`Transaction`: a branch's table changes staged in memory, committed as one commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Protocol

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import Commit, Content, Delete, Key, KeyLike, Operation, Put, Ref
from spark_lakeversion.versioning import VersionStore


class TransactionBranch(Protocol):
    """What a transaction needs of its branch (the API's `Branch` is one; it builds its
    transactions, so this module names no handle class)."""

    @property
    def store(self) -> VersionStore: ...

    def ref_for_write(self) -> Ref: ...

    def commit(self, operations: Sequence[Operation], *, message: str,
               properties: Mapping[str, str] | None = None,
               expected_head: str | None = None) -> Commit: ...


class Transaction:
    """Table changes staged in memory and committed atomically as one commit.

    The commit carries the branch head seen at ``__enter__`` as its expected head, so it
    lands only if no table it touches changed meanwhile (else `ConflictError`). Leaving
    the block by an exception commits nothing. Reads see the head at enter plus the
    changes staged so far.
    """

    def __init__(self, branch: TransactionBranch, message: str,
                 properties: Mapping[str, str] | None = None) -> None:
        self.branch = branch
        self.message = message
        self.properties = dict(properties or {})
        self.base_head: str | None = None
        self.commit: Commit | None = None  # set once the transaction has committed
        self._staged: dict[Key, Operation] = {}
        self._open = False
        self._entered = False

    @property
    def operations(self) -> list[Operation]:
        return list(self._staged.values())

    def put(self, key: KeyLike, content: Content) -> Transaction:
        self._check_open()
        if not isinstance(content, Content):
            raise InvalidInput(f"put() needs a Content value, not {type(content).__name__}")
        k = Key.of(key)
        self._staged[k] = Put(k, content)
        return self

    def delete(self, key: KeyLike) -> Transaction:
        self._check_open()
        k = Key.of(key)
        self._staged[k] = Delete(k)
        return self

    def get(self, key: KeyLike) -> Content | None:
        """The key's state as this transaction sees it (None if absent)."""
        self._check_open()
        k = Key.of(key)
        if k in self._staged:
            staged = self._staged[k]
            return staged.content if isinstance(staged, Put) else None
        assert self.base_head is not None
        return self.branch.store.get_content(self.base_head, k)

    def __enter__(self) -> Transaction:
        if self._entered:
            raise InvalidInput("a transaction can be entered only once")
        self.base_head = self.branch.ref_for_write().head
        self._entered = self._open = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._open = False
        if exc_type is not None:
            self._staged.clear()
            return
        if not self._staged:
            return
        operations = self.operations
        self._staged.clear()
        self.commit = self.branch.commit(operations, message=self.message,
                                         properties=self.properties or None,
                                         expected_head=self.base_head)

    def _check_open(self) -> None:
        if not self._open:
            raise InvalidInput("use the transaction inside its `with` block")

