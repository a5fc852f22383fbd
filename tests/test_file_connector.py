import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from leadprep.connectors.file import FileConnector, FileSettings, StageSetting
from leadprep.errors import DataError
from leadprep.model import CLOSE_DATE
from tests.helpers import TODAY, csv_row, write_csv


def fetch(path: Path, **settings):
    return FileConnector(FileSettings(path=path, **settings)).fetch(None, TODAY)


def test_reads_every_documented_field(tmp_path):
    path = write_csv(
        tmp_path / "deals.csv",
        [
            csv_row(
                previous_close_dates="2026-10-31; 2026-11-30",
                probability="35",
                next_step_updated_at="2026-11-20",
            )
        ],
    )
    result = fetch(path)
    assert result.problems == []
    (deal,) = result.deals
    assert deal.id == "D-1"
    assert deal.owner.name == "Alex Morgan" and deal.owner.email == "alex@example.com"
    assert deal.amount == Decimal("50000.00") and deal.currency == "USD"
    assert deal.probability == pytest.approx(0.35)
    assert deal.manager_email == "dana@example.com"
    assert [c.name for c in deal.contacts] == ["Ana Ruiz", "Bo Chen", "Cy Diaz"]
    assert deal.contacts[1].role == "Economic Buyer"
    history = deal.history_of(CLOSE_DATE)
    assert [(c.old, c.new) for c in history] == [
        (date(2026, 10, 31), date(2026, 11, 30)),
        (date(2026, 11, 30), deal.close_date),
    ]
    assert deal.stage_order is not None  # "Proposal" is a known stage name


def test_bad_rows_are_reported_by_line_and_the_rest_imported(tmp_path):
    rows = [
        csv_row(deal_id="D-1"),
        csv_row(deal_id="D-2", amount="lots"),
        csv_row(deal_id="D-3", close_date="2026-12-32"),
        csv_row(deal_id="D-4"),
        csv_row(deal_id="D-1", deal_name="Duplicate"),
        csv_row(deal_id="D-5", owner_email="", owner_name=""),
        csv_row(deal_id="D-6", last_activity_at="yesterday"),
    ]
    result = fetch(write_csv(tmp_path / "deals.csv", rows))
    assert [d.id for d in result.deals] == ["D-1", "D-4"]
    problems = {p.where: str(p) for p in result.problems}
    assert "amount 'lots' is not a number" in problems["line 3"]
    assert "close_date '2026-12-32'" in problems["line 4"]
    assert "duplicate deal_id (first seen on line 2)" in problems["line 6"]
    assert "owner_email is empty" in problems["line 7"]
    assert "last_activity_at 'yesterday'" in problems["line 8"]


def test_line_numbers_count_multiline_values(tmp_path):
    path = tmp_path / "deals.csv"
    rows = [
        csv_row(deal_id="D-1", next_step="line one\nline two"),
        csv_row(deal_id="D-2", amount="x"),
    ]
    write_csv(path, rows)
    result = fetch(path)
    assert [p.where for p in result.problems] == ["line 4"]


def test_semicolon_csv_with_bom_and_messy_headers(tmp_path):
    path = tmp_path / "deals.csv"
    text = "\ufeffDeal ID;Deal Name;Owner Email;Stage;Amount\nD-9;Beta;SAM@example.com;Negotiation;12.500,00\n"
    path.write_text(text, encoding="utf-8")
    (deal,) = fetch(path).deals
    assert deal.owner.email == "sam@example.com"
    assert deal.amount == Decimal("12500.00")
    assert deal.close_date is None  # optional: flagged later, never a crash


def test_wrong_encoding_is_a_clear_error(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(
        "deal_id,deal_name,owner_email,stage\nD-1,Café,a@b.co,Proposal\n".encode("cp1252")
    )
    with pytest.raises(DataError, match=r"not UTF-8 text: byte 0xe9 on line 2") as info:
        fetch(path)
    assert "iconv" in str(info.value)


def test_missing_required_columns_are_named(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("id,name,stage\n1,a,b\n", encoding="utf-8")
    with pytest.raises(DataError, match="deal_id, deal_name, owner_email") as info:
        fetch(path)
    assert "Found: id, name, stage" in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ("deal_id,deal_name,owner_email,stage\n", "no deal rows"),
        ("[]", "holds no deals"),
        ("{not json", "not valid JSON"),
        ('{"x": 1}', "must hold a list of deals"),
    ],
)
def test_empty_and_malformed_files(tmp_path, content, message):
    path = tmp_path / (
        "deals.json" if content.lstrip()[:1] in "[{" and content.strip() else "deals.csv"
    )
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        fetch(path)


def test_all_rows_bad_is_an_error_listing_them(tmp_path):
    path = write_csv(
        tmp_path / "deals.csv", [csv_row(amount="x"), csv_row(deal_id="D-2", amount="y")]
    )
    with pytest.raises(DataError, match="no usable deal rows") as info:
        fetch(path)
    assert "line 2" in str(info.value) and "line 3" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        fetch(tmp_path / "nope.csv")


def test_json_with_nested_lists(tmp_path):
    path = tmp_path / "deals.json"
    path.write_text(
        json.dumps(
            {
                "deals": [
                    {
                        "deal_id": 7,
                        "deal_name": "Gamma",
                        "owner_email": "a@example.com",
                        "stage": "Discovery",
                        "amount": 1000,
                        "contacts": [{"name": "Ana", "title": "CFO"}, "Bo <bo@x.io> [Champion]"],
                        "previous_close_dates": ["2026-12-01"],
                        "close_date": "2026-12-20",
                    },
                    {
                        "deal_id": 8,
                        "deal_name": "Bad",
                        "owner_email": "a@example.com",
                        "stage": "X",
                        "amount": "?",
                    },
                    "not an object",
                ]
            }
        ),
        encoding="utf-8",
    )
    result = fetch(path)
    (deal,) = result.deals
    assert (
        deal.id == "7" and deal.contacts[0].title == "CFO" and deal.contacts[1].role == "Champion"
    )
    assert len(deal.history_of(CLOSE_DATE)) == 1
    assert [p.where for p in result.problems] == ["record 2", "record 3"]


def test_configured_stages_give_order_and_closed_state(tmp_path):
    path = write_csv(
        tmp_path / "deals.csv",
        [csv_row(stage="Verbal"), csv_row(deal_id="D-2", stage="Signed")],
    )
    stages = [
        StageSetting(name="Intro", probability=0.1),
        StageSetting(name="Verbal", probability=0.9),
        StageSetting(name="Signed", closed=True, won=True),
    ]
    deals = {d.id: d for d in fetch(path, stages=stages).deals}
    assert deals["D-1"].stage_order == 1 and deals["D-1"].probability == 0.9
    assert deals["D-2"].is_closed and deals["D-2"].is_won


def test_rep_filter(tmp_path):
    path = write_csv(
        tmp_path / "d.csv", [csv_row(), csv_row(deal_id="D-2", owner_email="sam@example.com")]
    )
    result = FileConnector(FileSettings(path=path)).fetch({"sam@example.com"}, TODAY)
    assert [d.id for d in result.deals] == ["D-2"]
