"""The close-date history of a slipped deal as a small chart: where the date was, where it is,
and today. Returns plain numbers and strings; the template draws them as inline SVG."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

from leadprep.formatting import short_date

WIDTH, HEIGHT = 460, 64
LEFT, RIGHT = 28, 28
AXIS_Y = 30


@dataclass(frozen=True)
class Point:
    x: float
    label: str
    current: bool
    label_y: float


@dataclass(frozen=True)
class Hop:
    x1: float
    x2: float
    push: bool  # later (push) or earlier (pull-in)


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    axis_y: int
    left: int
    right: int
    points: list[Point]
    hops: list[Hop]
    today_x: float
    summary: str  # the same information as text, for screen readers and the text layer


def close_date_chart(timeline: list[date], today: date) -> Chart | None:
    """A chart of the close dates, oldest first, or None when there is nothing to show."""
    if len(timeline) < 2:
        return None
    first, last = min(*timeline, today), max(*timeline, today)
    span = max((last - first).days, 1)

    def x(day: date) -> float:
        return round(LEFT + (day - first).days / span * (WIDTH - LEFT - RIGHT), 1)

    points = []
    previous_x = None
    row = 0
    for index, day in enumerate(timeline):
        px = x(day)
        # Alternate label rows when labels would collide.
        row = 1 - row if previous_x is not None and abs(px - previous_x) < 46 else 0
        points.append(
            Point(px, short_date(day, today), index == len(timeline) - 1, AXIS_Y + 16 + 11 * row)
        )
        previous_x = px
    hops = [Hop(x(a), x(b), b > a) for a, b in itertools.pairwise(timeline) if a != b]
    summary = (
        "Close date history: "
        + " → ".join(p.label for p in points)
        + f"; today {short_date(today, today)}"
    )
    return Chart(WIDTH, HEIGHT, AXIS_Y, LEFT, RIGHT, points, hops, x(today), summary)
