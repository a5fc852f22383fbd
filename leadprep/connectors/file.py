"""Deals from a CSV or JSON file: a CRM's own export (HubSpot, Salesforce, Pipedrive), any file
with ``crm.file.columns``, or the import format of the README ("Import format").

A record that cannot be used is reported with its line (CSV) or position (JSON) and every reason;
every other record is still imported. Nothing is dropped without a word: the columns no field
reads, the stages the catalogue does not know, and the checks the file
cannot support are all named in notes.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from leadprep.connectors import Check, FetchResult, RowProblem
from leadprep.connectors.fields import (
    FieldError,
    amount_currency,
    blank,
    decimal_mark_of,
    numeric_date_hint,
    parse_amount,
    parse_bool,
    parse_contacts,
    parse_date,
    parse_date_list,
    parse_datetime,
    parse_probability,
)
from leadprep.connectors.presets import (
    CONTACT_ROW_FIELDS,
    FIELDS,
    Mapping,
    Preset,
    map_columns,
    normalise_header,
)
from leadprep.errors import DataError
from leadprep.model import (
    CLOSE_DATE,
    NO_MAILBOX_DOMAIN,
    Change,
    Contact,
    Deal,
    Rep,
    name_from_email,
)
from leadprep.needs import Need
from leadprep.registry import connector
from leadprep.sanitize import UnsafeValue, currency_code, email_address
from leadprep.settings import Section
from leadprep.stages import StageCatalog
from leadprep.textfiles import decode_text, sniff_delimiter

if TYPE_CHECKING:
    from leadprep.config import Config


class StageSetting(Section):
    name: str
    probability: float | None = Field(default=None, ge=0, le=1)
    closed: bool = False
    won: bool = False


class FileSettings(Section):
    WHEN_MISSING: ClassVar[str] = "crm.kind is 'file' but there is no crm.file section with a path"

    path: Path
    decimal_mark: Literal["auto", ".", ","] = Field(
        "auto",
        description="How amounts write decimals: '.' (48,000.50), ',' (48.000,50), or auto: "
        "what the file's amounts show, else ',' for a semicolon CSV and '.' otherwise.",
    )
    stages: list[StageSetting] = Field(
        default_factory=list,
        description="Pipeline order of stage names, earliest first, with optional probabilities.",
    )
    preset: Literal["auto", "leadprep", "hubspot", "salesforce", "pipedrive"] = Field(
        "auto",
        description="Whose export the file is; auto: recognised from the header row.",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="leadprep field -> the file's column header, for any other export.",
    )
    date_format: Literal["auto", "mdy", "dmy"] = Field(
        "auto",
        description="How dates like 03/04/2026 are written: mdy (US), dmy; auto: the file's "
        "own values decide (a first number over 12 settles it).",
    )
    currency: str = Field(
        "USD",
        pattern=r"^[A-Za-z]{3}$",
        description="The ISO code of amounts written with no currency column, code or symbol "
        "(a bare 48000); also what '$' and 'kr' mean when it is a dollar or a krona.",
    )

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"unknown leadprep field(s) {', '.join(unknown)}; the fields are: "
                + ", ".join(FIELDS)
            )
        return value


log = logging.getLogger(__name__)

Record = tuple[str, dict[str, Any]]  # (where, fields)


MAX_FIELD_CHARS = 100_000  # per value; longer is a row problem (documented in the README)


@dataclass(frozen=True)
class Table:
    """A file's records (keys: normalised headers), its header row, and its delimiter."""

    records: list[Record]
    header: list[str]  # normalised
    original: list[str]  # as written
    delimiter: str = ","


