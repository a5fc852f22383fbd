"""Money movement since the last review: every figure equals the sum worked out by hand."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from leadprep.money import Movement, movement, quarter_name
from tests.helpers import TODAY, cli, csv_row, make_deal, write_config, write_csv

WEEK1 = date(2026, 11, 23)


def rows(week: int) -> list[dict]:
    two = week == 2

    def deal(deal_id, amount, close, **extra):
        return csv_row(
            deal_id=deal_id, deal_name=f"Deal {deal_id}", amount=amount, close_date=close, **extra
        )

    out = [
        deal(
            "A",
            "100000",
            "2026-12-15",
            forecast_category="Commit",
            **({"is_closed": "true", "is_won": "true"} if two else {}),
        ),  # won: 100,000
        deal("B", "50000", "2027-01-10" if two else "2026-12-20"),  # pushed out of Q4: 50,000
        deal("C", "40000", "2026-12-28" if two else "2027-01-15"),  # pulled into Q4: 40,000
        deal("D", "24000" if two else "30000", "2027-02-01"),  # cut: 6,000
        deal("E", "25000" if two else "20000", "2027-02-01"),  # raised: 5,000
        deal(
            "G", "15000", "2026-12-30", **({"is_closed": "true", "is_won": "false"} if two else {})
        ),
        # a Commit deal with one contact: a high flag on 70,000 of Commit
        deal(
            "H", "70000", "2026-12-18", forecast_category="Commit", contacts="Ana Ruiz [Champion]"
        ),
    ]
    if two:
        out.append(deal("F", "10000", "2027-03-01"))  # new: 10,000
    return out


def two_reviews(tmp_path, rows) -> tuple[dict, dict, Path]:
    """Prep the rows of week 1, then of week 2; the rep's packet of each, and the config."""
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: s.db}\n",
    )
    for week, day in ((1, WEEK1), (2, TODAY)):
        write_csv(tmp_path / "deals.csv", rows(week))
        result = cli(
            "prep", "-c", config, "-o", tmp_path / f"w{week}", "-f", "json,html", "--as-of", day
        )
        assert result.exit_code == 0, result.output
    first, second = (
        json.loads((tmp_path / f"w{week}" / "packets.json").read_text())["packets"][0]
        for week in (1, 2)
    )
    return first, second, config


def test_money_movement_matches_the_hand_sums(tmp_path):
    _, packet, config = two_reviews(tmp_path, rows)
    assert packet["money_since_last_review"] == {
        "USD": {
            "won": "100000.00",
            "lost": "15000.00",
            "pushed_out": "50000.00",
            "pulled_in": "40000.00",
            "cut": "6000.00",
            "raised": "5000.00",
            "new": "10000.00",
            "commit_at_risk": "70000.00",
            "best_case_at_risk": "0.00",
        }
    }
    index = (tmp_path / "w2" / "index.html").read_text()
    assert (
        "Since Nov 23: won $100,000; lost $15,000; pushed out of Q4 $50,000; pulled into Q4 "
        "$40,000; cut $6,000; raised $5,000; new $10,000; Commit carrying a high flag: $70,000"
    ) in index
    history = json.loads(
        cli("history", "-c", config, "--format", "json", "--as-of", TODAY.isoformat()).output
    )
    assert history[-1]["money"]["USD"]["won"] == "100000.00"  # stored with the rep's week


def test_currencies_are_never_added_together_and_a_first_review_moves_nothing():
    before = {"1": make_deal(id="1", amount=Decimal(100), currency="EUR")}
    now = [
        make_deal(id="1", amount=Decimal(80), currency="EUR"),
        make_deal(id="2", amount=Decimal(5)),
    ]
    moved = movement(before, now, TODAY)
    assert moved == {"EUR": Movement(cut=Decimal(20)), "USD": Movement(new=Decimal(5))}
    assert movement({}, now, TODAY) == {}  # no earlier review: nothing is "new"
    assert (
        quarter_name(date(2026, 11, 30), 1) == "Q4" and quarter_name(date(2026, 11, 30), 10) == "Q1"
    )


def test_what_became_of_last_weeks_focus_deals(tmp_path):
    def rows(week: int) -> list[dict]:
        two = week == 2
        one_contact = "Ana Ruiz [Champion]"  # single-threaded: a high flag, so in focus
        return [
            csv_row(deal_id="X", stage="Negotiation" if two else "Proposal", contacts=one_contact),
            csv_row(
                deal_id="Y",
                contacts=one_contact,
                **({"is_closed": "true", "is_won": "true"} if two else {}),
            ),
            csv_row(
                deal_id="Z",
                contacts=one_contact + ("; Bo Chen [CFO]" if two else ""),
                close_date="2027-03-01" if two else "2027-01-15",
            ),
        ]

    week1, packet, _ = two_reviews(tmp_path, rows)
    assert {d["id"] for d in week1["deals"] if d["focus"]} == {"X", "Y", "Z"}
    assert packet["last_focus_deals_now"] == {
        "moved_forward": 1,  # X: Proposal → Negotiation
        "gained_contact": 1,  # Z: a second contact…
        "won": 1,  # Y
        "lost": 0,
        "pushed": 1,  # …and its date pushed
        "still": 0,
    }
