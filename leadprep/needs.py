"""The inputs a risk signal needs and a source may not carry at all: one list, shared by the
signals (``@signal(needs=…)``) and the connectors (``FetchResult.unsupported``), so a misspelt
key cannot silently turn a check back on. Values are the strings stored with each run."""

from __future__ import annotations

from enum import StrEnum


class Need(StrEnum):
    CONTACTS = "contacts"
    CONTACT_ROLES = "contact_roles"
    CLOSE_DATE = "close_date"
    LAST_ACTIVITY = "last_activity"
    STAGE_ENTERED = "stage_entered"
    NEXT_STEP = "next_step"
    AMOUNT = "amount"
    FORECAST = "forecast"