def read_csv(path: Path, text: str) -> Table:
    """Rows of a CSV export as (\"line N\", {column: value}), and the delimiter it uses;
    file-level problems raise DataError.

    Every physical line is accounted for: a quote that opens on one line and is not closed
    before the next row starts would swallow the rows that follow; that row is reported with
    the line where the quote opened, and reading starts again on the line after it."""
    if not text.strip():
        raise DataError(f"{path} is empty.", hint="Export your open deals with a header row.")
    lines = io.StringIO(text, newline="").readlines()
    delimiter = sniff_delimiter(lines[0])
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    original = next(csv.reader(lines[:1], delimiter=delimiter))
    header = [normalise_header(h) for h in original]
    records: list[Record] = []
    position = 1  # index in ``lines`` where the next record starts
    while position < len(lines):
        reader = csv.reader(itertools.islice(lines, position, None), delimiter=delimiter)
        restart = None
        while True:
            start = position + reader.line_num + 1  # the record's first line, 1-based
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                records.append((f"line {start}", {"__error__": f"cannot be read as CSV ({exc})"}))
                restart = position + max(reader.line_num, start - position)
                break
            stop = position + reader.line_num  # its last line
            if stop > start and _swallows_rows(row, delimiter, len(header)):
                records.append((f"line {start}", {"__error__": _unclosed_quote(start, stop)}))
                restart = start  # the rows it swallowed are read again, one by one
                break
            if not any(cell.strip() for cell in row):
                continue
            records.append((f"line {start}", _row_fields(row, header)))
        if restart is None:
            break
        position = restart
    if not records:
        raise DataError(f"{path} has a header row but no deal rows.")
    return Table(records, header, original, delimiter)


def _swallows_rows(row: list[str], delimiter: str, columns: int) -> bool:
    """Whether a value spanning several lines holds what looks like whole rows of the file."""
    needed = max(3, columns - 1)
    return any(
        line.count(delimiter) >= needed
        for cell in row
        if "\n" in cell or "\r" in cell
        for line in cell.splitlines()[1:]
    )


def _unclosed_quote(start: int, stop: int) -> str:
    return (
        f"a quote opened on line {start} is not closed before line {stop}, so lines "
        f"{start}–{stop} read as one row; this row is skipped and lines {start + 1}–{stop} are "
        'read again as rows (fix the quote: a " inside a value is written "")'
    )


def _row_fields(row: list[str], header: list[str]) -> dict[str, Any]:
    if len(row) > len(header) and any(c.strip() for c in row[len(header) :]):
        return {"__error__": _too_many(row, header)}
    if len(row) < len(header):  # a file cut off mid-row, or a value with an unquoted line break
        # A problem unless it turns out to be a report's footer line (see mapped_records).
        return {
            "__short__": f"{len(row)} values for {len(header)} columns: the row ends early "
            "(the file cut off, or a line break inside an unquoted value?)",
            **dict(zip(header, row, strict=False)),
        }
    long = next(
        (name for name, cell in zip(header, row, strict=False) if len(cell) > MAX_FIELD_CHARS),
        None,
    )
    if long is not None:
        return {"__error__": f"{long} holds more than {MAX_FIELD_CHARS:,} characters"}
    return dict(zip(header, row, strict=False))


def _too_many(row: list[str], header: list[str]) -> str:
    return (
        f"{len(row)} values for {len(header)} columns "
        "(an unquoted comma or semicolon inside a value?)"
    )


def read_json(path: Path, text: str) -> Table:
    """Deals from a JSON list (or ``{"deals": [...]}``) as (\"record N\", fields)."""
    if not text.strip():
        raise DataError(f"{path} is empty.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}.") from None
    if isinstance(data, dict) and isinstance(data.get("deals"), list):
        data = data["deals"]
    if not isinstance(data, list):
        raise DataError(f"{path} must hold a list of deals, or an object with a 'deals' list.")
    if not data:
        raise DataError(f"{path} holds no deals.")
    records: list[Record] = []
    for index, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            records.append((f"record {index}", {"__error__": "is not an object"}))
            continue
        fields = {normalise_header(str(k)): v for k, v in item.items()}
        problem = _json_value_problem(fields)
        records.append((f"record {index}", {"__error__": problem} if problem else fields))
    originals: dict[str, str] = {}
    for item in data:
        if isinstance(item, dict):
            for key in item:
                originals.setdefault(normalise_header(str(key)), str(key))
    return Table(records, list(originals), list(originals.values()))


_LIST_COLUMNS = {"contacts", "previous_close_dates"}
_SCALAR = (str, int, float, bool, type(None))


