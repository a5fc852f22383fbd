"""Money movement since the last review, per currency: what a sales director reads first.

Won, lost, pushed out of the current quarter, pulled into it, cut, raised and new, from the deals
as the last review saw them and as they are now; and the Commit and Best Case amounts that carry a
high-severity flag. Amounts in different currencies are never added together. A deal with no
amount moves nothing (the page says when no deal has one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import date
from decimal import Decimal
from typing import Any

from leadprep.formatting import money
from leadprep.model import Deal
from leadprep.signals import forecast_category_key, quarter_of

ZERO = Decimal(0)


@dataclass
class Movement:
    """One currency's movement (amounts, never negative; ``cut`` and ``raised`` are the sums of
    the decreases and increases of amounts that changed)."""

    won: Decimal = ZERO
    lost: Decimal = ZERO
    pushed_out: Decimal = ZERO  # out of the current quarter
    pulled_in: Decimal = ZERO  # into the current quarter
    cut: Decimal = ZERO
    raised: Decimal = ZERO
    new: Decimal = ZERO
    commit_at_risk: Decimal = ZERO  # Commit deals with a high-severity flag
    best_case_at_risk: Decimal = ZERO

    def add(self, other: Movement) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_json(self) -> dict[str, str]:
        """Decimal strings with two places, as packets.json writes amounts (``"48000.00"``)."""
        return {k: f"{v:.2f}" for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Movement:
        return cls(**{f.name: Decimal(str(data.get(f.name, "0"))) for f in fields(cls)})

    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


def quarter_name(day: date, fiscal_start_month: int) -> str:
    """``Q4``: the fiscal quarter of ``day``."""
    return f"Q{quarter_of(day, fiscal_start_month)[1] + 1}"


def movement(
    previous: dict[str, Deal],
    current: Iterable[Deal],
    as_of: date,
    fiscal_start_month: int = 1,
    at_risk: Iterable[Deal] = (),
) -> dict[str, Movement]:
    """Per currency, how the money moved between the last review (``previous``: the deals as it
    saw them; empty for a first review) and now. ``at_risk``: the open deals carrying a
    high-severity flag (their Commit and Best Case amounts are counted)."""
    out: dict[str, Movement] = {}
    this_quarter = quarter_of(as_of, fiscal_start_month)

    def of(currency: str) -> Movement:
        return out.setdefault(currency, Movement())

    for deal in current:
        before = previous.get(deal.id)
        if before is None:
            if previous and deal.is_open and deal.amount is not None:
                of(deal.currency).new += deal.amount
            continue
        if before.is_closed:
            continue
        amount = deal.amount if deal.amount is not None else before.amount
        if deal.is_closed:
            if amount is not None:
                target = of(deal.currency)
                if deal.is_won:
                    target.won += amount
                else:
                    target.lost += before.amount if before.amount is not None else amount
            continue
        if (
            before.amount is not None
            and deal.amount is not None
            and before.currency == deal.currency
        ):
            change = deal.amount - before.amount
            if change < 0:
                of(deal.currency).cut -= change
            elif change > 0:
                of(deal.currency).raised += change
        if amount is None or before.close_date is None or deal.close_date is None:
            continue
        was_in = quarter_of(before.close_date, fiscal_start_month) == this_quarter
        now_in = quarter_of(deal.close_date, fiscal_start_month) == this_quarter
        if was_in and not now_in and deal.close_date > before.close_date:
            of(deal.currency).pushed_out += amount
        elif now_in and not was_in and deal.close_date < before.close_date:
            of(deal.currency).pulled_in += amount
    for deal in at_risk:
        category = forecast_category_key(deal)
        if deal.amount is None:
            continue
        if category == "commit":
            of(deal.currency).commit_at_risk += deal.amount
        elif category == "best case":
            of(deal.currency).best_case_at_risk += deal.amount
    return {c: m for c, m in out.items() if m.any()}


def summed(movements: Iterable[dict[str, Movement]]) -> dict[str, Movement]:
    """Several reps' (or reviews') movements added up per currency."""
    out: dict[str, Movement] = {}
    for by_currency in movements:
        for currency, m in by_currency.items():
            out.setdefault(currency, Movement()).add(m)
    return out


LABELS = (
    ("won", "won"),
    ("lost", "lost"),
    ("pushed_out", "pushed out of {quarter}"),
    ("pulled_in", "pulled into {quarter}"),
    ("cut", "cut"),
    ("raised", "raised"),
    ("new", "new"),
)


def sentence(by_currency: dict[str, Movement], quarter: str) -> str:
    """``won $120,000; pushed out of Q4 $180,000; … · Commit carrying a high flag: $240,000``;
    one clause list per currency, each figure with its unit."""
    parts = []
    for currency, m in sorted(by_currency.items()):
        moved = [
            f"{label.format(quarter=quarter)} {money(getattr(m, key), currency)}"
            for key, label in LABELS
            if getattr(m, key)
        ]
        risk = [
            f"{name} carrying a high flag: {money(value, currency)}"
            for name, value in (("Commit", m.commit_at_risk), ("Best Case", m.best_case_at_risk))
            if value
        ]
        parts.append("; ".join(moved + risk))
    return " · ".join(p for p in parts if p)
