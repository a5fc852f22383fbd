"""What the repositories share: the store whose connection they use."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from leadprep.store import Store


class Repository:
    """One table's reads and writes, on the store's one connection and its transactions."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def path(self) -> Path | None:
        """The state file (None in memory), for error messages."""
        return self._store.path