def _json_value_problem(fields: dict[str, Any]) -> str | None:
    """What is wrong with a JSON record's value types, if anything: every field is text, a
    number, true/false or null, except the two list columns."""
    for name, value in fields.items():
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            return f"{name} holds more than {MAX_FIELD_CHARS:,} characters"
        if isinstance(value, float) and value != value:  # NaN
            return f"{name} is NaN"
        if name in _LIST_COLUMNS and isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and name == "contacts":
                    bad = [k for k, v in item.items() if not isinstance(v, str | type(None))]
                    if bad:
                        return f"contacts: {', '.join(map(str, bad))} must be text"
                elif not isinstance(item, str):
                    return f"{name} must be a list of text values"
            continue
        if not isinstance(value, _SCALAR):
            kind = "a list" if isinstance(value, list) else "an object"
            return f"{name} is {kind}; expected text, a number, true/false or null"
    return None


def read_records(path: Path) -> Table:
    """The records of an import file, by its extension (or content) CSV or JSON."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"Import file {path} does not exist.", hint="Check crm.file.path in your config."
        ) from None
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror}.") from None
    text = decode_text(path, data)
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        return read_json(path, text)
    return read_csv(path, text)


# --- from the file's columns to leadprep's fields -------------------------------------------------

_FOOTER = re.compile(
    r"^\s*(grand totals?\b|totals?\b|confidential information|copyright|generated by\b)", re.I
)
_NAME_EMAIL = re.compile(r"^(?P<name>.*?)\s*\((?P<email>[^()]*@[^()]*)\)\s*$")
_NAME_ADDRESS = re.compile(r"^(?P<name>[^<>]*?)\s*<(?P<email>[^<>]*@[^<>]*)>\s*$")


def mapped_records(table: Table, mapping: Mapping) -> tuple[list[Record], int]:
    """Each record with leadprep's field names; a report's footer lines left out (and counted);
    one-row-per-contact reports folded into one record per deal with a ``contacts`` list."""
    columns = mapping.columns
    out: list[Record] = []
    by_id: dict[str, dict[str, Any]] = {}
    footer = 0
    in_footer = False
    contact_rows = any(f in columns for f in CONTACT_ROW_FIELDS)
    id_header = columns.get("deal_id")
    # A report's footer comes after its last deal: a row without an id before that is a row
    # with a missing id (reported), whatever its first value says.
    last_with_id = max(
        (i for i, (_, raw) in enumerate(table.records) if not blank(raw.get(id_header or ""))),
        default=-1,
    )
    first_line: dict[str, str] = {}
    for index, (where, raw) in enumerate(table.records):
        if "__error__" in raw:
            out.append((where, {**raw, "deal_id": raw.get(id_header or "")}))
            continue
        fields = {name: raw.get(header) for name, header in columns.items()}
        values = [v for k, v in raw.items() if k != "__short__" and not blank(v)]
        if mapping.preset.footer and blank(fields.get("deal_id")) and index > last_with_id:
            first = next((str(v) for v in values), "")
            if in_footer or _FOOTER.match(first) or len(values) <= 1:
                in_footer = True
                footer += 1
                continue
        if "__short__" in raw:
            out.append((where, {"deal_id": fields.get("deal_id"), "__error__": raw["__short__"]}))
            continue
        if contact_rows:
            contact = _row_contact(fields)
            deal_id = _text(fields.get("deal_id"))
            if deal_id and deal_id in by_id:
                differ = _deal_fields_differ(by_id[deal_id], fields)
                if differ:
                    out.append((where, {"deal_id": deal_id, "__error__": (
                        f"repeats deal {deal_id} of {first_line[deal_id]} with another "
                        f"{', '.join(differ)}; the deal keeps {first_line[deal_id]}'s values "
                        "(is this a different deal with the same id?)"
                    )}))  # fmt: skip
                elif contact is not None:
                    by_id[deal_id]["contacts"].append(contact)
                continue
            fields["contacts"] = [contact] if contact is not None else []
            if deal_id:
                by_id[deal_id] = fields
                first_line[deal_id] = where
        out.append((where, fields))
    return out, footer


def _deal_fields_differ(first: dict[str, Any], again: dict[str, Any]) -> list[str]:
    """The deal's own fields (not its contact's) on which a repeated contact-role row differs."""
    return [
        name
        for name, value in again.items()
        if name not in CONTACT_ROW_FIELDS
        and name != "contacts"
        and _text(value) != _text(first.get(name))
    ]


def _row_contact(fields: dict[str, Any]) -> dict[str, Any] | None:
    name = _text(fields.get("contact_name")) or " ".join(
        p
        for p in (_text(fields.get("contact_first_name")), _text(fields.get("contact_last_name")))
        if p
    )
    if not name:
        return None
    return {
        "name": name,
        "email": _text(fields.get("contact_email")),
        "role": _text(fields.get("contact_role")),
        "title": _text(fields.get("contact_title")),
    }


_DATE_FIELDS = (
    "close_date",
    "created_at",
    "stage_entered_at",
    "last_activity_at",
    "next_activity_at",
    "next_step_updated_at",
    "previous_close_dates",
)


def date_order(path: Path, records: list[Record], setting: str) -> str | None:
    """How this file writes numeric dates: ``crm.file.date_format`` when set, else what its own
    values settle (a number over 12 in first or second place); a file whose numeric dates
    never settle it, or settle it both ways, is an error naming the column and the setting."""
    if setting in ("mdy", "dmy"):
        return setting
    seen: dict[str, tuple[str, str, str]] = {}  # hint -> (where, column, value)
    for where, fields in records:
        for column in _DATE_FIELDS:
            value = fields.get(column)
            values = (
                re.split(r"[;|]", value)
                if isinstance(value, str) and column == "previous_close_dates"
                else [value]
            )
            for item in values:
                hint = numeric_date_hint(item.strip() if isinstance(item, str) else item)
                if hint is not None:
                    seen.setdefault(hint, (where, column, str(item).strip()))
    if "mdy" in seen and "dmy" in seen:
        (w1, c1, v1), (w2, c2, v2) = seen["mdy"], seen["dmy"]
        raise DataError(
            f"{path} writes dates both month-first ({c1} {v1!r}, {w1}) and day-first "
            f"({c2} {v2!r}, {w2}).",
            hint="Export the file again with one date format, or set crm.file.date_format.",
        )
    for order in ("mdy", "dmy"):
        if order in seen:
            return order
    if "?" in seen:
        where, column, value = seen["?"]
        raise DataError(
            f"{path}: no date in the file tells whether {column} {value!r} ({where}) is "
            "month/day or day/month.",
            hint="Set crm.file.date_format: mdy (12/15/2026, US) or dmy (15/12/2026).",
        )
    return None


def _contacts(value: Any, style: str) -> tuple[Contact, ...]:
    if isinstance(value, list):
        out: list[Contact] = []
        for item in value:
            if isinstance(item, str):
                out.extend(_contacts(item, style))
            elif isinstance(item, dict) and not blank(item.get("name")):
                out.append(
                    Contact(
                        name=str(item["name"]).strip(),
                        email=(item.get("email") or None),
                        role=(item.get("role") or None),
                        title=(item.get("title") or None),
                    )
                )
            else:
                raise FieldError(f"contact {item!r} has no name")
        return tuple(out)
    if style == "leadprep" or blank(value):
        return parse_contacts(value)
    contacts = []
    for part in re.split(r"[;\n]", str(value)):
        part = part.strip()
        if not part:
            continue
        match = _NAME_EMAIL.match(part) if style == "name_email" else None
        if match and match["name"].strip():
            contacts.append(Contact(match["name"].strip(), email=match["email"].strip().lower()))
        elif "@" in part and " " not in part:
            contacts.append(Contact(part, email=part.lower()))
        else:
            contacts.append(Contact(part))
    return tuple(contacts)


def _text(value: Any) -> str | None:
    return None if blank(value) else str(value).strip()


def _currency(value: Any) -> str:
    try:
        return currency_code(_text(value))
    except UnsafeValue as exc:
        raise FieldError(str(exc)) from None


def _address(column: str, value: Any) -> str | None:
    try:
        return email_address(_text(value))
    except UnsafeValue as exc:
        raise FieldError(f"{column} {exc}") from None


@dataclass(frozen=True)
class AmountReading:
    """How this file writes amounts: its decimal mark, and whether that is known (configured, or
    shown by the file's own values) rather than assumed from the delimiter."""

    decimal_mark: str = "."
    confident: bool = True


def amount_reading(records: list[Record], setting: str, convention: str) -> AmountReading:
    """``crm.file.decimal_mark`` when set; else the mark the file's amounts show beyond doubt;
    else the delimiter's convention, with ambiguous values (``1.234``) refused."""
    if setting in (".", ","):
        return AmountReading(setting, True)
    shown = {decimal_mark_of(fields.get("amount")) for _, fields in records}
    marks = {mark for mark in shown if mark is not None}
    if len(marks) == 1:
        return AmountReading(marks.pop(), True)
    return AmountReading(convention, False)


def owner_key(name: str) -> str:
    """A person's name compared ignoring case, accents and spacing."""
    plain = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())


