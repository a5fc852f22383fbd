"""Pure parsers for the values found in CRM exports: dates, money, percentages, booleans, contacts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from leadprep.model import Contact

_TRUE = {"true", "yes", "y", "1", "t", "x"}
_FALSE = {"false", "no", "n", "0", "f", ""}
_CONTACT = re.compile(
    r"^(?P<name>[^<\[(]*?)\s*(?:<(?P<email>[^>]*)>)?\s*(?:\[(?P<role>[^\]]*)\])?"
    r"\s*(?:\((?P<title>[^()]*)\))?\s*$"
)
_THOUSANDS_COMMA = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_THOUSANDS_DOT = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$")


class FieldError(ValueError):
    """A value that cannot be parsed; the message names the field and the value."""


def blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_date(field: str, value: str | None) -> date | None:
    """ISO 8601 date (a datetime is cut to its date); blank is None."""
    if blank(value):
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        raise FieldError(f"{field} {text!r} is not a date in YYYY-MM-DD form") from None


def parse_datetime(field: str, value: str | None) -> datetime | None:
    """ISO 8601 date or datetime as an aware UTC datetime; a bare date is midnight UTC."""
    if blank(value):
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError(
            f"{field} {text!r} is not an ISO 8601 date or date-time (e.g. 2026-11-30)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_amount(field: str, value: str | float | int | None) -> Decimal | None:
    """Money as Decimal; tolerates currency symbols and thousands separators (48,000 or 48.000,00)."""
    if blank(value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = repr(value)
    else:
        text = re.sub(r"[\s$€£¥]|[A-Z]{3}", "", str(value).strip())
    original = str(value).strip()
    if _THOUSANDS_COMMA.match(text):
        text = text.replace(",", "")
    elif _THOUSANDS_DOT.match(text):
        text = text.replace(".", "").replace(",", ".")
    elif "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise FieldError(f"{field} {original!r} is not a number") from None
    if not amount.is_finite():
        raise FieldError(f"{field} {original!r} is not a number")
    if amount < 0:
        raise FieldError(f"{field} {original!r} is negative")
    return amount.quantize(Decimal("0.01"))


def parse_probability(field: str, value: str | float | None) -> float | None:
    """A probability given as 0–1 or 0–100 (with or without %), returned as 0–1."""
    if blank(value):
        return None
    text = str(value).strip().rstrip("%").strip()
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        raise FieldError(f"{field} {value!r} is not a number") from None
    if number > 1:
        number /= 100
    if not 0 <= number <= 1:
        raise FieldError(f"{field} {value!r} must be between 0 and 1 (or 0 and 100)")
    return number


def parse_bool(field: str, value: str | bool | None) -> bool:
    """true/false, yes/no, 1/0; blank is false."""
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FieldError(f"{field} {value!r} is not true/false")


def parse_contacts(value: str | None) -> tuple[Contact, ...]:
    """``Ana Ruiz <ana@acme.com> [Economic Buyer] (CFO); Bo Chen`` → contacts, in the given order.

    Email, role and job title are optional; a trailing ``(…)`` is the job title.
    """
    if blank(value):
        return ()
    contacts = []
    for part in str(value).split(";"):
        part = part.strip()
        if not part:
            continue
        match = _CONTACT.match(part)
        if not match or not match.group("name").strip():
            raise FieldError(
                f"contact {part!r} is not in the form 'Name <email> [Role]' (email and role optional)"
            )
        contacts.append(
            Contact(
                name=match.group("name").strip(),
                email=(match.group("email") or "").strip().lower() or None,
                role=(match.group("role") or "").strip() or None,
                title=(match.group("title") or "").strip() or None,
            )
        )
    return tuple(contacts)


def parse_date_list(field: str, value: str | list | None) -> list[date]:
    """``2026-10-31; 2026-11-30`` (or a JSON list) → dates, oldest first as given."""
    if blank(value):
        return []
    items = value if isinstance(value, list) else re.split(r"[;|]", str(value))
    out = []
    for item in items:
        parsed = parse_date(field, item)
        if parsed is not None:
            out.append(parsed)
    return out
