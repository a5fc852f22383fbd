"""The local SQLite state: every run with its deal snapshots, and the commitments made in reviews.

Snapshots give week-over-week memory to sources that keep no history of their own. Each run is
written in one transaction; WAL and a busy timeout let concurrent CLI calls share the file.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from leadprep.errors import DataError
from leadprep.model import Deal, deal_from_dict, deal_to_dict

_BASE = """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    as_of       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    source      TEXT NOT NULL,
    deal_count  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_as_of ON runs (as_of);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    deal_id     TEXT NOT NULL,
    rep_email   TEXT NOT NULL,
    close_date  TEXT,
    amount      TEXT,
    stage       TEXT NOT NULL,
    is_closed   INTEGER NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (run_id, deal_id)
);
CREATE INDEX IF NOT EXISTS snapshots_deal ON snapshots (deal_id);
CREATE TABLE IF NOT EXISTS commitments (
    id              INTEGER PRIMARY KEY,
    deal_id         TEXT NOT NULL,
    deal_name       TEXT NOT NULL,
    rep_email       TEXT NOT NULL,
    text            TEXT NOT NULL,
    due             TEXT,
    made_on         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'kept', 'missed')),
    note            TEXT,
    followed_up_on  TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commitments_rep ON commitments (rep_email, status);
"""

_DELIVERIES = """
CREATE TABLE IF NOT EXISTS deliveries (
    id            INTEGER PRIMARY KEY,
    review_week   TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    eml_path      TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'failed', 'superseded', 'sent')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    sent_at       TEXT,
    updated_at    TEXT NOT NULL,
    UNIQUE (review_week, recipient, kind)
);
"""

# 'sending' marks a message one run has claimed; claimed_at lets a later run take over a claim
# whose process died. SQLite cannot alter a CHECK constraint, so the table is rebuilt.
_DELIVERY_CLAIMS = """
CREATE TABLE deliveries_v3 (
    id            INTEGER PRIMARY KEY,
    review_week   TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    eml_path      TEXT NOT NULL,
    status        TEXT NOT NULL
                  CHECK (status IN ('queued', 'sending', 'failed', 'superseded', 'sent')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    sent_at       TEXT,
    claimed_at    TEXT,
    updated_at    TEXT NOT NULL,
    UNIQUE (review_week, recipient, kind)
);
INSERT INTO deliveries_v3 (id, review_week, recipient, kind, content_hash, eml_path, status,
                           attempts, last_error, sent_at, updated_at)
    SELECT id, review_week, recipient, kind, content_hash, eml_path, status, attempts,
           last_error, sent_at, updated_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v3 RENAME TO deliveries;
CREATE INDEX deliveries_pending ON deliveries (status);
"""

# A commitment may be about a habit rather than one deal (no deal id), and carries how both will
# know it worked. SQLite cannot relax NOT NULL in place, so the table is rebuilt.
_COMMITMENT_SUCCESS = """
CREATE TABLE commitments_v4 (
    id              INTEGER PRIMARY KEY,
    deal_id         TEXT,
    deal_name       TEXT,
    rep_email       TEXT NOT NULL,
    text            TEXT NOT NULL,
    success         TEXT,
    due             TEXT,
    made_on         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'kept', 'missed')),
    note            TEXT,
    followed_up_on  TEXT,
    created_at      TEXT NOT NULL
);
INSERT INTO commitments_v4 (id, deal_id, deal_name, rep_email, text, due, made_on, status, note,
                            followed_up_on, created_at)
    SELECT id, deal_id, deal_name, rep_email, text, due, made_on, status, note, followed_up_on,
           created_at FROM commitments;