def owner_index(names: dict[str, str]) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """From email -> name: owner_key(name) -> email for the names that belong to one person,
    and the names (keys) that several people share, with their emails. A shared name is never
    resolved by picking one: a row naming only that owner cannot be routed."""
    seen: dict[str, set[str]] = {}
    for email, name in names.items():
        seen.setdefault(owner_key(name), set()).add(email)
    unique = {key: next(iter(emails)) for key, emails in seen.items() if len(emails) == 1}
    shared = {key: tuple(sorted(emails)) for key, emails in seen.items() if len(emails) > 1}
    return unique, shared


@dataclass(frozen=True)
class Reading:
    """Everything that decides how one file's values read."""

    catalog: StageCatalog
    preset: Preset
    amounts: AmountReading = AmountReading()
    dates: str | None = None  # mdy | dmy | None (ISO only)
    owners: dict[str, str] = field(default_factory=dict)  # owner_key(name) -> email
    rep_names: dict[str, str] = field(default_factory=dict)  # email -> name in the file
    shared_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> emails
    currency: str = "USD"  # crm.file.currency: what a bare amount is in


class _Errors:
    """Collects every bad field of a record, so a row is reported once with all its problems."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except FieldError as exc:
            self.messages.append(str(exc))
            return None


def _owner(fields: dict[str, Any], reading: Reading, errors: _Errors) -> Rep | None:
    email = errors(_address, "owner_email", fields.get("owner_email"))
    name = _text(fields.get("owner_name"))
    written = _NAME_EMAIL.match(name or "") or _NAME_ADDRESS.match(name or "")
    if written and written["name"].strip():  # "Alex Morgan (alex@x.com)" or "… <alex@x.com>"
        name = written["name"].strip()
        email = email or errors(_address, "owner_name", written["email"])
    if not email and name and owner_key(name) in reading.shared_names:
        emails = reading.shared_names[owner_key(name)]
        errors.messages.append(
            f"owner {name!r} is the name of {len(emails)} reps ({', '.join(emails)}), so whose "
            "deal this is cannot be told: export the owner's email too, or tell the reps apart "
            "by name in teams"
        )
        return None
    if not email and name:
        email = reading.owners.get(owner_key(name))
        if email is None:
            slug = "-".join(re.findall(r"[a-z0-9]+", owner_key(name))) or "owner"
            email = f"{slug[:60]}@{NO_MAILBOX_DOMAIN}"
    if not email:
        if not errors.messages:
            errors.messages.append("owner_email is empty" if not name else "owner is unknown")
        return None
    shown = name or reading.rep_names.get(email) or name_from_email(email)
    return Rep(id=email, name=shown, email=email)


def _amount_currency(
    amount_text: Any, currency: str | None, reading: Reading, errors: _Errors
) -> str | None:
    """The currency an amount is in: the one its text writes (``€48.000``), which must agree
    with the currency column; else the column's. A disagreement is a field error."""
    if blank(amount_text):
        return currency
    written = amount_currency(amount_text, (currency or reading.currency).upper())
    if written is None:
        errors.messages.append(
            f"amount {str(amount_text)[:40]!r}: its currency cannot be told; add a currency "
            "column, or set crm.file.currency to the code the file's amounts are in"
        )
        return currency
    if currency and written != currency.upper():
        errors.messages.append(
            f"amount {str(amount_text)[:40]!r} is in {written} but currency says {currency}"
        )
        return currency
    return written


