import sqlite3
import threading
from datetime import date, timedelta

import pytest
from conftest import TODAY, make_deal

from leadprep.errors import DataError
from leadprep.store import Store


def test_runs_and_snapshots_round_trip(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        deal = make_deal()
        run = store.record_run(TODAY, "file", [deal])
        assert store.snapshot(run) == {"D-1": deal}
        assert store.snapshot(run)["D-1"].contacts == deal.contacts


def test_previous_review_ignores_same_day_reruns(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        assert store.previous_review(TODAY) is None
        store.record_run(TODAY - timedelta(days=7), "file", [make_deal(amount=1)])
        late = store.record_run(TODAY - timedelta(days=7), "file", [make_deal(amount=2)])
        store.record_run(TODAY, "file", [make_deal(amount=3)])
        review = store.previous_review(TODAY)
        assert review.run_id == late and review.as_of == TODAY - timedelta(days=7)


def test_close_date_observations_one_per_review_day(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        for days_ago, close in [
            (14, date(2026, 12, 1)),
            (7, date(2026, 12, 5)),
            (7, date(2026, 12, 9)),
            (0, date(2027, 1, 1)),
        ]:
            store.record_run(
                TODAY - timedelta(days=days_ago), "file", [make_deal(close_date=close)]
            )
        seen = store.close_date_observations(TODAY)
        assert seen["D-1"] == [
            (TODAY - timedelta(days=14), date(2026, 12, 1)),
            (TODAY - timedelta(days=7), date(2026, 12, 9)),
        ]


def test_a_failed_run_writes_nothing(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        broken = make_deal(id=None)  # violates NOT NULL on deal_id
        with pytest.raises(sqlite3.IntegrityError):
            store.record_run(TODAY, "file", [make_deal(), broken])
        assert store.run_count() == 0


def test_wal_and_concurrent_writers(tmp_path):
    path = tmp_path / "s.db"
    Store.open(path).close()
    errors = []

    def write(n):
        try:
            with Store.open(path) as store:
                for i in range(10):
                    store.record_run(TODAY, "file", [make_deal(id=f"D-{n}-{i}")])
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store.open(path) as store:
        assert store.run_count() == 40
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_commitments(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        first = store.add_commitment(
            deal_id="D-1",
            deal_name="Acme",
            rep_email="Alex@Example.com",
            text="Call CFO",
            due=TODAY,
            made_on=TODAY - timedelta(days=7),
        )
        store.add_commitment(
            deal_id="D-2",
            deal_name="Beta",
            rep_email="alex@example.com",
            text="Later",
            due=None,
            made_on=TODAY,
        )
        open_before = store.commitments(status="open", made_before=TODAY)
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
