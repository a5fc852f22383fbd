"""Deals from a CSV or JSON export in the import format of the README ("Import format").

A record that cannot be used is reported with its line (CSV) or position (JSON) and the reason;
every other record is still imported.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from leadprep.config import FileSettings
from leadprep.connectors import Check, FetchResult, RowProblem
from leadprep.connectors.fields import (
    FieldError,
    blank,
    decimal_mark_of,
    parse_amount,
    parse_bool,
    parse_contacts,
    parse_date,
    parse_date_list,
    parse_datetime,
    parse_probability,
)
from leadprep.errors import DataError
from leadprep.model import CLOSE_DATE, Change, Contact, Deal, Rep, name_from_email
from leadprep.sanitize import UnsafeValue, currency_code, email_address
from leadprep.stages import StageCatalog
from leadprep.textfiles import decode_text, sniff_delimiter

REQUIRED_COLUMNS = ("deal_id", "deal_name", "owner_email", "stage")
OPTIONAL_COLUMNS = (
    "close_date",
    "account",
    "owner_name",
    "manager_email",
    "amount",
    "currency",
    "probability",
    "forecast_category",
    "created_at",
    "stage_entered_at",
    "last_activity_at",
    "next_activity_at",
    "next_step",
    "next_step_updated_at",
    "is_closed",
    "is_won",
    "url",
    "contacts",
    "previous_close_dates",
)

Record = tuple[str, dict[str, Any]]  # (where, fields)


def _normalise_header(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


MAX_FIELD_CHARS = 100_000  # per value; longer is a row problem (documented in the README)


def read_csv(path: Path, text: str) -> tuple[list[Record], str]:
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
    header = [_normalise_header(h) for h in next(csv.reader(lines[:1], delimiter=delimiter))]
    _check_columns(path, header)
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
    return records, delimiter


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


def read_json(path: Path, text: str) -> list[Record]:
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
        fields = {_normalise_header(str(k)): v for k, v in item.items()}
        problem = _json_value_problem(fields)
        records.append((f"record {index}", {"__error__": problem} if problem else fields))
    columns = set().union(*(r[1].keys() for r in records))
    _check_columns(path, [c for c in columns if c != "__error__"], any_record=True)
    return records


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


def _check_columns(path: Path, header: Iterable[str], *, any_record: bool = False) -> None:
    present = set(header)
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        what = "No record has" if any_record else "The header row lacks"
        raise DataError(
            f"{path}: {what} the required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}.",
            hint=f"Required: {', '.join(REQUIRED_COLUMNS)}. Found: {', '.join(sorted(present)) or 'none'}.",
        )


def read_records(path: Path) -> tuple[list[Record], str]:
    """The records of an import file, by its extension (or content) CSV or JSON, and the decimal
    mark its format suggests: ``,`` for a semicolon-separated CSV (what spreadsheets write where
    the comma is the decimal mark), else ``.``."""
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
        return read_json(path, text), "."
    records, delimiter = read_csv(path, text)
    return records, "," if delimiter == ";" else "."


def _contacts(value: Any) -> tuple[Contact, ...]:
    if isinstance(value, list):
        out: list[Contact] = []
        for item in value:
            if isinstance(item, str):
                out.extend(parse_contacts(item))
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
    return parse_contacts(value)


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


def parse_record(
    fields: dict[str, Any],
    catalog: StageCatalog,
    rep_names: dict[str, str],
    amounts: AmountReading = AmountReading(),
) -> Deal:
    """One import record as a Deal; raises FieldError naming the first bad field."""
    if "__error__" in fields:
        raise FieldError(fields["__error__"])
    for column in REQUIRED_COLUMNS:
        if blank(fields.get(column)):
            raise FieldError(f"{column} is empty")
    email = _address("owner_email", fields["owner_email"]) or ""
    manager_email = _address("manager_email", fields.get("manager_email"))
    stage = str(fields["stage"]).strip()
    info = catalog.get(stage)
    close_date = parse_date("close_date", fields.get("close_date"))
    previous = parse_date_list("previous_close_dates", fields.get("previous_close_dates"))
    probability = parse_probability("probability", fields.get("probability"))
    is_closed = parse_bool("is_closed", fields.get("is_closed"))
    is_won = parse_bool("is_won", fields.get("is_won"))
    if info is not None and info.closed and blank(fields.get("is_closed")):
        is_closed, is_won = True, info.won
    return Deal(
        id=str(fields["deal_id"]).strip(),
        name=str(fields["deal_name"]).strip(),
        owner=Rep(id=email, name=rep_names.get(email) or name_from_email(email), email=email),
        stage=stage,
        account=_text(fields.get("account")),
        amount=parse_amount(
            "amount", fields.get("amount"), amounts.decimal_mark, amounts.confident
        ),
        currency=_currency(fields.get("currency")),
        close_date=close_date,
        probability=probability
        if probability is not None
        else (info.probability if info else None),
        stage_order=info.order if info else None,
        forecast_category=_text(fields.get("forecast_category")),
        created_at=parse_datetime("created_at", fields.get("created_at")),
        stage_entered_at=parse_datetime("stage_entered_at", fields.get("stage_entered_at")),
        last_activity_at=parse_datetime("last_activity_at", fields.get("last_activity_at")),
        next_activity_at=parse_datetime("next_activity_at", fields.get("next_activity_at")),
        next_step=_text(fields.get("next_step")),
        next_step_updated_at=parse_datetime(
            "next_step_updated_at", fields.get("next_step_updated_at")
        ),
        is_closed=is_closed,
        is_won=is_won and is_closed,
        url=_text(fields.get("url")),
        manager_email=manager_email,
        contacts=_contacts(fields.get("contacts")),
        history=_close_date_history(previous, close_date),
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
    records: list[Record], catalog: StageCatalog, amounts: AmountReading = AmountReading()
) -> tuple[list[Deal], list[RowProblem]]:
    """Parse every record; bad ones and duplicate ids become problems, the rest deals."""
    rep_names: dict[str, str] = {}
    for _, fields in records:
        email, name = _text(fields.get("owner_email")), _text(fields.get("owner_name"))
        if email and name:
            rep_names.setdefault(email.lower(), name)
    deals: list[Deal] = []
    problems: list[RowProblem] = []
    first_seen: dict[str, str] = {}
    for where, fields in records:
        deal_id = _text(fields.get("deal_id"))
        try:
            deal = parse_record(fields, catalog, rep_names, amounts)
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


class FileConnector:
    """Reads deals from ``crm.file.path``."""

    source = "file"

    def __init__(self, settings: FileSettings, *, managers: set[str] | None = None) -> None:
        self.path = settings.path
        self.decimal_mark = settings.decimal_mark
        self.managers = (
            managers or set()
        )  # teams given as a manager only: rows with that manager_email
        self.catalog = (
            StageCatalog.from_list(
                (s.name, s.probability, s.closed, s.won) for s in settings.stages
            )
            if settings.stages
            else StageCatalog.default()
        )

    def fetch(
        self, reps: set[str] | None, as_of: date, known_ids: frozenset[str] = frozenset()
    ) -> FetchResult:
        records, convention = read_records(self.path)
        reading = amount_reading(records, self.decimal_mark, convention)
        deals, problems = records_to_deals(records, self.catalog, reading)
        if not deals:
            details = "\n".join(f"  - {p}" for p in problems[:10])
            raise DataError(f"{self.path}: no usable deal rows.\n{details}")
        if reps is not None or self.managers:
            deals = [
                d
                for d in deals
                if d.owner.email in (reps or ()) or d.manager_email in self.managers
            ]
        return FetchResult(source=self.source, deals=deals, problems=problems)

    def diagnose(self) -> Iterator[Check]:
        """The file can be read and how many of its records are usable."""
        result = self.fetch(None, date.today())
        detail = f"{self.path}: {len(result.deals)} deal(s)"
        if result.problems:
            detail += f", {len(result.problems)} record(s) unusable (first: {result.problems[0]})"
        yield Check("crm", not result.problems, detail)