def parse_record(fields: dict[str, Any], reading: Reading) -> Deal:
    """One record as a Deal; raises FieldError naming every bad field."""
    if "__error__" in fields:
        raise FieldError(fields["__error__"])
    errors = _Errors()
    for column in ("deal_id", "deal_name", "stage"):
        if blank(fields.get(column)):
            errors.messages.append(f"{column} is empty")
    owner = _owner(fields, reading, errors)
    manager_email = errors(_address, "manager_email", fields.get("manager_email"))
    stage = str(fields.get("stage") or "").strip()
    info = reading.catalog.get(stage)
    order = reading.dates
    close_date = errors(parse_date, "close_date", fields.get("close_date"), order)
    previous = errors(
        parse_date_list, "previous_close_dates", fields.get("previous_close_dates"), order
    )
    probability = errors(parse_probability, "probability", fields.get("probability"))
    is_closed = errors(parse_bool, "is_closed", fields.get("is_closed")) or False
    is_won = errors(parse_bool, "is_won", fields.get("is_won")) or False
    status = (_text(fields.get("status")) or "").lower()
    if status:
        is_closed, is_won = status != "open", status == "won"
    elif info is not None and info.closed and blank(fields.get("is_closed")):
        is_closed, is_won = True, info.won
    amount_text = fields.get("amount")
    currency = _amount_currency(amount_text, _text(fields.get("currency")), reading, errors)
    amount = errors(
        parse_amount, "amount", amount_text, reading.amounts.decimal_mark, reading.amounts.confident
    )
    dates = {
        name: errors(parse_datetime, name, fields.get(name), order)
        for name in (
            "created_at",
            "stage_entered_at",
            "last_activity_at",
            "next_activity_at",
            "next_step_updated_at",
        )
    }
    contacts = errors(_contacts, fields.get("contacts"), reading.preset.contacts)
    currency_code_ = errors(_currency, currency or reading.currency)
    if errors.messages or owner is None:
        raise FieldError("; ".join(errors.messages))
    return Deal(
        id=str(fields["deal_id"]).strip(),
        name=str(fields["deal_name"]).strip(),
        owner=owner,
        stage=stage,
        account=_text(fields.get("account")),
        amount=amount,
        currency=currency_code_,
        close_date=close_date,
        probability=probability
        if probability is not None
        else (info.probability if info else None),
        stage_order=info.order if info else None,
        forecast_category=_text(fields.get("forecast_category")),
        created_at=dates["created_at"],
        stage_entered_at=dates["stage_entered_at"],
        last_activity_at=dates["last_activity_at"],
        next_activity_at=dates["next_activity_at"],
        next_step=_text(fields.get("next_step")),
        next_step_updated_at=dates["next_step_updated_at"],
        is_closed=is_closed,
        is_won=is_won and is_closed,
        url=_text(fields.get("url")),
        manager_email=manager_email,
        contacts=contacts or (),
        history=_close_date_history(previous or [], close_date),
    )


