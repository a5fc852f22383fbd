"""The commitments table: what each rep committed to in a review, and how it went."""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any

from leadprep.errors import UsageError
from leadprep.model import Commitment, FollowUp, NewCommitment
from leadprep.store.clock import now, optional_date
from leadprep.store.errors import reports_database_errors
from leadprep.store.repository import Repository


def _insert(db: sqlite3.Connection, item: NewCommitment) -> int:
    cursor = db.execute(
        "INSERT INTO commitments (deal_id, deal_name, rep_email, text, success, due, made_on,"
        " created_at, kept_beside, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item.deal_id,
            item.deal_name,
            item.rep_email.lower(),
            item.text,
            item.success,
            item.due.isoformat() if item.due else None,
            item.made_on.isoformat(),
            now(),
            item.kept_beside,
            item.recorded_by,
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


@reports_database_errors
class Commitments(Repository):
    """``store.commitments``: recorded in one transaction each call, read oldest first."""

    def add(self, items: list[NewCommitment]) -> list[int]:
        """Record several commitments in one transaction (all or none); returns their ids."""
        with self._store.transaction() as db:
            return [_insert(db, item) for item in items]

    def replace(self, old_id: int, item: NewCommitment) -> int:
        """Record ``item`` instead of commitment ``old_id``, made at the same review and not yet
        followed up (the rep changed their mind in the 1:1); the old one is deleted. Returns the
        new id; nothing changes when the old one cannot be replaced."""
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT made_on, status FROM commitments WHERE id = ?", (old_id,)
            ).fetchone()
            if row is None or row[0] != item.made_on.isoformat() or row[1] != "open":
                raise UsageError(
                    f"Commitment #{old_id} is not an open one from this review: it cannot be "
                    "replaced.",
                    hint="Record the new one beside it, or follow the old one up.",
                )
            db.execute("DELETE FROM commitments WHERE id = ?", (old_id,))
            return _insert(db, item)

    def all(
        self,
        *,
        rep_email: str | None = None,
        status: str | None = None,
        made_before: date | None = None,
        made_since: date | None = None,
    ) -> list[Commitment]:
        """Commitments, oldest first, filtered by rep, status and the review they were made in."""
        where, args = ["1=1"], []
        if rep_email:
            where.append("rep_email = ?")
            args.append(rep_email.lower())
        if status:
            where.append("status = ?")
            args.append(status)
        if made_before:
            where.append("made_on < ?")
            args.append(made_before.isoformat())
        if made_since:
            where.append("made_on >= ?")
            args.append(made_since.isoformat())
        return self._select(" AND ".join(where), args)

    def get(self, commitment_id: int) -> Commitment | None:
        found = self._select("id = ?", [commitment_id])
        return found[0] if found else None

    def follow_up(
        self,
        commitment_id: int,
        *,
        status: str,
        note: str | None,
        on: date,
        worked: bool | None = None,
        recorded_by: str | None = None,
    ) -> Commitment:
        """Record how a commitment went, at the review where it was discussed (kept, partly or
        missed). Every follow-up is kept; the commitment shows the latest, and the latest note
        written (a follow-up without a note does not erase an earlier one)."""
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO followups (commitment_id, status, note, review, recorded_at, worked,"
                " recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (commitment_id, status, note, on.isoformat(), now(), worked, recorded_by),
            )
            db.execute(
                "UPDATE commitments SET status = ?, note = COALESCE(?, note), followed_up_on = ?"
                " WHERE id = ?",
                (status, note, on.isoformat(), commitment_id),
            )
        found = self.get(commitment_id)
        assert found is not None
        return found

    def _followups(self, ids: list[int]) -> dict[int, tuple[FollowUp, ...]]:
        db = self._store.connection
        has_table = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'followups'"
        ).fetchone()
        if not has_table or not ids:  # a file opened read-only may predate migration 5
            return {}
        columns = {row[1] for row in db.execute("PRAGMA table_info(followups)")}
        worked = "worked" if "worked" in columns else "NULL"
        by = "recorded_by" if "recorded_by" in columns else "NULL"
        out: dict[int, list[FollowUp]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = db.execute(
                f"SELECT commitment_id, status, note, review, {worked}, {by} FROM followups WHERE"
                f" commitment_id IN ({', '.join('?' * len(chunk))}) ORDER BY review, id",
                chunk,
            )
            for cid, status, note, review, did, who in rows:
                said = None if did is None else bool(did)
                out.setdefault(cid, []).append(
                    FollowUp(status, note, date.fromisoformat(review), said, who)
                )
        return {cid: tuple(items) for cid, items in out.items()}

    def _select(self, where: str, args: list[Any]) -> list[Commitment]:
        # A file opened read-only may predate migration 4 (no success column): read it as null.
        columns = {
            row[1] for row in self._store.connection.execute("PRAGMA table_info(commitments)")
        }
        success = "success" if "success" in columns else "NULL"
        beside = "kept_beside" if "kept_beside" in columns else "NULL"
        by = "recorded_by" if "recorded_by" in columns else "NULL"
        sql = (
            "SELECT id, deal_id, deal_name, rep_email, text, due, made_on, status, note,"
            f" followed_up_on, {success}, {beside}, {by} FROM commitments WHERE {where}"
            " ORDER BY made_on, id"
        )
        rows = list(self._store.connection.execute(sql, args))
        history = self._followups([row[0] for row in rows if row[7] != "open"])
        return [
            Commitment(
                id=row[0],
                deal_id=row[1],
                deal_name=row[2],
                rep_email=row[3],
                text=row[4],
                due=optional_date(row[5]),
                made_on=date.fromisoformat(row[6]),
                status=row[7],
                note=row[8],
                followed_up_on=optional_date(row[9]),
                success=row[10],
                kept_beside=row[11],
                recorded_by=row[12],
                followups=history.get(row[0], ()),
            )
            for row in rows
        ]