DROP TABLE commitments;
ALTER TABLE commitments_v4 RENAME TO commitments;
CREATE INDEX commitments_rep ON commitments (rep_email, status)
"""

# Named, numbered, applied in order inside one transaction; PRAGMA user_version says how far a
# file has come. Never edit a released migration: add the next one.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "runs, snapshots and commitments", _BASE),
    (2, "deliveries", _DELIVERIES),
    (3, "delivery claims", _DELIVERY_CLAIMS),
    (4, "commitments without a deal, with a success sign", _COMMITMENT_SUCCESS),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
OUR_TABLES = frozenset({"runs", "snapshots", "commitments", "deliveries"})
_REBUILDING = frozenset({"deliveries_v3", "commitments_v4"})  # only inside a migration
CLAIM_TIMEOUT = timedelta(minutes=15)  # a claim older than this belongs to a run that died


@dataclass(frozen=True)
class Review:
    """A recorded run: its id and the review date it was made for."""

    run_id: int
    as_of: date


@dataclass(frozen=True)
class Commitment:
    """What a rep committed to in a review, and how it went."""

    id: int
    deal_id: str | None  # None: about a habit or the rep's way of working, not one deal
    deal_name: str | None
    rep_email: str
    text: str
    due: date | None
    made_on: date
    status: str  # open | kept | missed
    note: str | None = None
    followed_up_on: date | None = None
    success: str | None = None  # how the rep and the manager will know it worked

    @property
    def about(self) -> str:
        """What the commitment is about, for a sheet: the deal's name, or "no single deal"."""
        return self.deal_name or "no single deal"


@dataclass(frozen=True)
class Delivery:
    """One outbox message and what became of it."""

    id: int
    review_week: str
    recipient: str
    kind: str  # manager | rep
    content_hash: str
    eml_path: str
    status: str  # queued | sent | failed | superseded
    attempts: int
    last_error: str | None
    sent_at: str | None


@dataclass(frozen=True)
class StoreSize:
    """The state file's size in bytes, the part of it that is free pages, and its runs."""

    total: int
    free: int
    runs: int


def _pack(data: dict[str, Any]) -> bytes:
    """A snapshot as zlib-compressed JSON: deal records repeat the same keys and stages, so this
    keeps a year of weekly 50,000-deal snapshots to a few hundred MB instead of gigabytes."""
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def _unpack(data: bytes | str) -> dict[str, Any]:
    # Files written before compression hold plain JSON text; both stay readable.
    return json.loads(zlib.decompress(data) if isinstance(data, bytes) else data)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


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
            f"The state database {where} stayed locked by another program for 10 seconds.",
            hint="Another leadprep run (or an open sqlite3 shell) holds it: wait for it to "
            "finish, then run again.",
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
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:  # OperationalError (locked, read-only) included
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                raise  # our bug, not the file's
            raise database_error(exc, self.path) from None

    return wrapper