def _close_date_history(previous: list[date], current: date | None) -> tuple[Change, ...]:
    """Undated close-date changes from the ``previous_close_dates`` column."""
    values = [*previous, current] if current is not None else previous
    return tuple(
        Change(field=CLOSE_DATE, old=old, new=new, at=None)
        for old, new in itertools.pairwise(values)
        if old != new
    )


def records_to_deals(
    records: list[Record], reading: Reading
) -> tuple[list[Deal], list[RowProblem]]:
    """Parse every record; bad ones and duplicate ids become problems, the rest deals."""
    names: dict[str, str] = {}
    for _, fields in records:
        email, name = _text(fields.get("owner_email")), _text(fields.get("owner_name"))
        if email and name:
            names.setdefault(email.lower(), name)
    # A row naming its owner without an email is matched on the teams' names, then on the
    # names the file itself pairs with emails on other rows.
    by_name, shared_in_file = owner_index(names)
    shared = {
        key: emails for key, emails in shared_in_file.items() if key not in reading.owners
    } | reading.shared_names  # the teams' own names settle what the file leaves open
    reading = replace(
        reading,
        rep_names={**names, **reading.rep_names},
        owners={k: e for k, e in {**by_name, **reading.owners}.items() if k not in shared},
        shared_names=shared,
    )
    deals: list[Deal] = []
    problems: list[RowProblem] = []
    first_seen: dict[str, str] = {}
    for where, fields in records:
        deal_id = _text(fields.get("deal_id"))
        try:
            deal = parse_record(fields, reading)
        except FieldError as exc:
            problems.append(RowProblem(where, str(exc), deal_id))
            continue
        if deal.id in first_seen:
            problems.append(
                RowProblem(
                    where, f"duplicate deal_id (first seen on {first_seen[deal.id]})", deal.id
                )
            )
            continue
        first_seen[deal.id] = where
        deals.append(deal)
    return deals, problems


