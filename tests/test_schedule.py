"""The foreground scheduler: fire times across DST, one run end to end, failures survived."""

from datetime import UTC, datetime, timedelta

import pytest

from leadprep.schedule import Scheduler, next_fire_times
from tests.helpers import mail_config


@pytest.mark.parametrize(
    ("after", "expected_utc"),
    [
        # New York, Monday 07:00: EST before 2026-03-08, EDT after; EDT until 2026-11-01, EST after
        (
            datetime(2026, 3, 1, tzinfo=UTC),
            ["2026-03-02T12:00", "2026-03-09T11:00", "2026-03-16T11:00"],
        ),
        (
            datetime(2026, 10, 20, tzinfo=UTC),
            ["2026-10-26T11:00", "2026-11-02T12:00", "2026-11-09T12:00"],
        ),
    ],
)
def test_next_fire_times_keep_local_time_across_dst(after, expected_utc):
    times = next_fire_times("0 7 * * MON", "America/New_York", after, 3)
    assert [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") for t in times] == expected_utc
    assert all(t.hour == 7 and t.weekday() == 0 for t in times)


class FakeClock:
    def __init__(self, start):
        self.time = start
        self.waits = []

    def now(self):
        return self.time

    def wait(self, seconds):
        self.waits.append(seconds)
        self.time += timedelta(seconds=seconds)
        return False


def test_one_scheduled_run_end_to_end(tmp_path, smtp, monkeypatch):
    config = mail_config(tmp_path, smtp.port)
    monkeypatch.chdir(tmp_path)
    from leadprep.cli import _send_once
    from leadprep.config import load_config

    cfg = load_config(config)
    clock = FakeClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # a Friday
    codes = []
    scheduler = Scheduler(
        "0 7 * * MON",
        "America/New_York",
        lambda fire: codes.append(_send_once(cfg, fire.date(), None)),
        now=clock.now,
        wait=clock.wait,
    )
    scheduler.run(max_runs=1)
    assert clock.waits == [
        (
            datetime(2026, 11, 30, 12, 0, tzinfo=UTC) - datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
        ).total_seconds()
    ]
    assert codes == [0] and len(smtp.inbox.to("dana@example.com")) == 1


def test_a_failed_run_does_not_stop_the_schedule_and_stop_is_clean():
    clock = FakeClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    calls = []

    def job(fire):
        calls.append(fire)
        if len(calls) == 1:
            raise RuntimeError("SMTP exploded")
        if len(calls) == 3:
            scheduler.stop()  # as the SIGTERM handler does

    scheduler = Scheduler("0 7 * * MON", "UTC", job, now=clock.now, wait=clock.wait)
    scheduler.run()
    assert len(calls) == 3 and scheduler.failures == 1 and scheduler.stopped
    assert [c.date().isoformat() for c in calls] == ["2026-11-30", "2026-12-07", "2026-12-14"]
