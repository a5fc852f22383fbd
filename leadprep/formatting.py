"""How facts are written for people: short dates, money, counts. Shared by evidence and sheets."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "CAD": "C$"}


def short_date(value: date | datetime | None, today: date | None = None) -> str:
    """``Nov 30`` (with the year when it is not ``today``'s year); ``unknown`` for None."""
    if value is None:
        return "unknown"
    if isinstance(value, datetime):
        value = value.date()
    text = f"{value:%b} {value.day}"
    if today is None or value.year != today.year:
        text += f", {value.year}"
    return text


def money(amount: Decimal | None, currency: str = "USD") -> str:
    """``$48,000`` / ``48,000 CHF``; cents only when there are any; ``no amount`` for None."""
    if amount is None:
        return "no amount"
    text = f"{amount:,.2f}" if amount != amount.to_integral_value() else f"{amount:,.0f}"
    symbol = _SYMBOLS.get(currency.upper())
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


def money_totals(totals: dict[str, Decimal]) -> str:
    """``$77,000 + €12,500``: one amount per currency, never added across currencies."""
    if not totals:
        return money(Decimal(0))
    return " + ".join(money(amount, currency) for currency, amount in totals.items())


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 day`` / ``3 days``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def percent(probability: float | None) -> str:
    return "unknown" if probability is None else f"{round(probability * 100)}%"


def days_between(earlier: date | datetime, later: date) -> int:
    if isinstance(earlier, datetime):
        earlier = earlier.date()
    return (later - earlier).days


def ago(value: date | datetime | None, today: date) -> str:
    """``3 days ago`` / ``in 12 days`` / ``today``, relative to the review date."""
    if value is None:
        return "unknown"
    days = days_between(value, today)
    if days == 0:
        return "today"
    return f"{plural(days, 'day')} ago" if days > 0 else f"in {plural(-days, 'day')}"


def times(count: int) -> str:
    """``once``, ``twice``, ``3 times``: how often, as people say it."""
    return "once" if count == 1 else "twice" if count == 2 else f"{count} times"