# --- what the file can support ---------------------------------------------------------------------


def unsupported(mapping: Mapping, deals: list[Deal]) -> dict[Need, str]:
    """The inputs this file does not carry at all, with why, keyed as signals name their needs
    (``leadprep.signals``). A blank in a column that exists still counts: only a column that is
    absent, or empty on every open deal, switches a check off."""
    open_deals = [d for d in deals if d.is_open] or deals
    has = mapping.has
    missing: dict[Need, str] = {}
    if not (has("contacts") or any(f in mapping.columns for f in CONTACT_ROW_FIELDS)):
        missing[Need.CONTACTS] = "this export has no contacts column"
    elif mapping.preset.one_contact:
        missing[Need.CONTACTS] = "this export names one contact person per deal, not all of them"
    if not any(c.role or c.title for d in deals for c in d.contacts):
        missing[Need.CONTACT_ROLES] = "this export has no contact roles or job titles"
    checks = {
        Need.CLOSE_DATE: (lambda d: d.close_date, "close dates"),
        Need.LAST_ACTIVITY: (lambda d: d.last_activity_at, "activity dates"),
        Need.STAGE_ENTERED: (lambda d: d.stage_entered_at, "stage entry dates"),
        Need.FORECAST: (lambda d: d.forecast_category, "forecast categories"),
        Need.AMOUNT: (lambda d: d.amount, "amounts"),
        Need.NEXT_STEP: (
            lambda d: d.next_step or d.next_activity_at,
            "next steps or next activities",
        ),
    }
    for need, (value, what) in checks.items():
        if not any(value(d) is not None for d in open_deals):
            missing[need] = f"no open deal in this export has {what}"
    return missing


@dataclass
class Imported:
    """One reading of the file: how its columns map, every owner's deals, the records that
    could not be used, notes for the user, and the inputs it does not carry."""

    mapping: Mapping
    deals: list[Deal]
    problems: list[RowProblem]
    notes: list[str]
    unsupported: dict[Need, str]


