"""Runs and their deal snapshots: the memory that lets a review say what changed."""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from leadprep.model import Deal, RepWeek, deal_from_dict, deal_to_dict
from leadprep.needs import Need
from leadprep.store.clock import now, optional_date
from leadprep.store.errors import reports_database_errors
from leadprep.store.repository import Repository


@dataclass(frozen=True)
class Review:
    """A recorded run: its id and the review date it was made for."""

    run_id: int
    as_of: date
    unsupported: dict[Need, str] = field(default_factory=dict)


def _pack(data: dict[str, Any]) -> bytes:
    """A snapshot as zlib-compressed JSON: deal records repeat the same keys and stages, so this
    keeps a year of weekly 50,000-deal snapshots to a few hundred MB instead of gigabytes."""
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def _unpack(data: bytes | str) -> dict[str, Any]:
    # Files written before compression hold plain JSON text; both stay readable.
    return json.loads(zlib.decompress(data) if isinstance(data, bytes) else data)


@reports_database_errors
class Runs(Repository):
    """``store.runs``: every prep run, with a snapshot of each deal it saw."""

    def record(
        self,
        as_of: date,
        source: str,
        deals: Iterable[Deal],
        unsupported: dict[Need, str] | None = None,
        rep_weeks: Iterable[RepWeek] = (),
        asked: dict[str, list[str]] | None = None,
    ) -> int:
        """Record a run and a snapshot of every deal it saw, in one transaction; returns the run
        id. ``unsupported``: the inputs the source did not carry (their checks were off);
        ``asked``: deal id -> the keys of the questions its sheet asked."""
        deals = list(deals)
        with self._store.transaction() as db:
            run_id = db.execute(
                "INSERT INTO runs (as_of, started_at, source, deal_count, unsupported,"
                " weeks_recorded) VALUES (?, ?, ?, ?, ?, 1)",
                (as_of.isoformat(), now(), source, len(deals), json.dumps(unsupported or {})),
            ).lastrowid
            assert run_id is not None
            db.executemany(
                "INSERT INTO snapshots (run_id, deal_id, rep_email, close_date, amount, stage,"
                " is_closed, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        d.id,
                        d.owner.email,
                        d.close_date.isoformat() if d.close_date else None,
                        str(d.amount) if d.amount is not None else None,
                        d.stage,
                        int(d.is_closed),
                        _pack(deal_to_dict(d)),
                    )
                    for d in deals
                ],
            )
            _insert_weeks(db, run_id, as_of, rep_weeks)
            db.executemany(
                "INSERT INTO asked (run_id, deal_id, question) VALUES (?, ?, ?)",
                [(run_id, deal, key) for deal, keys in (asked or {}).items() for key in keys],
            )
        return run_id

    def asked_at(self, review: Review | None) -> dict[str, set[str]]:
        """Deal id -> the keys of the questions asked at that review (empty for none)."""
        if review is None:
            return {}
        out: dict[str, set[str]] = {}
        rows = self._store.connection.execute(
            "SELECT deal_id, question FROM asked WHERE run_id = ?", (review.run_id,)
        )
        for deal_id, key in rows:
            out.setdefault(deal_id, set()).add(key)
        return out

    def without_weeks(self) -> list[Review]:
        """Runs recorded before the store kept each rep's week (schema 7), oldest first."""
        rows = self._store.connection.execute(
            "SELECT id, as_of, unsupported FROM runs WHERE weeks_recorded = 0 ORDER BY as_of, id"
        )
        return [Review(row[0], date.fromisoformat(row[1]), _needs(row[2])) for row in rows]

    def add_weeks(self, review: Review, rep_weeks: Iterable[RepWeek]) -> None:
        """Record the weeks computed later for an earlier run, and that it has them."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM rep_weeks WHERE run_id = ?", (review.run_id,))
            _insert_weeks(db, review.run_id, review.as_of, rep_weeks)
            db.execute("UPDATE runs SET weeks_recorded = 1 WHERE id = ?", (review.run_id,))

    def previous(self, as_of: date) -> Review | None:
        """The latest run made for a review date before ``as_of`` (a same-day rerun does not count)."""
        row = self._store.connection.execute(
            "SELECT id, as_of FROM runs WHERE as_of < ? ORDER BY as_of DESC, id DESC LIMIT 1",
            (as_of.isoformat(),),
        ).fetchone()
        return Review(row[0], date.fromisoformat(row[1])) if row else None

    def latest(self, on_or_before: date) -> Review | None:
        """The last run made for a review date on or before ``on_or_before``, with what its data
        did not carry."""
        row = self._store.connection.execute(
            "SELECT id, as_of, unsupported FROM runs WHERE as_of <= ?"
            " ORDER BY as_of DESC, id DESC LIMIT 1",
            (on_or_before.isoformat(),),
        ).fetchone()
        if row is None:
            return None
        return Review(row[0], date.fromisoformat(row[1]), _needs(row[2]))

    def snapshot(self, run_id: int) -> dict[str, Deal]:
        """Every deal as it was in the given run, by id."""
        rows = self._store.connection.execute(
            "SELECT data FROM snapshots WHERE run_id = ?", (run_id,)
        )
        deals = (deal_from_dict(_unpack(data)) for (data,) in rows)
        return {d.id: d for d in deals}

    def close_date_observations(self, before: date) -> dict[str, list[tuple[date, date | None]]]:
        """Per deal, its close date at each earlier review day (the last run of that day), oldest first."""
        rows = self._store.connection.execute(
            """
            SELECT s.deal_id, r.as_of, s.close_date
            FROM snapshots s JOIN runs r ON r.id = s.run_id
            WHERE r.id IN (SELECT MAX(id) FROM runs WHERE as_of < ? GROUP BY as_of)
            ORDER BY r.as_of
            """,
            (before.isoformat(),),
        )
        out: dict[str, list[tuple[date, date | None]]] = {}
        for deal_id, as_of, close_date in rows:
            out.setdefault(deal_id, []).append(
                (date.fromisoformat(as_of), optional_date(close_date))
            )
        return out

    def latest_snapshot_of(self, deal_id: str, on_or_before: date) -> tuple[date, Deal] | None:
        """The deal as last recorded at or before a review date, with that date."""
        row = self._store.connection.execute(
            """
            SELECT r.as_of, s.data FROM snapshots s JOIN runs r ON r.id = s.run_id
            WHERE s.deal_id = ? AND r.as_of <= ? ORDER BY r.as_of DESC, r.id DESC LIMIT 1
            """,
            (deal_id, on_or_before.isoformat()),
        ).fetchone()
        return (date.fromisoformat(row[0]), deal_from_dict(_unpack(row[1]))) if row else None

    def review_dates(self, on_or_before: date, limit: int) -> list[date]:
        """The most recent distinct review dates, newest first."""
        rows = self._store.connection.execute(
            "SELECT DISTINCT as_of FROM runs WHERE as_of <= ? ORDER BY as_of DESC LIMIT ?",
            (on_or_before.isoformat(), limit),
        )
        return [date.fromisoformat(r[0]) for r in rows]

    def count(self) -> int:
        return self._store.connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def prune(self, keep_reviews: int) -> int:
        """Drop deal snapshots that no longer serve: all but the last run of each review date,
        and every run older than the last ``keep_reviews`` review dates. Runs themselves,
        commitments and deliveries are kept. Returns the number of snapshots removed."""
        with self._store.transaction() as db:
            return db.execute(
                """
                DELETE FROM snapshots WHERE run_id NOT IN (
                    SELECT MAX(id) FROM runs WHERE as_of IN (
                        SELECT DISTINCT as_of FROM runs ORDER BY as_of DESC LIMIT ?
                    ) GROUP BY as_of
                )
                """,
                (keep_reviews,),
            ).rowcount

    def owner_names(self, emails: Iterable[str]) -> dict[str, str]:
        """Rep email -> the owner name the latest snapshot of one of their deals shows."""
        wanted = sorted({e.lower() for e in emails})
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = self._store.connection.execute(
            "SELECT rep_email, data FROM snapshots WHERE rowid IN (SELECT MAX(rowid) FROM"
            f" snapshots WHERE rep_email IN ({marks}) GROUP BY rep_email)",
            wanted,
        )
        return {email: deal_from_dict(_unpack(data)).owner.name for email, data in rows}

    def rep_weeks(self, dates: Iterable[date]) -> list[tuple[date, RepWeek]]:
        """Every rep's week at these review dates (the last run of each date), oldest first."""
        wanted = sorted({d.isoformat() for d in dates})
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = self._store.connection.execute(
            "SELECT as_of, rep_email, rep_name, manager_email, manager_name, open_deals, flagged,"
            " flags, high_flags, close_moved, money, focus_next FROM rep_weeks WHERE run_id IN (SELECT"
            f" MAX(id) FROM runs WHERE as_of IN ({marks}) GROUP BY as_of) ORDER BY as_of,"
            " rep_email",
            wanted,
        )
        return [(date.fromisoformat(row[0]), _rep_week(row)) for row in rows]


