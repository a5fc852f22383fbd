"""The state database's schema, as numbered, named migrations, and the runner that applies them.

``PRAGMA user_version`` says how far a file has come. Never edit a released migration: add the
next one (so the repeated DDL below is deliberate). How to write one: the development notes in
``docs/architecture.md``.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

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

# A follow-up can say "partly", and each one is kept (a later one no longer overwrites the note of
# an earlier one): a history table, and the status CHECK widened, which means a rebuild.
_FOLLOW_UP_HISTORY = """
CREATE TABLE commitments_v5 (
    id              INTEGER PRIMARY KEY,
    deal_id         TEXT,
    deal_name       TEXT,
    rep_email       TEXT NOT NULL,
    text            TEXT NOT NULL,
    success         TEXT,
    due             TEXT,
    made_on         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'kept', 'partly', 'missed')),
    note            TEXT,
    followed_up_on  TEXT,
    created_at      TEXT NOT NULL
);
INSERT INTO commitments_v5 SELECT id, deal_id, deal_name, rep_email, text, success, due, made_on,
    status, note, followed_up_on, created_at FROM commitments;
DROP TABLE commitments;
ALTER TABLE commitments_v5 RENAME TO commitments;
CREATE INDEX commitments_rep ON commitments (rep_email, status);
CREATE TABLE followups (
    id             INTEGER PRIMARY KEY,
    commitment_id  INTEGER NOT NULL REFERENCES commitments (id),
    status         TEXT NOT NULL CHECK (status IN ('kept', 'partly', 'missed')),
    note           TEXT,
    review         TEXT NOT NULL,
    recorded_at    TEXT NOT NULL
);
CREATE INDEX followups_commitment ON followups (commitment_id);
INSERT INTO followups (commitment_id, status, note, review, recorded_at)
    SELECT id, status, note, followed_up_on, created_at FROM commitments
    WHERE status != 'open' AND followed_up_on IS NOT NULL
"""

# One row per rep per run: the pipeline's hygiene as that review saw it, so history and the
# director's rollup are indexed reads, never a replay of old snapshots. Kept when snapshots are
# pruned (a row is a few dozen bytes).
_REP_WEEKS = """
CREATE TABLE rep_weeks (
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    as_of          TEXT NOT NULL,
    rep_email      TEXT NOT NULL,
    rep_name       TEXT NOT NULL,
    manager_email  TEXT,
    manager_name   TEXT,
    open_deals     INTEGER NOT NULL,
    flagged        INTEGER NOT NULL,
    flags          INTEGER NOT NULL,
    high_flags     INTEGER NOT NULL,
    close_moved    INTEGER NOT NULL,
    PRIMARY KEY (run_id, rep_email)
);
CREATE INDEX rep_weeks_as_of ON rep_weeks (as_of);
CREATE INDEX commitments_made ON commitments (made_on);
CREATE INDEX followups_review ON followups (review)
"""

# Which run's week is already in rep_weeks. Runs recorded before migration 7 have none: the next
# prep computes them from the snapshots still kept (leadprep.prep.record_missing_weeks) and marks
# every run it has looked at, so a run whose snapshots are gone is looked at once.
_WEEKS_RECORDED = """
ALTER TABLE runs ADD COLUMN weeks_recorded INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET weeks_recorded = 1 WHERE id IN (SELECT run_id FROM rep_weeks)
"""


# Which question (a template's key) each deal was asked at each run, so the next review asks it
# something else. Kept with the run (a row is a few dozen bytes), gone when the run is.
_ASKED = """
CREATE TABLE asked (
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    deal_id        TEXT NOT NULL,
    question       TEXT NOT NULL
);
CREATE INDEX asked_run ON asked (run_id)
"""


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its number (the ``user_version`` it leaves), a name for people,
    and what it does to the database (inside the runner's transaction, foreign keys off)."""

    number: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


def sql(script: str) -> Callable[[sqlite3.Connection], None]:
    """A migration written as SQL statements separated by ``;`` (none inside a literal)."""

    def apply(db: sqlite3.Connection) -> None:
        for statement in script.split(";"):
            if statement.strip():
                db.execute(statement)

    return apply


_TASK_WRITES = """
CREATE TABLE task_writes (
    commitment_id INTEGER PRIMARY KEY,
    task_key      TEXT NOT NULL UNIQUE,
    crm           TEXT NOT NULL,
    remote_id     TEXT,
    written_hash  TEXT,
    state         TEXT NOT NULL
                  CHECK (state IN ('queued', 'written', 'refused', 'cancelled')),
    attempted_at  TEXT,
    error         TEXT,
    claim         TEXT,
    claimed_at    TEXT,
    updated_at    TEXT NOT NULL
);
"""

