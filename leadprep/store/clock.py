"""How the state file writes moments and dates (ISO 8601 text, UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def optional_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
