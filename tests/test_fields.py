from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from leadprep.connectors.fields import (
    FieldError,
    parse_amount,
    parse_bool,
    parse_contacts,
    parse_date,
    parse_date_list,
    parse_datetime,
    parse_probability,
)
from leadprep.model import Contact


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("48000", Decimal("48000.00")),
        ("48,000", Decimal("48000.00")),
        ("$48,000.50", Decimal("48000.50")),
        ("48.000,50", Decimal("48000.50")),
        ("1234,5", Decimal("1234.50")),
        ("USD 12,000", Decimal("12000.00")),
        ("0", Decimal("0.00")),
        (48000, Decimal("48000.00")),
        ("", None),
        (None, None),
    ],
)
def test_amounts(raw, expected):
    assert parse_amount("amount", raw) == expected


@pytest.mark.parametrize("raw", ["abc", "12k", "-500", "NaN", "1.2.3,4,5"])
def test_bad_amounts_name_the_value(raw):
    with pytest.raises(FieldError, match="amount"):
        parse_amount("amount", raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.4", 0.4), ("40", 0.4), ("40%", 0.4), ("1", 1.0), ("100", 1.0), ("", None)],
)
def test_probability_accepts_fraction_or_percent(raw, expected):
    result = parse_probability("probability", raw)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_probability_out_of_range():
    with pytest.raises(FieldError, match="between 0 and 1"):
        parse_probability("probability", "140")


def test_dates():
    assert parse_date("close_date", "2026-11-30") == date(2026, 11, 30)
    assert parse_date("close_date", "2026-11-30T18:00:00Z") == date(2026, 11, 30)
    assert parse_date("close_date", " ") is None
    with pytest.raises(FieldError, match="close_date '30/11/2026'"):
        parse_date("close_date", "30/11/2026")


def test_datetimes_are_utc_aware():
    assert parse_datetime("x", "2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_datetime("x", "2026-11-30T10:00:00+02:00") == datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert parse_datetime("x", "2026-11-30T10:00:00").tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "expected"), [("yes", True), ("TRUE", True), ("0", False), ("", False)]
)
def test_bools(raw, expected):
    assert parse_bool("is_closed", raw) is expected


def test_bad_bool():
    with pytest.raises(FieldError, match="is_closed 'maybe'"):
        parse_bool("is_closed", "maybe")


def test_contacts_format():
    assert parse_contacts("Ana Ruiz <ana@acme.com> [Economic Buyer]; Bo Chen") == (
        Contact("Ana Ruiz", "ana@acme.com", "Economic Buyer"),
        Contact("Bo Chen"),
    )
    assert parse_contacts("Cy [Champion]") == (Contact("Cy", role="Champion"),)
    assert parse_contacts("Di Ng <di@x.io> [Economic Buyer] (VP Finance); Ed (CTO)") == (
        Contact("Di Ng", "di@x.io", "Economic Buyer", "VP Finance"),
        Contact("Ed", title="CTO"),
    )
    assert parse_contacts("") == ()
    with pytest.raises(FieldError, match="not in the form"):
        parse_contacts("<ana@acme.com>")


def test_date_lists():
    assert parse_date_list("p", "2026-10-31; 2026-11-30") == [
        date(2026, 10, 31),
        date(2026, 11, 30),
    ]
    assert parse_date_list("p", ["2026-10-31"]) == [date(2026, 10, 31)]
