"""Pure parsers for the values CRMs hand us: dates, money, percentages, booleans, contacts.

Two families, with distinct names. ``parse_*`` are strict, for files people export and edit: a
value that cannot be read raises :class:`FieldError`, which becomes a row problem with its line.
``read_*`` are lenient, for API answers whose types the CRM already enforces: a value that cannot
be read is "no value" (HubSpot stores whatever users type in a number field).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation

from leadprep.model import EARLIEST_DATE, LATEST_DATE, MAX_AMOUNT, Contact

_TRUE = {"true", "yes", "y", "1", "t", "x"}
_FALSE = {"false", "no", "n", "0", "f", ""}
_CONTACT = re.compile(
    r"^(?P<name>[^<\[(]*?)\s*(?:<(?P<email>[^>]*)>)?\s*(?:\[(?P<role>[^\]]*)\])?"
    r"\s*(?:\((?P<title>[^()]*)\))?\s*$"
)


class FieldError(ValueError):
    """A value that cannot be parsed; the message names the field and the value."""


def blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# 12/15/2026, 15/12/2026, 15.12.2026, optionally with a time (10:30, 10:30:00, 10:30 AM)
_NUMERIC_DATE = re.compile(
    r"^(?P<a>\d{1,2})(?P<sep>[/.])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4})"
    r"(?:[ T]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s*(?P<ampm>[AaPp][Mm])?)?$"
)
DateOrder = str  # "mdy" (12/15/2026) or "dmy" (15/12/2026, 15.12.2026)


def numeric_date_hint(value: object) -> str | None:
    """What a written date says about the file's order: ``mdy`` or ``dmy`` beyond doubt
    (a first number over 12, a second over 12, or dots), ``?`` when it could be either, None
    when it is not a numeric date at all."""
    if not isinstance(value, str):
        return None
    match = _NUMERIC_DATE.match(value.strip())
    if match is None:
        return None
    first, second = int(match["a"]), int(match["b"])
    if first > 12 and second > 12:
        return None  # no date either way round: the value is simply wrong
    if match["sep"] == ".":
        return "dmy"
    if first > 12 >= second:
        return "dmy"
    if second > 12 >= first:
        return "mdy"
    return "?"


def _numeric(field: str, text: str, order: DateOrder | None) -> datetime | None:
    """A numeric date (and time) in ``order``; None when ``text`` is not one."""
    match = _NUMERIC_DATE.match(text)
    if match is None:
        return None
    if match["sep"] == ".":
        order = "dmy"
    if int(match["a"]) > 12 and int(match["b"]) > 12:
        raise FieldError(f"{field} {text!r} is not a date (neither month/day nor day/month)")
    if order not in ("mdy", "dmy"):
        raise FieldError(
            f"{field} {text!r} could be month/day or day/month; set crm.file.date_format to "
            "mdy or dmy"
        )
    first, second = int(match["a"]), int(match["b"])
    month, day = (first, second) if order == "mdy" else (second, first)
    hour, minute, second_ = (
        int(match["hour"] or 0),
        int(match["minute"] or 0),
        int(match["second"] or 0),
    )
    if match["ampm"]:
        if not 1 <= hour <= 12:
            raise FieldError(f"{field} {text!r} is not a valid time")
        hour = hour % 12 + (12 if match["ampm"].lower() == "pm" else 0)
    try:
        return datetime(int(match["year"]), month, day, hour, minute, second_)
    except ValueError:
        raise FieldError(f"{field} {text!r} is not a valid date ({order})") from None


def parse_date(field: str, value: str | None, order: DateOrder | None = None) -> date | None:
    """ISO 8601 date (a datetime is cut to its date), or a numeric date written in ``order``;
    blank is None."""
    if blank(value):
        return None
    text = str(value).strip()
    numeric = _numeric(field, text, order)
    if numeric is not None:
        return _in_range(field, numeric.date())
    try:
        if len(text) == 10:
            parsed = date.fromisoformat(text)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        raise FieldError(f"{field} {text[:40]!r} is not a date in YYYY-MM-DD form") from None
    return _in_range(field, parsed)


def _in_range(field: str, value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise FieldError(
            f"{field} {value.isoformat()} is outside {EARLIEST_DATE.year}–{LATEST_DATE.year}"
        )
    return value


def parse_datetime(
    field: str, value: str | None, order: DateOrder | None = None
) -> datetime | None:
    """ISO 8601 date or datetime (or a numeric one written in ``order``) as an aware UTC
    datetime; a bare date is midnight UTC."""
    if blank(value):
        return None
    text = str(value).strip()
    numeric = _numeric(field, text, order)
    if numeric is not None:
        _in_range(field, numeric.date())
        return numeric.replace(tzinfo=UTC)
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError(
            f"{field} {text!r} is not an ISO 8601 date or date-time (e.g. 2026-11-30)"
        ) from None
    _in_range(field, parsed.date())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_CURRENCY_NOISE = re.compile(r"[\s\u00a0\u202f$€£¥₹₩₪₺₽₫₱]|R\$|zł|kr\.?|[A-Za-z]{3}")

# A currency symbol written in an amount, and the ISO code it stands for. "$" is any dollar:
# the file's currency when that is one, else USD. "kr" is any krona or krone: only the file's.
CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW", "₪": "ILS",
                    "₺": "TRY", "₽": "RUB", "₫": "VND", "₱": "PHP", "R$": "BRL", "zł": "PLN"}  # fmt: skip
DOLLARS = frozenset({"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "TWD"})
KRONER = frozenset({"SEK", "NOK", "DKK", "ISK"})
_SYMBOL = re.compile(r"R\$|zł|kr\b|[$€£¥₹₩₪₺₽₫₱]")
_CODE = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])")


def amount_currency(value: object, default: str | None) -> str | None:
    """The currency an amount is written in (``€12,500``, ``12.500,00 €``, ``USD 5,000``,
    ``¥5,000,000``), ``default`` (the file's) for a bare number, and None when it cannot be told
    (``kr`` with no krona as the file's currency, an unknown sign, or two currencies)."""
    if not isinstance(value, str):
        return default
    text = value.strip()
    codes = {m.group(1) for m in _CODE.finditer(text)}
    found = set(codes)
    for symbol in _SYMBOL.findall(text):
        if symbol == "$":  # "CAD $5" is Canadian: a code beside the sign says which dollar
            if not codes or not codes <= DOLLARS:
                found.add(default if default in DOLLARS else "USD")
        elif symbol == "kr":
            found.add(default if default in KRONER else "?")
        else:
            found.add(CURRENCY_SYMBOLS[symbol])
    rest = _CURRENCY_NOISE.sub("", text)
    if re.search(r"[^\d.,+\-()]", rest):
        return None  # a sign or word leadprep does not know
    if len(found) > 1 or "?" in found:
        return None
    return found.pop() if found else default


def _amount_text(value: str) -> str:
    return _CURRENCY_NOISE.sub("", value.strip())


def decimal_mark_of(value: object) -> str | None:
    """The decimal mark a written amount shows beyond doubt (``"."`` or ``","``), else None:
    ``48,000.50`` and ``1.234.567`` show ``.`` and ``,``; ``48,000`` or ``1.234`` show nothing."""
    if not isinstance(value, str):
        return None
    text = _amount_text(value)
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        return "." if text.rfind(".") > text.rfind(",") else ","
    for mark, other, count in ((".", ",", dots), (",", ".", commas)):
        if count > 1:
            return other  # repeated: it groups thousands, so the other one is the decimal mark
        if count == 1 and len(text) - text.index(mark) - 1 != 3:
            return mark  # 48.5 or 1234,50: a decimal mark
    return None


def parse_amount(
    field: str, value: str | float | int | None, decimal_mark: str = ".", confident: bool = True
) -> Decimal | None:
    """Money as Decimal, written with ``decimal_mark`` (``.`` or ``,``) and the other mark
    grouping thousands; currency symbols and codes are ignored.

    A value with one mark followed by exactly three digits reads two ways (``1.234``): it is
    taken as a decimal only when ``confident`` (the mark was configured, or the file's other
    amounts show it), else it is refused as ambiguous."""
    if blank(value):
        return None
    original = str(value).strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = repr(value)
    else:
        text = _amount_text(original)
        group = "," if decimal_mark == "." else "."
        integer, _, fraction = text.partition(decimal_mark)
        if decimal_mark in fraction or group in fraction:
            raise FieldError(f"{field} {original[:40]!r} is not a number")
        if group in integer and not re.fullmatch(rf"-?\d{{1,3}}(\{group}\d{{3}})+", integer):
            raise FieldError(
                f"{field} {original[:40]!r} is not a number written with {decimal_mark!r} as the "
                f"decimal mark (set crm.file.decimal_mark if the file uses {group!r})"
            )
        if (
            fraction
            and len(fraction) == 3
            and group not in integer
            and len(integer) <= 3
            and not confident
        ):
            raise FieldError(
                f"{field} {original[:40]!r} is ambiguous: {integer}{decimal_mark}{fraction} or "
                f"{integer}{fraction}? Set crm.file.decimal_mark to '.' or ',' to say which"
            )
        text = integer.replace(group, "") + ("." + fraction if fraction else "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise FieldError(f"{field} {original[:40]!r} is not a number") from None
    if not amount.is_finite():
        raise FieldError(f"{field} {original[:40]!r} is not a number")
    if amount < 0:
        raise FieldError(f"{field} {original[:40]!r} is negative")
    if amount >= MAX_AMOUNT:
        raise FieldError(f"{field} {original[:40]!r} is too large (the limit is 10^15)")
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


def parse_date_list(
    field: str, value: str | list | None, order: DateOrder | None = None
) -> list[date]:
    """``2026-10-31; 2026-11-30`` (or a JSON list) → dates, oldest first as given."""
    if blank(value):
        return []
    items = value if isinstance(value, list) else re.split(r"[;|]", str(value))
    out = []
    for item in items:
        parsed = parse_date(field, item, order)
        if parsed is not None:
            out.append(parsed)
    return out


# --- lenient readers (API values) ----------------------------------------------------------------


def read_timestamp(value: object) -> datetime | None:
    """ISO 8601 (``Z``, ``+00:00`` or ``+0000``), epoch milliseconds, or a bare date (midnight),
    as UTC; None when blank or unreadable."""
    if blank(value):
        return None
    text = str(value).strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def read_day(value: object, tz: tzinfo = UTC) -> date | None:
    """A calendar day: ``YYYY-MM-DD`` as written; a moment as its day in ``tz``."""
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    moment = read_timestamp(value)
    return moment.astimezone(tz).date() if moment else None


def read_amount(value: object) -> Decimal | None:
    """A plain number as money; None when blank, not a number, negative or absurdly large."""
    if blank(value) or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or not 0 <= amount < MAX_AMOUNT:
        return None
    return amount.quantize(Decimal("0.01"))


def read_float(value: object) -> float | None:
    """A number, or None when blank or not a number."""
    if blank(value) or isinstance(value, bool):
        return None
    try:
        return float(str(value))
    except ValueError:
        return None
