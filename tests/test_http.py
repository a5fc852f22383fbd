"""The neutral HTTP kit: jittered backoff within its bounds, and the repeated-cursor guard on
both kinds of paged read, raising the error of the caller's role."""

from __future__ import annotations

import pytest

from leadprep.errors import CRMUnavailableError, ServiceUnavailableError
from leadprep.http import backoff_delay, walk_batches, walk_pages


@pytest.mark.parametrize(
    "attempt, low, high", [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (10, 15.0, 30.0)]
)
def test_backoff_is_half_certain_half_random_and_capped(attempt, low, high):
    assert backoff_delay(attempt, 1.0, jitter=lambda: 0.0) == low
    assert backoff_delay(attempt, 1.0, jitter=lambda: 0.9999) == pytest.approx(high, rel=1e-3)
    draws = {backoff_delay(attempt, 1.0) for _ in range(50)}
    assert len(draws) > 1 and all(low <= d <= high for d in draws)  # workers do not align


def test_a_cursor_handed_out_twice_stops_a_walk_with_the_callers_error():
    pages = iter([{"next": "a"}, {"next": "b"}, {"next": "a"}])
    with pytest.raises(CRMUnavailableError, match="same page cursor twice"):
        list(walk_pages(lambda _: next(pages), lambda p: p["next"], "Deals", CRMUnavailableError))
    with pytest.raises(ServiceUnavailableError):
        list(walk_pages(lambda _: {"next": "same"}, lambda p: p["next"], "Posts"))


def test_batched_reads_follow_each_items_cursor_and_stop_on_a_repeat():
    def read(batch):
        return [(item, f"{item}-next") if "-next" not in item else (item, None) for item in batch]

    def more(page):
        return [follow for _, follow in page if follow]

    pages = list(walk_batches(["a", "b", "c"], 2, read, more, "Associations"))
    assert [[i for i, _ in p] for p in pages] == [["a", "b"], ["c", "a-next"], ["b-next", "c-next"]]
    with pytest.raises(ServiceUnavailableError, match="Associations"):
        list(walk_batches(["a"], 2, lambda b: b, lambda page: ["a"], "Associations"))
