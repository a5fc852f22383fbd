"""``leadprep schedule``: run the send job on a cron schedule in a time zone, in the foreground.

A failed run is logged and the schedule goes on; SIGTERM or SIGINT stops it between runs (or
while it waits). Next fire times come from croniter, which keeps local wall-clock times across
daylight-saving changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from leadprep.errors import LeadprepError

log = logging.getLogger(__name__)


def next_fire_times(cron: str, timezone: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` times the schedule fires after ``after``, as aware local datetimes."""
    zone = ZoneInfo(timezone)
    cursor = croniter(cron, after.astimezone(zone))
    return [cursor.get_next(datetime) for _ in range(count)]


class Scheduler:
    """Waits for each fire time and calls ``job(fire_time)``; survives a failing job."""

    def __init__(
        self,
        cron: str,
        timezone: str,
        job: Callable[[datetime], None],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.cron = cron
        self.timezone = timezone
        self.job = job
        self.now = now
        self._stopped = threading.Event()
        self.wait = wait or self._stopped.wait  # returns True when asked to stop
        self.runs = 0
        self.failures = 0

    def stop(self) -> None:
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def run(self, max_runs: int | None = None) -> None:
        """Run until stopped (or after ``max_runs`` runs)."""
        while not self.stopped and (max_runs is None or self.runs < max_runs):
            fire = next_fire_times(self.cron, self.timezone, self.now())[0]
            delay = (fire - self.now()).total_seconds()
            log.warning(
                "next run %s (in %s)", fire.strftime("%a %Y-%m-%d %H:%M %Z"), _duration(delay)
            )
            if delay > 0 and self.wait(delay):
                break
            if self.stopped:
                break
            self.runs += 1
            try:
                self.job(fire)
            except LeadprepError as exc:
                self.failures += 1
                log.error(
                    "the scheduled run for %s failed; the schedule goes on: %s",
                    fire.isoformat(),
                    exc,
                )
            except Exception:
                self.failures += 1
                # The handler's formatter masks secrets in the traceback too (redact.py).
                log.exception(
                    "the scheduled run for %s failed with an internal error; the schedule goes on",
                    fire.isoformat(),
                )
        log.warning("scheduler stopped after %d run(s), %d failed", self.runs, self.failures)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min"]
    return " ".join(p for p in parts if p)