@connector("file", settings=FileSettings)
class FileConnector:
    """Reads deals from ``crm.file.path``."""

    source = "file"

    @classmethod
    def from_config(cls, settings: FileSettings, config: Config) -> FileConnector:
        return cls(settings, managers=config.whole_teams(), owners=config.rep_names())

    def __init__(
        self,
        settings: FileSettings,
        *,
        managers: set[str] | None = None,
        owners: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.path = settings.path
        self.managers = (
            managers or set()
        )  # teams given as a manager only: rows with that manager_email
        # email -> name from teams; an export that names owners is matched on those names
        self.rep_names = dict(owners or {})
        self.catalog = (
            StageCatalog.from_list(
                (s.name, s.probability, s.closed, s.won) for s in settings.stages
            )
            if settings.stages
            else StageCatalog.default()
        )

    def read(self) -> Imported:
        """The whole file, every owner's deals."""
        table = read_records(self.path)
        mapping = map_columns(
            self.path, table.header, table.original, self.settings.preset, self.settings.columns
        )
        if not mapping.has("deal_id"):
            raise DataError(
                f"{self.path}: no column gives each deal's id, so a deal cannot be followed from "
                "one week to the next.",
                hint=f"{mapping.preset.label}: {mapping.preset.id_hint}; or map a column with "
                'crm.file.columns: {deal_id: "…"}.',
            )
        lacking = [f for f in ("deal_name", "stage") if not mapping.has(f)]
        if not (mapping.has("owner_email") or mapping.has("owner_name")):
            lacking.insert(1, "owner_email (or owner_name)")
        if lacking:
            raise DataError(
                f"{self.path}: the header row lacks the required column"
                f"{'s' if len(lacking) > 1 else ''} {', '.join(lacking)} "
                "(leadprep's format needs deal_id, deal_name, owner_email, stage).",
                hint=f"Found: {', '.join(table.original)}. Map other headers with crm.file.columns.",
            )
        twice = sorted(
            {
                o
                for h, o in zip(table.header, table.original, strict=True)
                if table.header.count(h) > 1
            }
        )
        used_twice = [o for o in twice if normalise_header(o) in mapping.columns.values()]
        if used_twice:
            raise DataError(
                f"{self.path}: the header row names {', '.join(repr(o) for o in used_twice)} more "
                "than once, so which column holds the value cannot be told.",
                hint="Remove or rename the extra column in the export, or map the one to read "
                "with crm.file.columns (after renaming the other).",
            )
        records, footer = mapped_records(table, mapping)
        convention = "," if table.delimiter == ";" else "."
        owners, shared = owner_index(self.rep_names)
        reading = Reading(
            catalog=self.catalog,
            preset=mapping.preset,
            amounts=amount_reading(records, self.settings.decimal_mark, convention),
            dates=date_order(self.path, records, self.settings.date_format),
            owners=owners,
            rep_names=self.rep_names,
            shared_names=shared,
            currency=self.settings.currency,
        )
        deals, problems = records_to_deals(records, reading)
        if not deals:
            details = "\n".join(f"  - {p}" for p in problems[:10])
            raise DataError(f"{self.path}: no usable deal rows.\n{details}")
        notes = []
        if mapping.unused:
            notes.append(f"columns not used: {', '.join(mapping.unused)}")
        unknown: dict[str, int] = {}
        for deal in deals:
            if deal.is_open and self.catalog.get(deal.stage) is None:
                unknown[deal.stage] = unknown.get(deal.stage, 0) + 1
        if unknown:
            listed = ", ".join(f"{stage} ({n})" for stage, n in sorted(unknown.items()))
            notes.append(
                f"stages leadprep does not know: {listed}; list your pipeline's stages in "
                "crm.file.stages so their order and win probability count"
            )
        if footer:
            log.debug("%s: %d footer line(s) of the report ignored", self.path, footer)
        return Imported(mapping, deals, problems, notes, unsupported(mapping, deals))

    def fetch(
        self, reps: set[str] | None, as_of: date, known_ids: frozenset[str] = frozenset()
    ) -> FetchResult:
        found = self.read()
        deals, notes = found.deals, found.notes
        unassigned: dict[str, int] = {}
        if reps is not None or self.managers:
            ours = [
                d
                for d in deals
                if d.owner.email in (reps or ()) or d.manager_email in self.managers
            ]
            kept = {d.id for d in ours}
            for deal in deals:
                if deal.is_open and deal.id not in kept:
                    unassigned[deal.owner.name] = unassigned.get(deal.owner.name, 0) + 1
            deals = ours
        return FetchResult(
            source=self.source,
            deals=deals,
            problems=found.problems,
            notes=notes,
            unsupported=found.unsupported,
            unassigned=unassigned,
        )

    def diagnose(self) -> Iterator[Check]:
        """The file can be read; which export it is; what it does not carry or use."""
        found = self.read()
        detail = f"{self.path}: {found.mapping.preset.label}, {len(found.deals)} deal(s)"
        if found.problems:
            detail += f", {len(found.problems)} record(s) unusable (first: {found.problems[0]})"
        yield Check("crm", not found.problems, detail)
        for note in found.notes:
            yield Check("crm data", True, note)
        if found.unsupported:
            reasons = sorted(set(found.unsupported.values()))
            yield Check("crm data", True, "checks off: " + "; ".join(reasons))
