"""The catalog's settings for concurrent appends: a value of its own, so the context that
carries them and the committer that follows them import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppendSettings:
    """How the catalog treats concurrent appends, fixed when the catalog is built
    (`lakeversion serve --no-rebase-appends --group-commit-max N --group-commit-wait S`)."""

    #: rebase pure appends onto the head (off: every stale append answers 409, as before)
    rebase: bool = True
    #: most appends committed together in one store commit
    group_max: int = 32
    #: longest a queued append waits for its turn before it commits alone (seconds)
    group_wait_s: float = 10.0
    #: how often a chain is rebuilt when the store refused it (the table moved meanwhile)
    store_retries: int = 50
