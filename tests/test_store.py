import sqlite3
import threading
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from leadprep.errors import DataError
from leadprep.store import SCHEMA_VERSION, Store
from tests.helpers import TODAY, add_commitment, make_deal

FIXTURES = Path(__file__).parent / "fixtures"


def test_runs_and_snapshots_round_trip(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        deal = make_deal()
        run = store.runs.record(TODAY, "file", [deal])
        assert store.runs.snapshot(run) == {"D-1": deal}
        assert store.runs.snapshot(run)["D-1"].contacts == deal.contacts


def test_previous_review_ignores_same_day_reruns(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        assert store.runs.previous(TODAY) is None
        store.runs.record(TODAY - timedelta(days=7), "file", [make_deal(amount=1)])
        late = store.runs.record(TODAY - timedelta(days=7), "file", [make_deal(amount=2)])
        store.runs.record(TODAY, "file", [make_deal(amount=3)])
        review = store.runs.previous(TODAY)
        assert review.run_id == late and review.as_of == TODAY - timedelta(days=7)


def test_close_date_observations_one_per_review_day(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        for days_ago, close in [
            (14, date(2026, 12, 1)),
            (7, date(2026, 12, 5)),
            (7, date(2026, 12, 9)),
            (0, date(2027, 1, 1)),
        ]:
            store.runs.record(
                TODAY - timedelta(days=days_ago), "file", [make_deal(close_date=close)]
            )
        seen = store.runs.close_date_observations(TODAY)
        assert seen["D-1"] == [
            (TODAY - timedelta(days=14), date(2026, 12, 1)),
            (TODAY - timedelta(days=7), date(2026, 12, 9)),
        ]


def test_a_failed_run_writes_nothing(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        broken = make_deal(id=None)  # violates NOT NULL on deal_id
        with pytest.raises(sqlite3.IntegrityError):
            store.runs.record(TODAY, "file", [make_deal(), broken])
        assert store.runs.count() == 0


def test_wal_and_concurrent_writers(tmp_path):
    path = tmp_path / "s.db"
    Store.open(path).close()
    errors = []

    def write(n):
        try:
            with Store.open(path) as store:
                for i in range(10):
                    store.runs.record(TODAY, "file", [make_deal(id=f"D-{n}-{i}")])
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store.open(path) as store:
        assert store.runs.count() == 40
        assert store.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_commitments(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        first = add_commitment(
            store,
            deal_id="D-1",
            deal_name="Acme",
            rep_email="Alex@Example.com",
            text="Call CFO",
            due=TODAY,
            made_on=TODAY - timedelta(days=7),
        )
        add_commitment(
            store, deal_id="D-2", deal_name="Beta", rep_email="alex@example.com", text="Later"
        )
        open_before = store.commitments.all(status="open", made_before=TODAY)
        assert [c.id for c in open_before] == [first]
        assert open_before[0].rep_email == "alex@example.com"


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "s.db"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(DataError, match="not a leadprep state database"):
        Store.open(path)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(DataError, match="newer leadprep"):
        Store.open(path)


V2_DELIVERIES = """
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY, review_week TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL,
    content_hash TEXT NOT NULL, eml_path TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'superseded')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, sent_at TEXT, updated_at TEXT NOT NULL,
    UNIQUE (review_week, recipient, kind))
"""


def test_a_version_2_file_is_migrated_with_its_deliveries(tmp_path):
    from leadprep.store import SCHEMA_VERSION
    from leadprep.store.migrations import _BASE

    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    for statement in [*_BASE.split(";"), V2_DELIVERIES]:
        db.execute(statement)
    db.execute(
        "INSERT INTO deliveries (review_week, recipient, kind, content_hash, eml_path, status,"
        " updated_at) VALUES ('2026-W48', 'dana@example.com', 'manager', 'h', 'x.eml', 'sent', 't')"
    )
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with Store.open(path) as store:
        kept = store.deliveries.get("2026-W48", "dana@example.com", "manager")
        assert kept is not None and kept.status == "sent"
        assert store.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        queued = store.deliveries.queue("2026-W49", "dana@example.com", "manager", "h2", "y.eml")
        assert store.deliveries.claim(queued.id) is True
        assert store.deliveries.claim(queued.id) is False  # a second run cannot take it
        store.deliveries.mark(queued.id, sent=True)
        assert store.deliveries.claim(queued.id) is False


def test_a_claim_whose_run_died_is_taken_over(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        queued = store.deliveries.queue("2026-W49", "dana@example.com", "manager", "h", "x.eml")
        assert store.deliveries.claim(queued.id)
        store.connection.execute("UPDATE deliveries SET claimed_at = '2000-01-01T00:00:00+00:00'")
        assert store.deliveries.claim(queued.id)
        # requeueing (a concurrent run composing the same message) leaves a claim alone
        again = store.deliveries.queue("2026-W49", "dana@example.com", "manager", "h", "x.eml")
        assert again.status == "sending"


def test_read_only_commands_open_read_only_and_say_so_on_a_write(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        add_commitment(store)
    with Store.open(path, readonly=True) as store:
        assert len(store.commitments.all()) == 1
        with pytest.raises(DataError, match="is read-only"):
            add_commitment(store, deal_id="D-2", deal_name="B", text="y")
    missing = tmp_path / "none" / "s.db"
    with Store.open(missing, readonly=True) as store:
        assert store.commitments.all() == []
    assert not missing.parent.exists()  # reading creates nothing


def test_locked_is_told_apart(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.set_lock_wait(0.05)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(DataError, match="locked by another program"):
                store.runs.record(TODAY, "file", [make_deal()])
        finally:
            other.execute("ROLLBACK")
            other.close()


def damage(path):
    """Overwrite every page but the first (the schema) with garbage."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for offset in range(page, len(data)):
        data[offset] = 0xA5
    path.write_bytes(bytes(data))


def test_a_damaged_file_is_reported_as_damaged_with_what_to_do(tmp_path):
    from tests.helpers import cli

    path = tmp_path / "state.db"
    with Store.open(path) as store:
        for i in range(200):
            add_commitment(store, deal_id=f"D-{i}", deal_name="Acme" * 20, text="call the CFO" * 10)
        store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damage(path)
    result = cli("commitments", "--as-of", TODAY.isoformat())
    assert result.exit_code == 2, result.output
    assert "is damaged" in result.stderr and "PRAGMA integrity_check" in result.stderr
    assert "Traceback" not in result.stderr
    doctor = cli("doctor")
    assert "FAIL state" in doctor.stdout and doctor.exit_code == 2


def test_another_programs_sqlite_file_is_not_ours(tmp_path):
    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(DataError, match="not a leadprep state database"):
        Store.open(path)


def test_prune_keeps_the_last_reviews_and_every_commitment(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        add_commitment(store, made_on=TODAY - timedelta(days=700))
        for week in range(30):
            as_of = TODAY - timedelta(days=7 * (29 - week))
            store.runs.record(as_of, "file", [make_deal(), make_deal(id="D-2")])
            store.runs.record(as_of, "file", [make_deal(), make_deal(id="D-2")])  # same-day rerun
            store.runs.prune(26)
        kept = store.connection.execute(
            "SELECT COUNT(DISTINCT r.as_of), COUNT(*) FROM snapshots s JOIN runs r ON r.id = s.run_id"
        ).fetchone()
        assert kept == (26, 52)
        assert store.runs.count() == 60
        assert len(store.commitments.all()) == 1
        assert store.runs.previous(TODAY) is not None
        before = store.size()
        store.vacuum()
        assert store.size().total <= before.total and store.size().free == 0


def test_snapshots_are_compressed_and_older_plain_ones_still_read(tmp_path):
    import json

    from leadprep.model import deal_to_dict

    with Store.open(tmp_path / "s.db") as store:
        new = store.runs.record(TODAY, "file", [make_deal()])
        (stored,) = store.connection.execute(
            "SELECT data FROM snapshots WHERE run_id = ?", (new,)
        ).fetchone()
        assert isinstance(stored, bytes)  # zlib, not JSON text
        old = store.runs.record(TODAY - timedelta(days=7), "file", [])
        store.connection.execute(
            "INSERT INTO snapshots (run_id, deal_id, rep_email, stage, is_closed, data)"
            " VALUES (?, 'D-1', 'alex@example.com', 'Proposal', 0, ?)",
            (old, json.dumps(deal_to_dict(make_deal(amount=7)))),
        )
        assert store.runs.snapshot(old)["D-1"] == make_deal(amount=7)
        assert store.runs.snapshot(new)["D-1"] == make_deal()


def test_state_info_and_vacuum_report_the_size(tmp_path):
    from tests.helpers import cli

    assert "not created yet" in cli("state", "info").stdout
    assert not (tmp_path / "state.db").exists()
    with Store.open(tmp_path / "state.db") as store:
        for week in range(30):
            store.runs.record(
                TODAY - timedelta(days=7 * week),
                "file",
                [make_deal(id=f"D-{i}") for i in range(50)],
            )
    info = cli("state", "info")
    assert info.exit_code == 0 and "30 run(s) recorded" in info.stdout
    vacuum = cli("state", "vacuum")
    assert vacuum.exit_code == 0, vacuum.output
    assert "keeping snapshots of the last 26 reviews" in vacuum.stdout
    with Store.open(tmp_path / "state.db") as store:
        kept = store.connection.execute("SELECT COUNT(DISTINCT run_id) FROM snapshots").fetchone()[
            0
        ]
        assert kept == 26 and store.size().free == 0


def test_a_state_file_written_by_release_0_1_0_keeps_every_run_and_commitment(tmp_path):
    """Upgrading must never lose history: the file a user has today opens, migrates and reads."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript((FIXTURES / "state-0.1.0.sql").read_text())
    db.close()
    with Store.open(path) as store:
        assert store.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.runs.count() == 2
        last = store.runs.previous(date(2026, 11, 30))
        assert last is not None and last.as_of == date(2026, 11, 23)
        deals = store.runs.snapshot(last.run_id)
        assert sorted(deals) == ["R-1", "R-2", "R-3"]
        assert deals["R-1"].close_date == date(2026, 12, 22)
        assert deals["R-2"].amount == Decimal("12500.50")
        seen = store.runs.close_date_observations(date(2026, 11, 30))["R-1"]
        assert [close for _, close in seen] == [date(2026, 12, 15), date(2026, 12, 22)]
        kept, habit = store.commitments.all()
        assert (kept.status, kept.note, kept.success) == ("kept", "CFO joined", "CFO on the invite")
        assert kept.followed_up_on == date(2026, 11, 30) and kept.deal_name == "Acme renewal"
        assert [(f.status, f.note, f.review) for f in kept.followups] == [
            ("kept", "CFO joined", date(2026, 11, 30))
        ]  # migration 5 turned the one follow-up 0.1.0 kept into the start of a history
        assert (habit.deal_id, habit.rep_email, habit.status) == (None, "ben@example.com", "open")
        # and it takes new writes in the current schema
        add_commitment(store, text="after the upgrade", made_on=date(2026, 11, 30))
        assert len(store.commitments.all()) == 3


def test_state_backup_is_a_consistent_copy_taken_while_another_connection_writes(
    tmp_path, monkeypatch
):
    from tests.helpers import cli

    path = tmp_path / "state.db"
    with Store.open(path) as store:
        store.runs.record(TODAY, "file", [make_deal()], frozenset())
        add_commitment(store, text="Call Ana by Friday")
        with Store.open(path) as writer, writer.transaction():  # a write in progress elsewhere
            writer.connection.execute("DELETE FROM commitments")
            made = cli("state", "backup", tmp_path / "copy.db")
    assert made.exit_code == 0, made.output
    with Store.open(tmp_path / "copy.db", readonly=True) as copy:
        assert copy.runs.count() == 1
        assert [c.text for c in copy.commitments.all()] == ["Call Ana by Friday"]  # committed only
    again = cli("state", "backup", path)
    assert again.exit_code == 2 and "another file" in again.stderr
    monkeypatch.setenv("LEADPREP_STATE", str(tmp_path / "no.db"))
    missing = cli("state", "backup", tmp_path / "x.db")
    assert missing.exit_code == 2 and "nothing to back up" in missing.stderr
