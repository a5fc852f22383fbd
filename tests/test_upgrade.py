"""Upgrading a state file: the migration runner loses nothing, an older file reads as it is, and
the first prep after an upgrade gives the earlier reviews their place in history."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from leadprep.errors import DataError
from leadprep.model import NewCommitment, RepWeek
from leadprep.store import Store
from leadprep.store.migrations import MIGRATIONS, SCHEMA_VERSION, Migration, migrate, sql
from tests.helpers import TODAY, add_commitment, cli, csv_row, file_config, make_deal

FIXTURES = Path(__file__).parent / "fixtures"
TABLES = ("runs", "snapshots", "rep_weeks", "commitments", "followups", "deliveries")


def old_file(path: Path) -> Path:
    """The state file release 0.1.0 wrote (schema 4), as a user has it."""
    db = sqlite3.connect(path)
    db.executescript((FIXTURES / "state-0.1.0.sql").read_text())
    db.close()
    return path


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def counts(db: sqlite3.Connection) -> dict[str, int]:
    return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def populated(path: Path) -> Store:
    """A current store where every parent table has rows with children."""
    store = Store.open(path)
    week = RepWeek("a@example.com", "A", None, None, 1, 1, 1, 0, 0)
    for days in (14, 7):
        store.runs.record(
            date.fromordinal(TODAY.toordinal() - days),
            "file",
            [make_deal(id="D-1"), make_deal(id="D-2")],
            rep_weeks=[week],
        )
    first = add_commitment(store, made_on=date(2026, 11, 2))
    add_commitment(store, made_on=date(2026, 11, 9), deal_id=None, deal_name=None)
    store.commitments.follow_up(first, status="kept", note="done", on=date(2026, 11, 9))
    store.deliveries.queue("2026-W46", "m@example.com", "manager", "h", "m.eml")
    return store


def rebuild(table: str) -> Migration:
    """A migration that rebuilds ``table`` the way SQLite's procedure for changing a table does
    (create the new table, copy, drop the old, rename), as the next real one will."""

    def apply(db: sqlite3.Connection) -> None:
        create, *indexes = [
            row[0]
            for row in db.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL"
                " ORDER BY type DESC",  # the table, then its indexes
                (table,),
            )
        ]
        new = create.replace(table, f"{table}_new", 1)
        sql(
            f"{new}; INSERT INTO {table}_new SELECT * FROM {table}; DROP TABLE {table};"
            f" ALTER TABLE {table}_new RENAME TO {table}; " + "; ".join(indexes)
        )(db)

    return Migration(SCHEMA_VERSION + 1, f"rebuild {table}", apply)


@pytest.mark.parametrize("table", TABLES)
def test_rebuilding_a_table_with_children_loses_nothing(tmp_path, table):
    with populated(tmp_path / "state.db") as store:
        db = store.connection
        before = counts(db)
        assert all(before.values()), before  # every table holds rows, so each rebuild is real
        migrate(db, store.transaction, (*MIGRATIONS, rebuild(table)))
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert counts(db) == before
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # back on after the run


def test_a_migration_that_breaks_a_reference_changes_nothing(tmp_path):
    with populated(tmp_path / "state.db") as store:
        db = store.connection
        before = counts(db)
        orphaning = Migration(SCHEMA_VERSION + 1, "oops", sql("DELETE FROM commitments"))
        with pytest.raises(Exception, match="break references: 1 in followups"):
            migrate(db, store.transaction, (*MIGRATIONS, orphaning))
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert counts(db) == before


def test_read_only_commands_answer_on_a_0_1_0_file_and_leave_it_as_it_is(tmp_path):
    path = old_file(tmp_path / "state.db")
    history = cli("history", "--as-of", "2026-11-30", "--format", "json")
    assert history.exit_code == 0, history.output
    assert json.loads(history.stdout) == []  # 0.1.0 kept no weeks; the next prep fills them
    assert "written by leadprep 0.1.0 (schema 4)" in history.stderr
    assert "next `leadprep prep` upgrades" in history.stderr
    listed = cli("commitments", "--all", "--format", "json")
    assert listed.exit_code == 0, listed.output
    kept, habit = json.loads(listed.stdout)
    assert kept["status"] == "kept" and habit["text"] == "Open every call with the buyer's goal"
    info = cli("state", "info")
    assert info.exit_code == 0 and "2 run(s) recorded" in info.stdout
    assert "leadprep 0.1.0" in info.stdout
    doctor = cli("doctor")
    assert "ok   state:" in doctor.stdout and "written by leadprep 0.1.0" in doctor.stdout
    assert user_version(path) == 4  # reading never upgrades


def test_the_first_prep_after_the_upgrade_puts_the_earlier_reviews_in_history(tmp_path):
    path = old_file(tmp_path / "state.db")
    rows = [
        csv_row(deal_id="R-1", deal_name="Acme renewal", owner_email="ana@example.com",
                owner_name="Ana Ruiz", close_date="2026-12-22", manager_email=""),
        csv_row(deal_id="R-3", deal_name="Initech", owner_email="ben@example.com",
                owner_name="Ben Ode", manager_email=""),
    ]  # fmt: skip
    config = file_config(tmp_path, rows)
    prep = cli("prep", "-c", config, "-o", "out", "--as-of", "2026-11-30", "--rollup", "-f", "html")
    assert prep.exit_code == 0, prep.output
    assert user_version(path) == SCHEMA_VERSION
    history = cli("history", "-c", config, "--as-of", "2026-11-30", "--format", "json")
    assert history.exit_code == 0 and history.stderr == ""
    reviewed = {(r["rep"], r["review"]): r for r in json.loads(history.stdout) if r["reviewed"]}
    assert set(reviewed) == {
        (rep, day)
        for rep in ("ana@example.com", "ben@example.com")
        for day in ("2026-11-16", "2026-11-23", "2026-11-30")
    }
    ana = reviewed["ana@example.com", "2026-11-23"]
    assert ana["open_deals"] == 2 and ana["close_moved"] == 1  # R-1 moved Dec 15 -> Dec 22
    assert reviewed["ana@example.com", "2026-11-16"]["close_moved"] == 0
    assert reviewed["ben@example.com", "2026-11-23"]["commitments"] == 1  # the habit, made then
    rollup = (tmp_path / "out" / "rollup.html").read_text()
    assert "Ana Ruiz" in rollup and "Ben Ode" in rollup
    # filled once: a second prep finds nothing left to fill
    with Store.open(path) as store:
        assert store.runs.without_weeks() == []


def test_weeks_of_a_run_whose_snapshots_were_pruned_are_looked_for_once(tmp_path):
    path = old_file(tmp_path / "state.db")
    db = sqlite3.connect(path)
    db.execute("DELETE FROM snapshots WHERE run_id = 1")
    db.commit()
    db.close()
    config = file_config(tmp_path, [csv_row(owner_email="ana@example.com", manager_email="")])
    assert cli("prep", "-c", config, "-o", "out", "--as-of", "2026-11-30").exit_code == 0
    with Store.open(path) as store:
        assert store.runs.without_weeks() == []
        weeks = store.runs.rep_weeks([date(2026, 11, 16), date(2026, 11, 23)])
    assert {day for day, _ in weeks} == {date(2026, 11, 23)}


def test_a_file_that_cannot_be_upgraded_says_so_and_stays_as_it_was(tmp_path, monkeypatch):
    path = old_file(tmp_path / "state.db")
    import leadprep.store as store_module

    orphaning = Migration(SCHEMA_VERSION + 1, "oops", sql("DELETE FROM runs WHERE id = 1"))
    monkeypatch.setattr(
        store_module, "migrate", lambda db, tx: migrate(db, tx, (*MIGRATIONS, orphaning))
    )
    with pytest.raises(DataError, match=r"could not be upgraded from leadprep 0\.1\.0") as raised:
        Store.open(path)
    assert "3 in snapshots (to runs)" in str(raised.value)
    assert user_version(path) == 4
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 6
    db.close()


def test_new_commitments_need_no_weeks_backfill(tmp_path):
    """A run recorded by this release is never taken for one that needs its weeks filled."""
    with Store.open(tmp_path / "s.db") as store:
        store.runs.record(TODAY, "file", [make_deal()])
        store.commitments.add([NewCommitment("D-1", "Acme", "a@example.com", "x", None, TODAY)])
        assert store.runs.without_weeks() == []
