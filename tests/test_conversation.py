"""The conversation over three weekly reviews of an org the sheets were not shaped for
(bench/conversation.py): the framework's core questions on every sheet, no question twice, no
false fact, Agree on the front page, two pages, on letter and A4."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.conversation import WEEKS, measure, run_weeks
from tests.helpers import cli


def run(*args):
    result = cli(*map(str, args))
    assert result.exit_code == 0, (args[:2], result.output + result.stderr)
    return result


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_three_reviews_hold_every_rule_of_the_conversation(tmp_path: Path, paper: str):
    pytest.importorskip("weasyprint")
    run_weeks(tmp_path, run, paper=paper)
    counts = measure(tmp_path)
    assert counts.pop("sheets") == 12
    assert counts == dict.fromkeys(counts, 0), {k: v for k, v in counts.items() if v}


def test_deliver_says_when_and_what_the_crm_shows_since(tmp_path: Path):
    run_weeks(tmp_path, run, formats="json")
    last = json.loads((tmp_path / WEEKS[-1].isoformat() / "packets.json").read_text())
    lars = next(p for p in last["packets"] if p["rep"]["name"] == "Lars Berg")
    skipped, recent = sorted(lars["deliver"], key=lambda item: item["made_on"])
    assert skipped["opening"].startswith("On Nov 16 you committed to")
    assert "We skipped it last time." in skipped["opening"] and skipped["reviews_missed"] == 1
    assert recent["opening"].startswith("Last week you committed to")
    assert recent["since"] and "contact" in recent["since"]  # what the CRM shows, neutrally
    assert set(recent["prompts"]) == {"kept", "not_worked", "missed"}
    # a deal Deliver opens on is not talked through again in Explore
    committed = {item["deal_id"] for item in lars["deliver"]}
    assert not any(d["focus"] and d["id"] in committed for d in lars["deals"])


def test_four_open_commitments_still_leave_agree_on_the_front_page(tmp_path: Path):
    pytest.importorskip("weasyprint")
    from bench.conversation import WEEKS, _pdf_pages

    run_weeks(tmp_path, run, formats="json")
    config = tmp_path / "leadprep.yaml"
    for text, made in (
        ("Ask each buyer who else signs", WEEKS[0]),
        ("Write down the buyer's own words after every call this week", WEEKS[1]),
        ("Try to be better at follow-up", WEEKS[1]),
        ("Send Ada the pricing options by Wednesday", WEEKS[1]),
    ):
        run("commit", "-c", config, "--rep", "lars@example.com", text, "--as-of", made)
    run("prep", "-c", config, "-o", tmp_path / "again", "-f", "pdf,json", "--as-of", WEEKS[-1])
    packets = json.loads((tmp_path / "again" / "packets.json").read_text())["packets"]
    lars = next(p for p in packets if p["rep"]["name"] == "Lars Berg")
    assert len(lars["deliver"]) == 4
    pages = _pdf_pages(tmp_path / "again" / "lars-berg.pdf")
    assert len(pages) <= 2 and "How we'll know it worked" in pages[0]
