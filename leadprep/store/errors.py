"""SQLite's failures, told as what happened to the state file and what to do about it."""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Any, TypeVar

from leadprep.errors import DataError

C = TypeVar("C", bound=type)


def database_error(exc: sqlite3.Error, path: Path | None) -> DataError:
    """A person's explanation of what SQLite said about the state file, with what to do."""
    text = str(exc).lower()
    where = str(path) if path else "the state database"
    if "readonly" in text or "read-only" in text:
        return DataError(
            f"The state database {where} is read-only, and this command needs to write to it.",
            hint=f"Let this user write the file and its folder (ls -l {where}), "
            "or point state.path (or $LEADPREP_STATE) at a writable file.",
        )
    if "locked" in text or "busy" in text:
        return DataError(
            f"The state database {where} stayed locked by another program for 10 seconds ({exc}).",
            hint="Another leadprep run (or an open sqlite3 shell) holds it: wait for it to "
            "finish, then run again.",
        )
    if "disk is full" in text or "disk i/o error" in text or "no space" in text:
        return DataError(
            f"The state database {where} could not be written: the disk is full or failing "
            f"({exc}). Nothing of this run was recorded.",
            hint=f"Free some space where it lives (df -h {Path(where).parent}), or point "
            "state.path (or $LEADPREP_STATE) at another disk, then run again.",
        )
    if "not a database" in text and path is not None and not _has_sqlite_header(path):
        return DataError(
            f"{where} is not a leadprep state database (not an SQLite file at all).",
            hint="Point state.path (or $LEADPREP_STATE) at another file.",
        )
    if "malformed" in text or "not a database" in text or "encrypted" in text:
        return DataError(
            f"The state database {where} is damaged ({exc}).",
            hint=f'Check it with: sqlite3 {where} "PRAGMA integrity_check". Restore your backup '
            f"of it, or move it aside (mv {where} {where}.damaged) to start a fresh history; "
            "commitments and send records live in it, so keep the damaged copy.",
        )
    if "unable to open" in text:
        return DataError(
            f"Cannot open the state database {where} ({exc}).",
            hint="Check that its folder exists and is readable, or set state.path "
            "(or $LEADPREP_STATE) to another file.",
        )
    return DataError(f"The state database {where} failed: {exc}.")


def _has_sqlite_header(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return True  # cannot tell: let the caller say what SQLite said


def _translating(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:  # OperationalError (locked, read-only) included
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                raise  # our bug, not the file's
            raise database_error(exc, self.path) from None

    return wrapper


def reports_database_errors(cls: C) -> C:
    """Every public method of ``cls`` (which has a ``path``) reports SQLite failures as a
    DataError naming the file (see :func:`database_error`)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and callable(member) and not isinstance(member, classmethod):
            setattr(cls, name, _translating(member))
    return cls
