"""The state database's schema, as numbered, named migrations.

Applied in order inside one transaction; ``PRAGMA user_version`` says how far a file has come.
Never edit a released migration: add the next one. (So the repeated DDL below is deliberate.)
"""

from __future__ import annotations

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

# Named, numbered, applied in order inside one transaction; PRAGMA user_version says how far a
# file has come. Never edit a released migration: add the next one.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "runs, snapshots and commitments", _BASE),
    (2, "deliveries", _DELIVERIES),
    (3, "delivery claims", _DELIVERY_CLAIMS),
    (4, "commitments without a deal, with a success sign", _COMMITMENT_SUCCESS),
    (5, "follow-up history and 'partly'", _FOLLOW_UP_HISTORY),
    # what the run's data could not support (its checks were off), for `leadprep review`
    (6, "checks off per run", "ALTER TABLE runs ADD COLUMN unsupported TEXT"),
    (7, "each rep's week, for history and the rollup", _REP_WEEKS),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
OUR_TABLES = frozenset({"runs", "snapshots", "commitments", "deliveries", "followups", "rep_weeks"})
REBUILDING = frozenset(
    {"deliveries_v3", "commitments_v4", "commitments_v5"}
)  # only inside a migration