class Store:
    """A connection to the state database; use as a context manager or call :meth:`close`.

    Every SQLite failure leaves a public method as a :class:`DataError` that says whether the
    file is read-only, locked, damaged or not ours."""

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self._db = connection
        self.path = path

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
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("PRAGMA foreign_keys = ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise database_error(exc, self.path) from None
        if version == 0 and tables - OUR_TABLES - _REBUILDING:
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
            return  # reads work on every older schema; migrating waits for the next write
        try:
            if wal:
                self._db.execute("PRAGMA journal_mode = WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise database_error(exc, self.path) from None

    def _migrate(self) -> None:
        with self.transaction() as db:
            # Read again inside the write lock: another process may have just migrated.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, _name, script in MIGRATIONS:
                if number <= version:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE so concurrent writers queue instead of failing."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs and snapshots ----------------------------------------------------------------------

    def record_run(self, as_of: date, source: str, deals: Iterable[Deal]) -> int:
        """Record a run and a snapshot of every deal it saw, in one transaction; returns the run id."""
        deals = list(deals)
        with self.transaction() as db:
            run_id = db.execute(
                "INSERT INTO runs (as_of, started_at, source, deal_count) VALUES (?, ?, ?, ?)",
                (as_of.isoformat(), _now(), source, len(deals)),
            ).lastrowid
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
        assert run_id is not None
        return run_id

    def previous_review(self, as_of: date) -> Review | None:
        """The latest run made for a review date before ``as_of`` (a same-day rerun does not count)."""
        row = self._db.execute(
            "SELECT id, as_of FROM runs WHERE as_of < ? ORDER BY as_of DESC, id DESC LIMIT 1",
            (as_of.isoformat(),),
        ).fetchone()
        return Review(row[0], date.fromisoformat(row[1])) if row else None

    def snapshot(self, run_id: int) -> dict[str, Deal]:
        """Every deal as it was in the given run, by id."""
        rows = self._db.execute("SELECT data FROM snapshots WHERE run_id = ?", (run_id,))
        deals = (deal_from_dict(_unpack(data)) for (data,) in rows)
        return {d.id: d for d in deals}

    def close_date_observations(self, before: date) -> dict[str, list[tuple[date, date | None]]]:
        """Per deal, its close date at each earlier review day (the last run of that day), oldest first."""
        rows = self._db.execute(
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
            out.setdefault(deal_id, []).append((date.fromisoformat(as_of), _d(close_date)))
        return out

    def latest_snapshot_of(self, deal_id: str, on_or_before: date) -> tuple[date, Deal] | None:
        """The deal as last recorded at or before a review date, with that date."""
        row = self._db.execute(
            """
            SELECT r.as_of, s.data FROM snapshots s JOIN runs r ON r.id = s.run_id
            WHERE s.deal_id = ? AND r.as_of <= ? ORDER BY r.as_of DESC, r.id DESC LIMIT 1
            """,
            (deal_id, on_or_before.isoformat()),
        ).fetchone()
        return (date.fromisoformat(row[0]), deal_from_dict(_unpack(row[1]))) if row else None

    def review_dates(self, on_or_before: date, limit: int) -> list[date]:
        """The most recent distinct review dates, newest first."""
        rows = self._db.execute(
            "SELECT DISTINCT as_of FROM runs WHERE as_of <= ? ORDER BY as_of DESC LIMIT ?",
            (on_or_before.isoformat(), limit),
        )
        return [date.fromisoformat(r[0]) for r in rows]

    def run_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def prune(self, keep_reviews: int) -> int:
        """Drop deal snapshots that no longer serve: all but the last run of each review date,
        and every run older than the last ``keep_reviews`` review dates. Runs themselves,
        commitments and deliveries are kept. Returns the number of snapshots removed."""
        with self.transaction() as db:
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

    def size(self) -> StoreSize:
        """How big the file is and how much of it is free pages (reclaimed by :meth:`vacuum`)."""
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return StoreSize(pages * page_size, free * page_size, self.run_count())

    def vacuum(self) -> None:
        """Rewrite the file without its free pages (needs about its size again on disk)."""
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- deliveries ------------------------------------------------------------------------------

    def delivery(self, review_week: str, recipient: str, kind: str) -> Delivery | None:
        found = self._select_deliveries(
            "review_week = ? AND recipient = ? AND kind = ?", [review_week, recipient, kind]
        )
        return found[0] if found else None

    def queue_delivery(
        self, review_week: str, recipient: str, kind: str, content_hash: str, eml_path: str
    ) -> Delivery:
        """Record a message written to the outbox; an unsent one for the same week is replaced."""
        with self.transaction() as db:
            db.execute(
                """
                INSERT INTO deliveries (review_week, recipient, kind, content_hash, eml_path, status, updated_at)
                VALUES (?, ?, ?, ?, ?, 'queued', ?)
                ON CONFLICT (review_week, recipient, kind) DO UPDATE SET
                    content_hash = excluded.content_hash, eml_path = excluded.eml_path,
                    status = CASE WHEN status IN ('sent', 'sending') THEN status ELSE 'queued' END,
                    updated_at = excluded.updated_at
                """,
                (review_week, recipient, kind, content_hash, eml_path, _now()),
            )
            # An older week's message that never went out is superseded by this newer one.
            db.execute(
                "UPDATE deliveries SET status = 'superseded', updated_at = ? WHERE recipient = ?"
                " AND kind = ? AND review_week < ? AND status IN ('queued', 'failed')",
                (_now(), recipient, kind, review_week),
            )
        found = self.delivery(review_week, recipient, kind)
        assert found is not None
        return found

    def pending_deliveries(self) -> list[Delivery]:
        """Messages in the outbox that have not gone out, oldest first (those another run is
        sending included: claiming decides who sends)."""
        return self._select_deliveries("status IN ('queued', 'failed', 'sending')", [])

    def claim_delivery(self, delivery_id: int) -> bool:
        """Take a pending message for this run to send; False when another run has it (or it
        went out meanwhile). A claim older than CLAIM_TIMEOUT is taken over: its run died."""
        stale = (datetime.now(UTC) - CLAIM_TIMEOUT).isoformat(timespec="seconds")
        with self.transaction() as db:
            claimed = db.execute(
                "UPDATE deliveries SET status = 'sending', claimed_at = ?, updated_at = ?"
                " WHERE id = ? AND (status IN ('queued', 'failed')"
                " OR (status = 'sending' AND claimed_at < ?))",
                (_now(), _now(), delivery_id, stale),
            ).rowcount
        return claimed == 1

    def mark_delivery(self, delivery_id: int, *, sent: bool, error: str | None = None) -> None:
        """Record how sending a claimed message went."""
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, last_error = ?,"
                " sent_at = CASE WHEN ? THEN ? ELSE sent_at END, claimed_at = NULL,"
                " updated_at = ? WHERE id = ?",
                ("sent" if sent else "failed", error, sent, _now(), _now(), delivery_id),
            )

    def force_resend(self, delivery_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = 'queued', updated_at = ? WHERE id = ?",
                (_now(), delivery_id),
            )

    def _select_deliveries(self, where: str, args: list) -> list[Delivery]:
        sql = (
            "SELECT id, review_week, recipient, kind, content_hash, eml_path, status, attempts,"
            f" last_error, sent_at FROM deliveries WHERE {where} ORDER BY review_week, id"
        )
        return [Delivery(*row) for row in self._db.execute(sql, args)]

    # --- commitments -----------------------------------------------------------------------------

    def add_commitment(
        self,
        *,
        deal_id: str | None,
        deal_name: str | None,
        rep_email: str,
        text: str,
        due: date | None,
        made_on: date,
        success: str | None = None,
    ) -> int:
        """Record a commitment (``deal_id`` None: about a habit, not one deal); returns its id
        (stable for its lifetime)."""
        item = {
            "deal_id": deal_id,
            "deal_name": deal_name,
            "rep_email": rep_email,
            "text": text,
            "due": due,
            "made_on": made_on,
            "success": success,
        }
        return self.add_commitments([item])[0]

    def add_commitments(self, items: list[dict]) -> list[int]:
        """Record several commitments in one transaction (all or none); returns their ids."""
        ids = []
        with self.transaction() as db:
            for item in items:
                cursor = db.execute(
                    "INSERT INTO commitments (deal_id, deal_name, rep_email, text, success, due,"
                    " made_on, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item["deal_id"],
                        item["deal_name"],
                        item["rep_email"].lower(),
                        item["text"],
                        item.get("success"),
                        item["due"].isoformat() if item["due"] else None,
                        item["made_on"].isoformat(),
                        _now(),
                    ),
                )
                assert cursor.lastrowid is not None
                ids.append(cursor.lastrowid)
        return ids

    def commitments(
        self,
        *,
        rep_email: str | None = None,
        status: str | None = None,
        made_before: date | None = None,
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
        return self._select_commitments(" AND ".join(where), args)

    def commitment(self, commitment_id: int) -> Commitment | None:
        found = self._select_commitments("id = ?", [commitment_id])
        return found[0] if found else None

    def follow_up(
        self, commitment_id: int, *, kept: bool, note: str | None, on: date
    ) -> Commitment:
        """Record how a commitment went, at the review where it was discussed."""
        with self.transaction() as db:
            db.execute(
                "UPDATE commitments SET status = ?, note = ?, followed_up_on = ? WHERE id = ?",
                ("kept" if kept else "missed", note, on.isoformat(), commitment_id),
            )
        found = self.commitment(commitment_id)
        assert found is not None
        return found

    def _select_commitments(self, where: str, args: list) -> list[Commitment]:
        # A file opened read-only may predate migration 4 (no success column): read it as null.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(commitments)")}
        success = "success" if "success" in columns else "NULL"
        sql = (
            "SELECT id, deal_id, deal_name, rep_email, text, due, made_on, status, note,"
            f" followed_up_on, {success} FROM commitments WHERE {where} ORDER BY made_on, id"
        )
        return [
            Commitment(
                id=row[0],
                deal_id=row[1],
                deal_name=row[2],
                rep_email=row[3],
                text=row[4],
                due=_d(row[5]),
                made_on=date.fromisoformat(row[6]),
                status=row[7],
                note=row[8],
                followed_up_on=_d(row[9]),
                success=row[10],
            )
            for row in self._db.execute(sql, args)
        ]


# Every public method reports SQLite failures as a DataError naming the file (see database_error).
for _name, _member in list(vars(Store).items()):
    if _name.startswith("_") or _name in {"open", "memory", "transaction", "close"}:
        continue
    if callable(_member):
        setattr(Store, _name, _translating(_member))
