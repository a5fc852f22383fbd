"""CRM text is hostile until proven otherwise: the checks every deal passes at the connector
boundary, and the helpers the sinks (links, Markdown, shell lines, email headers) rely on.

Cleaning happens once, where a connector hands its deals over, so the store, the sheets, the
emails and the terminal all see the same safe text.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from leadprep.model import EARLIEST_DATE, LATEST_DATE, MAX_AMOUNT, Change, Contact, Deal, Rep

# C0 controls except tab and newline, DEL, C1 controls, and the bidi embedding/override/isolate
# characters that can make a name read differently from what it is ("Trojan Source").
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\s*[\r\n\t\u2028\u2029\x85]+\s*")
# One address, no display name, no comma or whitespace: what a recipient field may hold.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,63}$"
)
_CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217 codes: they are printed beside amounts
MAX_ADDRESS = 254  # RFC 5321's limit on a forward path


class UnsafeValue(ValueError):
    """A value that cannot be used as it stands; the message says which and why."""


def clean_line(value: str | None) -> str | None:
    """A one-line field (names, stages, ids): control and bidi characters removed, line breaks
    and tabs folded into one space, outer space trimmed; None stays None."""
    if value is None:
        return None
    text = _LINE_BREAKS.sub(" ", value.replace("\r\n", "\n"))
    return _CONTROL.sub("", text).strip()


def clean_text(value: str | None) -> str | None:
    """A multi-line field (next step): like :func:`clean_line` but keeps line breaks (CR LF and
    lone CR become LF)."""
    if value is None:
        return None
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text).strip()


def terminal_text(value: object) -> str:
    """Text safe to print on a terminal: every control character (escape sequences included)
    and bidi override shown as ``?``, line breaks kept."""
    return _CONTROL.sub("?", str(value).replace("\r\n", "\n").replace("\r", "?"))


def email_address(value: str | None) -> str | None:
    """One plain address in lower case, or None for blank; raises UnsafeValue for anything else
    (a list, a display name, a header break)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > MAX_ADDRESS or not _ADDRESS.match(text):
        raise UnsafeValue(f"{(clean_line(text) or '')[:80]!r} is not one email address")
    return text.lower()


def safe_url(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL with a host and no whitespace or control
    character (the only links a sheet makes); None otherwise."""
    if not value:
        return None
    text = value.strip()
    if any(ch.isspace() for ch in text) or _CONTROL.search(text) or '"' in text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return text


def markdown_link_target(url: str) -> str:
    """A URL made safe inside Markdown's ``(…)``: characters that could end the link or start
    markup are percent-encoded."""
    return quote(url, safe=":/?#@!$&'*+,;=%~-._[]")  # no ( ) < > space or backslash


def shell_quote(value: str) -> str:
    """One argument of a command line printed for pasting: quoted so the shell runs nothing."""
    return shlex.quote(value)


_ADDRESS_SPECIALS = re.compile(r'[<>@,;:"()\[\]\\]+')
MAX_DISPLAY_NAME = 64


def display_name(value: str) -> str:
    """A name for an email header: one line, none of the characters that delimit addresses
    (a folded header could otherwise parse as two recipients), at most 64 characters."""
    text = _ADDRESS_SPECIALS.sub(" ", clean_line(value) or "")
    return " ".join(text.split())[:MAX_DISPLAY_NAME].strip()


def currency_code(value: str | None) -> str:
    """A 3-letter ISO 4217 code in upper case (USD when blank); raises UnsafeValue otherwise,
    since the code is printed beside every amount."""
    code = (clean_line(value) or "USD").upper()
    if not _CURRENCY.match(code):
        raise UnsafeValue(f"currency {code[:20]!r} is not a 3-letter code like USD or EUR")
    return code


def _sane_date(value: Any) -> Any:
    """A date or datetime inside the supported range, else None (a CRM typing error)."""
    if value is None:
        return None
    day = value.date() if isinstance(value, datetime) else value
    return value if isinstance(day, date) and EARLIEST_DATE <= day <= LATEST_DATE else None


def _sane_amount(value: Decimal | None) -> Decimal | None:
    if value is None or not value.is_finite() or not 0 <= value < MAX_AMOUNT:
        return None
    return value


def _sane_change(change: Change) -> bool:
    values = (change.old, change.new, change.at)
    return all(_sane_date(v) is not None for v in values if isinstance(v, date))


def _clean_contact(contact: Contact) -> Contact | None:
    name = clean_line(contact.name)
    if not name:
        return None
    try:
        email = email_address(contact.email) if isinstance(contact.email, str) else None
    except UnsafeValue:
        email = None  # a contact's address is shown, never mailed: drop it rather than the deal
    return Contact(
        name=name,
        email=email,
        role=clean_line(contact.role) or None,
        title=clean_line(contact.title) or None,
    )


def clean_deal(deal: Deal) -> Deal:
    """The deal with every text field cleaned and its addresses checked; raises UnsafeValue when
    the owner's or manager's address is not one valid address (the deal cannot be routed)."""
    try:
        owner_email = email_address(deal.owner.email)
    except UnsafeValue as exc:
        raise UnsafeValue(f"owner email {exc}") from None
    if owner_email is None:
        raise UnsafeValue("the owner has no email address")
    try:
        manager_email = email_address(deal.manager_email)
    except UnsafeValue as exc:
        raise UnsafeValue(f"manager email {exc}") from None
    currency = currency_code(deal.currency)
    deal_id = clean_line(deal.id)
    if not deal_id:
        raise UnsafeValue("the deal id is empty once control characters are removed")
    contacts = tuple(c for c in map(_clean_contact, deal.contacts) if c is not None)
    return replace(
        deal,
        id=deal_id,
        name=clean_line(deal.name) or "(no name)",
        owner=Rep(
            id=clean_line(deal.owner.id) or owner_email,
            name=clean_line(deal.owner.name) or owner_email,
            email=owner_email,
        ),
        stage=clean_line(deal.stage) or "",
        account=clean_line(deal.account) or None,
        currency=currency,
        forecast_category=clean_line(deal.forecast_category) or None,
        next_step=clean_text(deal.next_step) or None,
        url=safe_url(clean_line(deal.url)),
        manager_email=manager_email,
        contacts=contacts,
        amount=_sane_amount(deal.amount),
        close_date=_sane_date(deal.close_date),
        created_at=_sane_date(deal.created_at),
        stage_entered_at=_sane_date(deal.stage_entered_at),
        last_activity_at=_sane_date(deal.last_activity_at),
        next_activity_at=_sane_date(deal.next_activity_at),
        next_step_updated_at=_sane_date(deal.next_step_updated_at),
        history=tuple(c for c in deal.history if _sane_change(c)),
    )


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting with ``= + - @``, a tab or a carriage
    return gets a leading ``'`` (OWASP's rule against CSV injection); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# Letters that draw nothing (Hangul fillers, the braille blank), beside the format characters
# (zero-width space, word joiner, byte-order mark …) and spaces.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_visible_text(value: str | None) -> bool:
    """Whether ``value`` shows anything on a page: not empty, not only spaces, zero-width or
    format characters, or letters that draw nothing."""
    return any(
        ch not in _BLANK_LETTERS and unicodedata.category(ch) not in ("Cc", "Cf", "Zs", "Zl", "Zp")
        for ch in value or ""
    )