_COUNTS = (
    "rep_email",
    "rep_name",
    "manager_email",
    "manager_name",
    "open_deals",
    "flagged",
    "flags",
    "high_flags",
    "close_moved",
)


def _rep_week(row: tuple[Any, ...]) -> RepWeek:
    """A ``rep_weeks`` row (as selected by :meth:`Runs.rep_weeks`) as a RepWeek: the counts as
    they are, the two JSON columns parsed."""
    counts: dict[str, Any] = dict(zip(_COUNTS, row[1:-2], strict=True))
    money, focus = row[-2:]
    return RepWeek(**counts, money=json.loads(money or "{}"), focus_next=json.loads(focus or "{}"))


def _insert_weeks(
    db: sqlite3.Connection, run_id: int, as_of: date, rep_weeks: Iterable[RepWeek]
) -> None:
    db.executemany(
        "INSERT INTO rep_weeks (run_id, as_of, rep_email, rep_name, manager_email,"
        " manager_name, open_deals, flagged, flags, high_flags, close_moved, money, focus_next)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                as_of.isoformat(),
                w.rep_email,
                w.rep_name,
                w.manager_email,
                w.manager_name,
                w.open_deals,
                w.flagged,
                w.flags,
                w.high_flags,
                w.close_moved,
                json.dumps(w.money) if w.money else None,
                json.dumps(w.focus_next) if w.focus_next else None,
            )
            for w in rep_weeks
        ],
    )


def _needs(text: str | None) -> dict[Need, str]:
    """A run's unsupported inputs as recorded; a key no release knows any more is dropped (its
    check exists no longer, so nothing is off for it)."""
    known = {n.value: n for n in Need}
    return {known[k]: v for k, v in json.loads(text or "{}").items() if k in known}
