from datetime import timedelta
from decimal import Decimal

from leadprep.changes import departures, diff_deal
from leadprep.model import Contact, Rep
from tests.helpers import TODAY, make_deal


def fields(changes):
    return {c.field: c for c in changes}


def test_each_kind_of_change_is_described():
    before = make_deal(
        close_date=TODAY + timedelta(days=10),
        amount=Decimal(60000),
        stage="Negotiation",
        stage_order=6,
        forecast_category="Commit",
        next_step="Send MSA",
        contacts=(Contact("Ana Ruiz", role="Champion"), Contact("Old Contact")),
    )
    now = make_deal(
        close_date=TODAY + timedelta(days=27),
        amount=Decimal(45000),
        stage="Proposal",
        stage_order=5,
        forecast_category="Best Case",
        next_step="Redo pricing",
        contacts=(Contact("Ana Ruiz", role="Champion"), Contact("Bo Chen", role="CFO")),
    )
    changes = fields(diff_deal(before, now, TODAY))
    assert changes["close_date"].text == "close date pushed Dec 10 → Dec 27 (+17 days)"
    assert changes["amount"].text == "amount down: $60,000 → $45,000"
    assert changes["stage"].text == "stage moved back: Negotiation → Proposal"
    assert changes["forecast_category"].text == "forecast category Commit → Best Case"
    assert changes["next_step"].text == "next step changed to “Redo pricing”"
    assert changes["contacts_added"].new == ["Bo Chen (CFO)"]
    assert changes["contacts_removed"].old == ["Old Contact"]
    assert changes["close_date"].as_json() == {
        "field": "close_date",
        "old": "2026-12-10",
        "new": "2026-12-27",
        "text": changes["close_date"].text,
    }
    assert changes["amount"].as_json()["old"] == "60000"


def test_pull_in_and_forward_move():
    before = make_deal(close_date=TODAY + timedelta(days=30), stage="Proposal", stage_order=5)
    now = make_deal(close_date=TODAY + timedelta(days=20), stage="Negotiation", stage_order=6)
    changes = fields(diff_deal(before, now, TODAY))
    assert "pulled in" in changes["close_date"].text and "-10 days" in changes["close_date"].text
    assert changes["stage"].text.startswith("stage moved forward")


def test_unchanged_deal_has_no_changes():
    assert diff_deal(make_deal(), make_deal(), TODAY) == []


def test_departures_won_lost_gone_reassigned():
    sam = Rep("sam@example.com", "Sam Rivera", "sam@example.com")
    previous = {
        d.id: d
        for d in [
            make_deal(id="W"),
            make_deal(id="L"),
            make_deal(id="G"),
            make_deal(id="R"),
            make_deal(id="S"),
            make_deal(id="C", is_closed=True),
        ]
    }
    current = {
        "W": make_deal(id="W", is_closed=True, is_won=True, amount=Decimal(1000)),
        "L": make_deal(id="L", stage="Closed Lost", is_closed=True),
        "R": make_deal(id="R", owner=sam),
        "S": make_deal(id="S"),
    }
    result = {d.deal.id: d for d in departures(previous, current, "alex@example.com")}
    assert set(result) == {"W", "L", "G", "R"}
    assert result["W"].outcome == "won" and "$1,000" in result["W"].text
    assert result["L"].outcome == "lost"
    assert result["G"].outcome == "gone"
    assert result["R"].text == "reassigned to Sam Rivera"
