"""The deliveries table: each outbox message once per review week, recipient and kind."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadprep.model import Delivery
from leadprep.store.clock import now
from leadprep.store.errors import reports_database_errors
from leadprep.store.repository import Repository

if TYPE_CHECKING:
    pass

CLAIM_TIMEOUT = timedelta(minutes=15)  # a claim older than this belongs to a run that died


@reports_database_errors
class Deliveries(Repository):
    """``store.deliveries``: what was queued, claimed, sent or failed, so a send is exactly-once."""

    def get(self, review_week: str, recipient: str, kind: str) -> Delivery | None:
        found = self._select(
            "review_week = ? AND recipient = ? AND kind = ?", [review_week, recipient, kind]
        )
        return found[0] if found else None

    def queue(
        self, review_week: str, recipient: str, kind: str, content_hash: str, eml_path: str
    ) -> Delivery:
        """Record a message written to the outbox; an unsent one for the same week is replaced."""
        with self._store.transaction() as db:
            db.execute(
                """
                INSERT INTO deliveries (review_week, recipient, kind, content_hash, eml_path, status, updated_at)
                VALUES (?, ?, ?, ?, ?, 'queued', ?)
                ON CONFLICT (review_week, recipient, kind) DO UPDATE SET
                    content_hash = excluded.content_hash, eml_path = excluded.eml_path,
                    status = CASE WHEN status IN ('sent', 'sending') THEN status ELSE 'queued' END,
                    updated_at = excluded.updated_at
                """,
                (review_week, recipient, kind, content_hash, eml_path, now()),
            )
            # An older week's message that never went out is superseded by this newer one.
            db.execute(
                "UPDATE deliveries SET status = 'superseded', updated_at = ? WHERE recipient = ?"
                " AND kind = ? AND review_week < ? AND status IN ('queued', 'failed')",
                (now(), recipient, kind, review_week),
            )
        found = self.get(review_week, recipient, kind)
        assert found is not None
        return found

    def pending(self, kinds: Iterable[str] | None = None) -> list[Delivery]:
        """Messages in the outbox that have not gone out, oldest first (those another run is
        sending included: claiming decides who sends); only these kinds when given."""
        where, args = "status IN ('queued', 'failed', 'sending')", []
        if kinds is not None:
            wanted = sorted(kinds)
            where += f" AND kind IN ({', '.join('?' * len(wanted))})"
            args = wanted
        return self._select(where, list(args))

    def claim(self, delivery_id: int) -> bool:
        """Take a pending message for this run to send; False when another run has it (or it
        went out meanwhile). A claim older than CLAIM_TIMEOUT is taken over: its run died."""
        stale = (datetime.now(UTC) - CLAIM_TIMEOUT).isoformat(timespec="seconds")
        with self._store.transaction() as db:
            claimed = db.execute(
                "UPDATE deliveries SET status = 'sending', claimed_at = ?, updated_at = ?"
                " WHERE id = ? AND (status IN ('queued', 'failed')"
                " OR (status = 'sending' AND claimed_at < ?))",
                (now(), now(), delivery_id, stale),
            ).rowcount
        return claimed == 1

    def mark(self, delivery_id: int, *, sent: bool, error: str | None = None) -> None:
        """Record how sending a claimed message went."""
        with self._store.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, last_error = ?,"
                " sent_at = CASE WHEN ? THEN ? ELSE sent_at END, claimed_at = NULL,"
                " updated_at = ? WHERE id = ?",
                ("sent" if sent else "failed", error, sent, now(), now(), delivery_id),
            )

    def force_resend(self, delivery_id: int) -> None:
        with self._store.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = 'queued', updated_at = ? WHERE id = ?",
                (now(), delivery_id),
            )

    def _select(self, where: str, args: list[Any]) -> list[Delivery]:
        sql = (
            "SELECT id, review_week, recipient, kind, content_hash, eml_path, status, attempts,"
            f" last_error, sent_at FROM deliveries WHERE {where} ORDER BY review_week, id"
        )
        return [Delivery(*row) for row in self._store.connection.execute(sql, args)]
