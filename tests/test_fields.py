from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from leadprep.connectors.fields import (
    FieldError,
    decimal_mark_of,
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
    ("raw", "mark", "expected"),
    [
        ("48000", ".", Decimal("48000.00")),
        ("48,000", ".", Decimal("48000.00")),
        ("$48,000.50", ".", Decimal("48000.50")),
        ("48.000,50", ",", Decimal("48000.50")),
        ("1234,5", ",", Decimal("1234.50")),
        ("USD 12,000", ".", Decimal("12000.00")),
        ("12.000 EUR", ",", Decimal("12000.00")),
        ("1\u00a0234,50 €", ",", Decimal("1234.50")),
        ("0", ".", Decimal("0.00")),
        (48000, ",", Decimal("48000.00")),
        (48000.5, ",", Decimal("48000.50")),
        ("", ".", None),
        (None, ".", None),
    ],
)
def test_amounts(raw, mark, expected):
    assert parse_amount("amount", raw, mark) == expected


@pytest.mark.parametrize(
    ("raw", "mark", "confident", "expected"),
    [
        ("1.234", ".", True, Decimal("1.23")),  # the file said '.' is the decimal mark
        ("1.234", ",", True, Decimal("1234.00")),
        ("1,234", ".", True, Decimal("1234.00")),
        ("1.234", ",", False, Decimal("1234.00")),  # '.' can only group under ','
        ("48,000", ".", False, Decimal("48000.00")),
    ],
)
def test_how_one_separator_and_three_digits_read(raw, mark, confident, expected):
    assert parse_amount("amount", raw, mark, confident) == expected


@pytest.mark.parametrize(("raw", "mark"), [("1.234", "."), ("1,234", ","), ("999.500", ".")])
def test_an_amount_that_reads_two_ways_is_refused_unless_the_mark_is_known(raw, mark):
    with pytest.raises(FieldError, match=r"ambiguous.*crm\.file\.decimal_mark"):
        parse_amount("amount", raw, mark, confident=False)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        *[
            ("48,000.50", "."),
            ("1.234.567", ","),
            ("1,234,567", "."),
            ("48.5", "."),
            ("12,50", ","),
        ],
        *[("48,000", None), ("1.234", None), ("48000", None), (48000, None)],
    ],
)
def test_the_mark_a_value_shows(raw, shown):
    assert decimal_mark_of(raw) == shown


@pytest.mark.parametrize("raw", ["1e28", "1E400", "99999999999999999999", "1e15"])
def test_absurd_amounts_are_row_problems_not_crashes(raw):
    with pytest.raises(FieldError, match=r"too large|not a number"):
        parse_amount("amount", raw)


@pytest.mark.parametrize("raw", ["abc", "12k", "-500", "NaN", "1.2.3,4,5", "48.000,50", "4,80,000"])
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
