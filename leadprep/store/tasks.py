"""The task_writes table: each commitment's task in the CRM, so that it is written exactly once
whatever fails, and kept in step with the commitment (closed with its outcome, cancelled when
the commitment is replaced).

A create is marked ``attempted_at`` in its own transaction before it is sent: if its answer is
lost, the next sync looks the task up by its key before creating it again. Overlapping syncs
(``prep``, ``send``, ``sync``, ``commit``) claim rows first, as the outbox claims messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadprep.store.clock import now
from leadprep.store.deliveries import CLAIM_TIMEOUT
from leadprep.store.errors import reports_database_errors
from leadprep.store.repository import Repository

_COLUMNS = (
    "commitment_id, task_key, crm, remote_id, written_hash, state, attempted_at, error, updated_at"
)


@dataclass(frozen=True)
class TaskRow:
    """One commitment's task as the state file knows it."""

    commitment_id: int
    key: str
    crm: str
    remote_id: str | None
    written_hash: str | None
    state: str  # queued | written | refused | cancelled
    attempted_at: datetime | None  # a create went out and its answer is not known
    error: str | None
    updated_at: str


@reports_database_errors
class Tasks(Repository):
    """``store.tasks``: queue, claim and record the commitments' tasks in the CRM."""

    def queue(self, items: Iterable[tuple[int, str]], crm: str) -> int:
        """A row for each (commitment id, task key) that has none yet; returns how many."""
        with self._store.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT INTO task_writes (commitment_id, task_key, crm, state, updated_at)"
                " VALUES (?, ?, ?, 'queued', ?) ON CONFLICT (commitment_id) DO NOTHING",
                [(cid, key, crm, now()) for cid, key in items],
            )
            return db.total_changes - before

    def all(self) -> list[TaskRow]:
        rows = self._store.connection.execute(
            f"SELECT {_COLUMNS} FROM task_writes ORDER BY commitment_id"
        )
        return [_row(r) for r in rows]

    def claim(self, token: str) -> list[TaskRow]:
        """Take every row no live run holds (a claim older than CLAIM_TIMEOUT is taken over)."""
        stale = (datetime.now(UTC) - CLAIM_TIMEOUT).isoformat(timespec="seconds")
        with self._store.transaction() as db:
            db.execute(
                "UPDATE task_writes SET claim = ?, claimed_at = ?"
                " WHERE claim IS NULL OR claimed_at < ?",
                (token, now(), stale),
            )
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM task_writes WHERE claim = ? ORDER BY commitment_id",
                (token,),
            ).fetchall()
        return [_row(r) for r in rows]

    def release(self, token: str) -> None:
        with self._store.transaction() as db:
            db.execute(
                "UPDATE task_writes SET claim = NULL, claimed_at = NULL WHERE claim = ?", (token,)
            )

    def attempting(self, commitment_ids: list[int]) -> None:
        """Mark creates about to be sent: from now on their answer may be lost."""
        with self._store.transaction() as db:
            db.executemany(
                "UPDATE task_writes SET attempted_at = ?, updated_at = ? WHERE commitment_id = ?",
                [(_precise_now(), now(), cid) for cid in commitment_ids],
            )

    def written(self, commitment_id: int, remote_id: str, written_hash: str) -> None:
        with self._store.transaction() as db:
            db.execute(
                "UPDATE task_writes SET remote_id = ?, written_hash = ?, state = 'written',"
                " attempted_at = NULL, error = NULL, updated_at = ? WHERE commitment_id = ?",
                (remote_id, written_hash, now(), commitment_id),
            )

    def refused(self, commitment_id: int, error: str, written_hash: str) -> None:
        """The CRM refused this task as it is (validation, permission, a deleted deal): not
        tried again until the commitment changes (``written_hash`` remembers what was refused)."""
        with self._store.transaction() as db:
            db.execute(
                "UPDATE task_writes SET state = 'refused', error = ?, written_hash = ?,"
                " attempted_at = NULL, updated_at = ? WHERE commitment_id = ?",
                (error, written_hash, now(), commitment_id),
            )

    def failed(self, commitment_ids: list[int], error: str) -> None:
        """The CRM did not answer: the rows stay as they are, with the reason, for the next sync."""
        with self._store.transaction() as db:
            db.executemany(
                "UPDATE task_writes SET error = ?, updated_at = ? WHERE commitment_id = ?",
                [(error, now(), cid) for cid in commitment_ids],
            )

    def rekey(self, commitment_id: int, key: str) -> None:
        """The commitment under this id is another one now (the review page replaced it and the
        id came round again): its row starts over with the new key, queued."""
        with self._store.transaction() as db:
            db.execute(
                "UPDATE task_writes SET task_key = ?, remote_id = NULL, written_hash = NULL,"
                " state = 'queued', attempted_at = NULL, error = NULL, updated_at = ?"
                " WHERE commitment_id = ?",
                (key, now(), commitment_id),
            )

    def cancelled(self, commitment_id: int) -> None:
        with self._store.transaction() as db:
            db.execute(
                "UPDATE task_writes SET state = 'cancelled', error = NULL, updated_at = ?"
                " WHERE commitment_id = ?",
                (now(), commitment_id),
            )


def _precise_now() -> str:
    # to the microsecond: the wait for the CRM's search is counted from this moment, and a
    # second's rounding would let a sync look too early and create the task twice
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _row(row: tuple[Any, ...]) -> TaskRow:
    cid, key, crm, remote, digest, state, attempted, error, updated = row
    return TaskRow(
        cid,
        key,
        crm,
        remote,
        digest,
        state,
        datetime.fromisoformat(attempted) if attempted else None,
        error,
        updated,
    )
