"""What each coaching number means, in one place: its stable name, its label, its unit, which way
is better, and how it is computed. The rollup, ``history``, the index and the sheets' trend strip
show these numbers; the README's table ("Tracking the results") is made from this list, and a test
keeps the two equal. A team's target for a measure (config ``targets``) is checked here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Measure:
    key: str  # the stable name: history's JSON and CSV, config targets
    label: str
    unit: str  # what one of it is: "%" for a share, else a noun said after the number
    definition: str
    better: Literal["higher", "lower"] | None = None  # None: no direction, so no target

    @property
    def share(self) -> bool:
        return self.unit == "%"

    def show(self, value: float | None) -> str:
        """The value with its unit: ``67%``, ``0.4 flags a deal``; ``—`` when there is none."""
        if value is None:
            return "—"
        if self.share:
            return f"{round(100 * value)}%"
        number = f"{value:g}" if float(value).is_integer() else f"{value:.1f}"
        if number == "1":  # "1 deal", "1 flag a deal"
            return f"1 {self.unit.replace('s ', ' ', 1) if ' ' in self.unit else self.unit[:-1]}"
        return f"{number} {self.unit}"

    def meets(self, value: float | None, target: float | None) -> bool | None:
        """Whether ``value`` meets ``target`` (None: no target, or nothing to judge yet)."""
        if value is None or target is None or self.better is None:
            return None
        return value >= target if self.better == "higher" else value <= target

    def readme_row(self) -> str:
        return f"| {self.label} (`{self.key}`) | {self.unit} | {self.definition} |"


MEASURES: dict[str, Measure] = {
    m.key: m
    for m in (
        Measure(
            "reviews",
            "Reviews",
            "reviews",
            "review dates at which the rep had a sheet",
        ),
        Measure(
            "agree_share",
            "1:1s that ended with a commitment (Agree done)",
            "%",
            "of the 1:1s held at those reviews, the share where a commitment was recorded. A "
            "review's 1:1 counts as held once a later review exists, something was recorded at "
            "it, or it is a week old: the review being prepared has not had its 1:1, so it is "
            'shown apart ("this week: not held yet") and never pulls the rate down',
            "higher",
        ),
        Measure(
            "followed_up_share",
            "Followed up at the next review (Deliver done)",
            "%",
            "of the commitments made at a review whose next review's 1:1 has happened, the share "
            "whose first follow-up was recorded at that next review (before that 1:1, only those "
            "already followed up count, on both sides)",
            "higher",
        ),
        Measure(
            "kept_rate",
            "Kept rate",
            "%",
            "the follow-ups recorded at those reviews (each commitment's latest): kept counts 1, "
            "partly ½, missed 0, ÷ follow-ups; shown with how many were kept, partly kept and "
            "missed. The index and each sheet's trend strip use the same rule",
            "higher",
        ),
        Measure(
            "worked_share",
            "Worked, as the rep said",
            "%",
            "of those follow-ups where the rep said whether the success sign was met, the share "
            "where it was",
            "higher",
        ),
        Measure(
            "never_followed_up",
            "Never followed up",
            "commitments",
            "commitments still open that were made before the latest review",
            "lower",
        ),
        Measure(
            "flags_per_deal",
            "Flags per deal",
            "flags a deal",
            "flags ÷ open deals, summed over the reviews (riders not counted)",
            "lower",
        ),
        Measure(
            "high_flags_per_sheet",
            "High flags per sheet",
            "high flags a sheet",
            'high-severity flags ÷ the rep sheets at those reviews: the "High" of `prep` and '
            "`history` (flags in a line shared by most deals included, riders not). A team's "
            "is its reps' average, so a team and its reps share one scale",
            "lower",
        ),
        Measure(
            "close_moved",
            "Close dates moved",
            "deals",
            "deals whose close date was pushed or pulled in since the review before, summed (a "
            'first close date is "set", not moved)',
        ),
        Measure(
            "focus_next",
            "Focus deals a week later",
            "deals",
            "of the deals each rep's sheet talked about, what had happened by the next review: "
            "moved a stage forward, gained a contact, won, lost, close date pushed, or none of "
            'those ("sat still"); a deal may count in more than one. On the line above each team',
        ),
        Measure(
            "money",
            "Money",
            "amount per currency",
            "since the review before, per currency, summed over the window: **won** and "
            "**lost** (the amount of deals that closed), **pushed out of** and **pulled into** "
            "the current fiscal quarter (the deal's amount), **cut** and **raised** (the change "
            "of amounts), **new** (deals not at the review before); and the **Commit** and "
            "**Best Case** amounts that carry a high-severity flag at the latest review (a "
            "standing amount: never added across weeks). Currencies are never added together; "
            "with no amounts in the data, the index says so once. On the line above each team",
        ),
    )
}

TARGETED = {k for k, m in MEASURES.items() if m.better is not None}


def parse_target(key: str, raw: object) -> float:
    """A target from the config: ``90%`` or ``0.9`` for a share, a number for the others."""
    measure = MEASURES.get(key)
    if measure is None or key not in TARGETED:
        known = ", ".join(sorted(TARGETED))
        raise ValueError(f"{key!r} takes no target; targets can be set for: {known}")
    text = str(raw).strip()
    percent = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
    if measure.share:
        if percent:
            value = float(percent.group(1)) / 100
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(
                    f"{key}: {text!r} is not a share; write it as 80% or 0.8"
                ) from None
            if value > 1:
                raise ValueError(f"{key}: {text} is above 1; write a share as 80% or 0.8")
        if not 0 <= value <= 1:
            raise ValueError(f"{key}: a share is between 0% and 100%")
        return value
    if percent:
        raise ValueError(f"{key} is counted in {measure.unit}, not a percentage: write a number")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{key}: {text!r} is not a number of {measure.unit}") from None
    if value < 0:
        raise ValueError(f"{key}: a target is 0 or more")
    return value
