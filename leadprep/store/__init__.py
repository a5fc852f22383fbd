"""The local SQLite state: three repositories sharing one connection.

- ``store.runs``: every run with its deal snapshots (week-over-week memory for sources that keep
  no history of their own);
- ``store.commitments``: what reps committed to in reviews, and how it went;
- ``store.deliveries``: the outbox's messages, exactly once per week and recipient.

Each write is one ``BEGIN IMMEDIATE`` transaction; WAL and a busy timeout let concurrent CLI
calls share the file. The schema is the numbered list in :mod:`leadprep.store.migrations`.

A file of an older schema is upgraded by the first command that writes; a command that only
reads works on an upgraded copy in memory and leaves the file as it is (``older_schema`` says so).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from leadprep.errors import DataError
from leadprep.store.access import AccessLinks
from leadprep.store.commitments import Commitments
from leadprep.store.deliveries import CLAIM_TIMEOUT, Deliveries
from leadprep.store.errors import database_error, reports_database_errors
from leadprep.store.migrations import (
    MIGRATIONS,
    OUR_TABLES,
    REBUILDING,
    REP_WEEKS_SCHEMA,
    SCHEMA_VERSION,
    MigrationError,
    migrate,
    written_by,
)
from leadprep.store.runs import Review, Runs
from leadprep.store.tasks import TaskRow, Tasks

__all__ = [
    "CLAIM_TIMEOUT",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Review",
    "Store",
    "StoreSize",
    "TaskRow",
    "database_error",
]


LOCK_WAIT = 10.0  # seconds a write waits for another process's write to finish

T = TypeVar("T")


def _when_unlocked(step: Callable[[], T], wait: float = LOCK_WAIT) -> T:
    """Run ``step``, trying again for up to LOCK_WAIT seconds while SQLite says "locked".

    SQLite's busy timeout covers most waits, but not all: while a new file is being set up by
    another process (its WAL being created), or when a read snapshot went stale, it answers
    "database is locked" at once. Every step given here has not changed anything yet, so
    trying again is safe."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass(frozen=True)
class StoreSize:
    """The state file's size in bytes, the part of it that is free pages, and its runs."""

    total: int
    free: int
    runs: int