_ACCESS = """
CREATE TABLE access_links (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT,
    used_at     TEXT,
    created_by  TEXT
);
CREATE INDEX access_links_email ON access_links (email);
CREATE TABLE access_sessions (
    session_hash TEXT PRIMARY KEY,
    link_id      INTEGER NOT NULL REFERENCES access_links (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
)
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, snapshots and commitments", sql(_BASE)),
    Migration(2, "deliveries", sql(_DELIVERIES)),
    Migration(3, "delivery claims", sql(_DELIVERY_CLAIMS)),
    Migration(4, "commitments without a deal, with a success sign", sql(_COMMITMENT_SUCCESS)),
    Migration(5, "follow-up history and 'partly'", sql(_FOLLOW_UP_HISTORY)),
    # what the run's data could not support (its checks were off), for `leadprep review`
    Migration(6, "checks off per run", sql("ALTER TABLE runs ADD COLUMN unsupported TEXT")),
    Migration(7, "each rep's week, for history and the rollup", sql(_REP_WEEKS)),
    Migration(8, "which runs have their weeks recorded", sql(_WEEKS_RECORDED)),
    Migration(9, "the questions each deal was asked", sql(_ASKED)),
    # a second commitment at the same review, kept beside the first by choice (one is the rule)
    Migration(
        10,
        "commitments kept beside another",
        sql("ALTER TABLE commitments ADD COLUMN kept_beside INTEGER"),
    ),
    # each rep's money movement since the review before, as JSON per currency
    Migration(
        11, "money movement per rep week", sql("ALTER TABLE rep_weeks ADD COLUMN money TEXT")
    ),
    # whether a kept commitment worked, as the rep said (null: not said)
    Migration(12, "did it work", sql("ALTER TABLE followups ADD COLUMN worked INTEGER")),
    # what became of the last review's focus deals by this one, per rep, as JSON counts
    Migration(
        13, "focus deals the week after", sql("ALTER TABLE rep_weeks ADD COLUMN focus_next TEXT")
    ),
    # each commitment's task in the CRM (write-back): no foreign key, because a commitment
    # replaced on the review page is deleted while its task must still be cancelled
    Migration(14, "commitments' tasks in the CRM", sql(_TASK_WRITES)),
    # who recorded each commitment and follow-up, and from where (the audit)
    Migration(
        15,
        "who recorded it",
        sql(
            "ALTER TABLE commitments ADD COLUMN recorded_by TEXT;"
            " ALTER TABLE followups ADD COLUMN recorded_by TEXT;"
        ),
    ),
    # `leadprep serve`'s per-person access links and the sign-ins they opened (hashes only)
    Migration(16, "access links", sql(_ACCESS)),
)
SCHEMA_VERSION = MIGRATIONS[-1].number
REP_WEEKS_SCHEMA = 7  # a file older than this has reviews without their weeks
OUR_TABLES = frozenset(
    {
        "runs",
        "snapshots",
        "commitments",
        "deliveries",
        "followups",
        "rep_weeks",
        "asked",
        "task_writes",
        "access_links",
        "access_sessions",
    }
)
REBUILDING = frozenset(
    {"deliveries_v3", "commitments_v4", "commitments_v5"}
)  # only inside a migration

# The schema each release wrote, to tell a user which leadprep wrote an older file.
RELEASES = {4: "0.1.0"}


class MigrationError(Exception):
    """A migration would have broken a reference between rows; nothing was changed."""


def written_by(version: int) -> str:
    """Which leadprep wrote a file of schema ``version``, in words."""
    if version in RELEASES:
        return f"leadprep {RELEASES[version]} (schema {version})"
    return f"an earlier leadprep (schema {version})"


def migrate(
    db: sqlite3.Connection,
    transaction: Callable[[], AbstractContextManager[object]],
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> int:
    """Bring the database up to the last of ``migrations``; returns the version it was at.

    Foreign keys are off while the migrations run, as SQLite's procedure for changing a table
    asks: with them on, rebuilding a parent table (create, copy, drop, rename) deletes its
    children through ON DELETE CASCADE, or fails. Before the commit, ``PRAGMA foreign_key_check``
    must find no broken reference the migrations made, or all of it is rolled back.
    ``transaction`` is the store's write transaction (a context manager factory)."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= migrations[-1].number:
        return migrations[-1].number
    # The pragma is a no-op inside a transaction, so it is set around it.
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with transaction():
            # Read again inside the write lock: another process may have just migrated.
            start = db.execute("PRAGMA user_version").fetchone()[0]
            before = _broken_references(db)
            for migration in migrations:
                if migration.number <= start:
                    continue
                migration.apply(db)
                db.execute(f"PRAGMA user_version = {migration.number}")
            broken = _broken_references(db) - before
            if broken:
                where = ", ".join(f"{n} in {t} (to {p})" for (t, p), n in sorted(broken.items()))
                raise MigrationError(f"the upgrade would break references: {where}")
        return start
    finally:
        db.execute("PRAGMA foreign_keys = ON")


def _broken_references(db: sqlite3.Connection) -> Counter[tuple[str, str]]:
    """How many rows of each table point at a missing parent, by table and parent. Counted, not
    listed by rowid, because a rebuilt table may number its rows anew."""
    return Counter(
        (table, parent) for table, _rowid, parent, _fk in db.execute("PRAGMA foreign_key_check")
    )