@reports_database_errors
class Store:
    """A connection to the state database; use as a context manager or call :meth:`close`.

    Every SQLite failure leaves a public method as a :class:`DataError` that says whether the
    file is read-only, locked, damaged or not ours."""

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self.connection = connection
        self.path = path
        self.lock_wait = LOCK_WAIT
        self.runs = Runs(self)
        self.commitments = Commitments(self)
        self.deliveries = Deliveries(self)
        self.tasks = Tasks(self)
        self.access = AccessLinks(self)
        # The schema the file had when a read-only open found it older than this release's.
        self.older_schema: int | None = None

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> Store:
        """Open the state database at ``path``: read-write (created and migrated when needed), or
        read-only for commands that only read (an absent file then reads as empty)."""
        if readonly and not path.exists():
            return cls.memory()
        try:
            if readonly:
                uri = f"{path.resolve().as_uri()}?mode=ro"
                connection = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(path, timeout=10, isolation_level=None)
        except OSError as exc:
            raise DataError(
                f"Cannot create the folder for the state database {path}: {exc.strerror}.",
                hint="Set state.path in the config (or $LEADPREP_STATE) to a writable file.",
            ) from None
        except sqlite3.Error as exc:
            raise database_error(exc, path) from None
        store = cls(connection, path)
        try:
            store._setup(wal=True, readonly=readonly)
        except BaseException:
            connection.close()
            raise
        return store

    @classmethod
    def memory(cls) -> Store:
        """A throwaway in-memory store (the demo, tests)."""
        store = cls(sqlite3.connect(":memory:", isolation_level=None), None)
        store._setup(wal=False, readonly=False)
        return store

    def _setup(self, *, wal: bool, readonly: bool) -> None:
        try:
            self.set_lock_wait(LOCK_WAIT)
            self.connection.execute("PRAGMA foreign_keys = ON")
            version, tables = _when_unlocked(self._schema)
        except sqlite3.DatabaseError as exc:
            raise database_error(exc, self.path) from None
        if version == 0 and tables - OUR_TABLES - REBUILDING:
            raise DataError(
                f"{self.path} is an SQLite database, but not a leadprep state database "
                f"(it holds {', '.join(sorted(tables)[:5])}).",
                hint="Point state.path (or $LEADPREP_STATE) at another file.",
            )
        if version > SCHEMA_VERSION:
            raise DataError(
                f"The state database {self.path} was written by a newer leadprep "
                f"(schema {version}; this one knows {SCHEMA_VERSION}).",
                hint="Upgrade leadprep, or point state.path at another file.",
            )
        if readonly:
            if version < SCHEMA_VERSION:
                self._upgraded_copy(version)
            return
        try:
            if wal:
                _when_unlocked(lambda: self.connection.execute("PRAGMA journal_mode = WAL"))
            migrate(self.connection, self.transaction)
        except sqlite3.DatabaseError as exc:
            raise database_error(exc, self.path) from None
        except MigrationError as exc:
            raise DataError(
                f"The state database {self.path} could not be upgraded from "
                f"{written_by(version)}: {exc}. It was left as it was.",
                hint="Keep a copy of the file and report this; the release before this one "
                "still reads it.",
            ) from None

    def _upgraded_copy(self, version: int) -> None:
        """Read an older file through an upgraded copy in memory: every read then sees the
        current schema, and the file itself waits for the next command that writes."""
        copy = sqlite3.connect(":memory:", isolation_level=None)
        try:
            self.connection.backup(copy)
            migrate(copy, Store(copy, None).transaction)
        except (sqlite3.DatabaseError, MigrationError) as exc:
            copy.close()
            raise DataError(
                f"The state database {self.path} was written by {written_by(version)} and "
                f"cannot be read by this release ({exc}).",
                hint="Run `leadprep prep` once to upgrade it, then run this command again.",
            ) from None
        self.connection.close()
        self.connection = copy
        self.older_schema = version or None  # an empty file is not an older one

    def upgrade_note(self) -> str | None:
        """One line for a read-only command on a file of an older schema, else None."""
        if self.older_schema is None:
            return None
        history = (
            " and adds the reviews recorded before it to history and the rollup"
            if self.older_schema < REP_WEEKS_SCHEMA
            else ""
        )
        return (
            f"note: {self.path} was written by {written_by(self.older_schema)} and was read "
            f"through an upgraded copy; the next `leadprep prep` upgrades the file{history}."
        )

    def set_lock_wait(self, seconds: float) -> None:
        """How long a write waits for another process's write (SQLite's busy timeout too)."""
        self.lock_wait = seconds
        self.connection.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def _schema(self) -> tuple[int, set[str]]:
        version = self.connection.execute("PRAGMA user_version").fetchone()[0]
        rows = self.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return version, {row[0] for row in rows}

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE so concurrent writers queue instead of failing."""
        _when_unlocked(lambda: self.connection.execute("BEGIN IMMEDIATE"), self.lock_wait)
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        else:
            self.connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def size(self) -> StoreSize:
        """How big the file is and how much of it is free pages (reclaimed by :meth:`vacuum`)."""
        page_size = self.connection.execute("PRAGMA page_size").fetchone()[0]
        pages = self.connection.execute("PRAGMA page_count").fetchone()[0]
        free = self.connection.execute("PRAGMA freelist_count").fetchone()[0]
        return StoreSize(pages * page_size, free * page_size, self.runs.count())

    def backup(self, destination: Path) -> None:
        """A consistent copy of the whole database at ``destination`` (SQLite's online backup:
        safe while the server and other runs write; written beside it, then moved into place)."""
        partial = destination.with_name(f".{destination.name}.partial")
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(partial) as copy:
                self.connection.backup(copy)
            copy.close()
            partial.replace(destination)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise DataError(f"Cannot write the backup {destination}: {exc.strerror}.") from None
        except sqlite3.Error as exc:
            partial.unlink(missing_ok=True)
            raise database_error(exc, self.path) from None

    def vacuum(self) -> None:
        """Rewrite the file without its free pages (needs about its size again on disk)."""
        self.connection.execute("VACUUM")
        self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
