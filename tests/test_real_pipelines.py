"""Signals on pipelines shaped like real ones: thousands of won and lost deals, open deals with no
amounts and no close dates, product names as deal names, one stage for most deals, 245 deals for
one rep (bench/public_style.py), set up through ``crm.file.columns`` only; and a two-week run in
which a close date is set, a deal is reassigned and a Commit deal's amount is cut."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from bench import public_style
from leadprep.signals import FLAG_TITLES
from tests.helpers import TODAY, cli, csv_row, write_config, write_csv

AS_OF = public_style.AS_OF.isoformat()


@pytest.fixture(scope="module")
def public(tmp_path_factory) -> tuple[Path, dict, str]:
    """The public-style file prepared once: (folder, packets by rep email, what prep printed)."""
    folder = tmp_path_factory.mktemp("public")
    config = public_style.write(folder)
    result = cli("prep", "-c", config, "-o", folder / "out", "-f", "json,html,md", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads((folder / "out" / "packets.json").read_text())
    return folder, {p["rep"]["email"]: p for p in data["packets"]}, result.output + result.stderr


def biggest(packets: dict, n: int = 2) -> list[dict]:
    return sorted(packets.values(), key=lambda p: -len(p["deals"]))[:n]


def test_stuck_limits_are_learned_from_the_won_deals_and_cited(public):
    folder, packets, _ = public
    assert len(packets) == 35
    stuck = [f for p in packets.values() for d in p["deals"] for f in d["flags"]]
    stuck = [f for f in stuck if f["code"] == "stuck_in_stage"]
    assert stuck and all(
        re.search(
            r"9 in 10 of your [\d,]+ won deals closed within \d+ days of being created",
            f["evidence"],
        )
        for f in stuck
    )
    index = (folder / "out" / "index.html").read_text()
    assert "Stuck-in-stage limits in use: Engaging: 9 in 10 of your" in index
    # prospecting deals have no engage date: no stage entry, so never "stuck"
    prospecting = [d for p in packets.values() for d in p["deals"] if d["stage"] == "Prospecting"]
    assert prospecting and not any(
        f["code"] == "stuck_in_stage" for d in prospecting for f in d["flags"]
    )


def test_four_dated_deals_do_not_flag_the_others_no_close_date(public):
    _, packets, _ = public
    every = [d for p in packets.values() for d in p["deals"]]
    assert len(every) == 2089 and sum(1 for d in every if d["close_date"]) == 4
    assert not any(f["code"] == "no_close_date" for d in every for f in d["flags"])
    assert all(
        any("only 4 of 2,089 open deals have a close date" in line for line in p["checks_off"])
        for p in packets.values()
    )


def test_a_gap_most_deals_share_is_one_line_and_stays_in_packets_json(public):
    folder, packets, _ = public
    for packet in biggest(packets, 5):
        (line,) = [h for h in packet["hygiene"] if h["code"] == "stuck_in_stage"]
        stuck = [
            d for d in packet["deals"] if any(f["code"] == "stuck_in_stage" for f in d["flags"])
        ]
        assert line["deals"] == len(stuck) and line["of"] == len(packet["deals"])
        assert line["text"].startswith(
            f"Stuck in stage on {len(stuck):,} of {len(packet['deals']):,}"
        )
        shown = {f["shown"] for d in stuck for f in d["flags"] if f["code"] == "stuck_in_stage"}
        assert shown == {"hygiene"}  # every flag kept, marked as shown in the line
        markdown = (folder / "out" / f"{slug(packet)}.md").read_text()
        titles = Counter(
            t for t in FLAG_TITLES.values() for _ in re.finditer(re.escape(t), markdown)
        )
        assert max(titles.values()) <= 5, titles  # not once per deal


def slug(packet: dict) -> str:
    return packet["rep"]["name"].lower().replace(" ", "-")


def test_focus_deals_are_told_apart_and_findable(public):
    folder, packets, _ = public
    for packet in packets.values():
        focus = [d for d in packet["deals"] if d["focus"]]
        assert len(focus) == 3
        evidence = [" / ".join(f["evidence"] for f in d["flags"]) for d in focus]
        names = [d["name"] for d in focus]
        assert len(set(evidence)) == 3, (packet["rep"]["name"], evidence)
        html = (folder / "out" / f"{slug(packet)}.html").read_text()
        for deal in focus:
            assert f"#{deal['id']}" in html  # the product name alone does not find it
        if len(set(names)) < 3:  # same product twice: the id (or account) tells them apart
            assert len({d["id"] for d in focus}) == 3


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_the_biggest_reps_print_on_two_pages(public, tmp_path, paper):
    pytest.importorskip("weasyprint")
    from tests.test_pdf import pages_text

    folder, packets, _ = public
    config = folder / "leadprep.yaml"
    papered = write_config(
        tmp_path / "c.yaml",
        config.read_text()
        .replace("path: opportunities.csv", f"path: {folder / 'opportunities.csv'}")
        .replace("path: state.db", f"path: {tmp_path / 's.db'}")
        + f"output: {{paper: {paper}}}\n",
    )
    big = biggest(packets)
    args = [a for p in big for a in ("--rep", p["rep"]["email"])]
    result = cli("prep", "-c", papered, "-o", tmp_path / "o", "-f", "pdf", "--as-of", AS_OF, *args)
    assert result.exit_code == 0, result.output + result.stderr
    for packet in big:
        pages = pages_text(tmp_path / "o" / f"{slug(packet)}.pdf")
        assert len(pages) <= 2, (packet["rep"]["name"], len(packet["deals"]), len(pages))
        text = " ".join(pages)
        left = re.search(r"And (\d+) more open deals", text)
        printed = sum(1 for d in packet["deals"] if f"#{d['id']}" in text)
        assert left and printed + int(left.group(1)) == len(packet["deals"])


def test_the_example_teams_left_in_place_is_loud(tmp_path):
    config = public_style.write(tmp_path, teams=False)
    example = (
        "teams:\n  - manager: {name: Dana Kim, email: dana@example.com}\n"
        '    reps: ["Alex Morgan <alex@example.com>", sam@example.com]\n'
    )
    config.write_text(config.read_text() + example)
    result = cli("prep", "-c", config, "-o", tmp_path / "o", "-f", "html", "--as-of", AS_OF)
    assert result.exit_code == 1, result.output  # "partial": nearly nothing went to a sheet
    assert "2,089 of 2,089 open deals went to no sheet" in result.stderr
    assert "Rosa Tanaka (" in result.stderr
    index = (tmp_path / "o" / "index.html").read_text()
    assert "2089 open deals went to no sheet" in index or "2,089 open deals" in index
    doctor = cli("doctor", "-c", config, "--as-of", AS_OF)
    assert doctor.exit_code == 0, doctor.output
    assert re.search(r"WARN teams: 2,089 of 2,089 open deals go to no sheet", doctor.output)
    assert (
        "WARN teams: no open deals in the data for: Alex Morgan, sam@example.com" in doctor.output
    )


def test_doctor_warns_where_the_setup_is_likely_not_what_was_meant(tmp_path):
    config = public_style.write(tmp_path)
    result = cli("doctor", "-c", config, "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    warns = [line for line in result.output.splitlines() if line.startswith("WARN")]
    assert any(re.search(r"\d+ of \d+ checks off", w) for w in warns), warns
    assert any("Stuck in stage on" in w and "open deals" in w for w in warns), warns
    assert re.search(
        r"ok\s+signals: stuck-in-stage limits: Engaging: 9 in 10 of your", result.output
    )
    # the same data without created_at: the won deals cannot teach, and doctor says so
    text = config.read_text().replace('created_at: "engage_date", ', "")
    config.write_text(text)
    result = cli("doctor", "-c", config, "--as-of", AS_OF)
    assert "stuck-in-stage limits are defaults although the data holds" in result.output
    assert "Engaging: default limit 30 days" in result.output


# --- two weeks of a small team -------------------------------------------------------------------

TEAM = (
    "teams: [{manager: {name: Dana Kim, email: dana@example.com}, reps: "
    '["Kami Ito <kami@example.com>", "Zane Cole <zane@example.com>"]}]\n'
)
WEEK1 = TODAY.replace(day=23)


def kami(**row):
    return csv_row(owner_email="kami@example.com", owner_name="Kami Ito", **row)


def two_week_rows(week: int) -> list[dict]:
    close_soon = (TODAY.replace(day=30)).replace(month=12, day=4).isoformat()
    return [
        # standing trouble, the same both weeks: one contact, a late stage, a Commit deal
        kami(
            deal_id="K-1",
            deal_name="Old trouble",
            stage="Negotiation",
            forecast_category="Commit",
            contacts="Ana Ruiz [Champion]",
            amount="90000",
            close_date="2026-12-20",
            previous_close_dates="2026-10-31; 2026-11-15",
        ),
        # the news: a Commit deal closing in 4 days, its amount cut 25% this week
        kami(
            deal_id="K-2",
            deal_name="Fresh cut",
            forecast_category="Commit",
            amount="100000" if week == 1 else "75000",
            close_date=close_soon,
        ),
        # undated in week 1, dated in week 2: "set", not "moved"
        kami(deal_id="K-3", deal_name="Gets a date", close_date="" if week == 1 else "2027-01-15"),
        # reassigned from Zane to Kami
        csv_row(
            deal_id="Z-1",
            deal_name="Changes hands",
            owner_email="zane@example.com" if week == 1 else "kami@example.com",
            owner_name="Zane Cole" if week == 1 else "Kami Ito",
        ),
        csv_row(
            deal_id="Z-2",
            deal_name="Zane keeps",
            owner_email="zane@example.com",
            owner_name="Zane Cole",
        ),
    ]


@pytest.fixture
def two_weeks(tmp_path) -> tuple[dict, Path]:
    folder = tmp_path
    config = write_config(
        folder / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n" + TEAM,
    )
    for week, day in ((1, WEEK1), (2, TODAY)):
        write_csv(folder / "deals.csv", two_week_rows(week))
        result = cli(
            "prep",
            "-c",
            config,
            "-o",
            folder / f"w{week}",
            "-f",
            "json,html,md",
            "--as-of",
            day.isoformat(),
        )
        assert result.exit_code == 0, result.output + result.stderr
    data = json.loads((folder / "w2" / "packets.json").read_text())
    return {p["rep"]["name"]: p for p in data["packets"]}, folder


def test_an_amount_cut_on_a_commit_deal_ranks_first_with_its_own_question(two_weeks):
    packets, _ = two_weeks
    first = packets["Kami Ito"]["deals"][0]
    assert first["name"] == "Fresh cut" and first["focus"]
    cut = first["flags"][0]
    assert cut["code"] == "amount_decreased" and cut["news"] and cut["severity"] == "high"
    assert "since the last review on a Commit deal" in cut["evidence"]
    assert first["deep"]  # the one deal talked through
    question = first["questions"]["explore"][2]  # the first follow-up after the two core ones
    assert "went down" in question or "take out of scope" in question  # the amount bank's


def test_a_first_close_date_is_set_not_moved(two_weeks):
    packets, folder = two_weeks
    dated = next(d for d in packets["Kami Ito"]["deals"] if d["name"] == "Gets a date")
    assert [c["text"] for c in dated["changes"]] == ["close date set to Jan 15, 2027"]
    history = cli(
        "history", "-c", folder / "leadprep.yaml", "--format", "json", "--as-of", TODAY.isoformat()
    )
    rows = [r for r in json.loads(history.output) if r["name"] == "Kami Ito"]
    assert [r["review"] for r in rows] == [WEEK1.isoformat(), TODAY.isoformat()]
    assert rows[-1]["close_moved"] == 0


def test_a_reassigned_deal_shows_on_both_sheets(two_weeks):
    packets, folder = two_weeks
    (gone,) = [d for d in packets["Zane Cole"]["departed"] if d["name"] == "Changes hands"]
    assert gone["text"] == "reassigned to Kami Ito"
    taken = next(d for d in packets["Kami Ito"]["deals"] if d["name"] == "Changes hands")
    assert "reassigned from Zane Cole" in [c["text"] for c in taken["changes"]]
    assert "reassigned from Zane Cole" in (folder / "w2" / "kami-ito.html").read_text()
    assert "reassigned from Zane Cole" in (folder / "w2" / "kami-ito.md").read_text()


def test_a_derived_judgement_rides_on_its_root_cause(two_weeks):
    packets, folder = two_weeks
    trouble = next(d for d in packets["Kami Ito"]["deals"] if d["name"] == "Old trouble")
    shown = {f["code"]: f["shown"] for f in trouble["flags"]}
    assert shown["single_threaded"] == "deal"
    assert shown["commit_without_evidence"] == "rider"
    assert shown.get("no_decision_maker") == "rider"  # one contact: the same missing people
    rider = next(f for f in trouble["flags"] if f["code"] == "commit_without_evidence")
    assert rider["title"] == "Forecast ahead of evidence (Commit)"
    html = (folder / "w2" / "kami-ito.html").read_text()
    assert 'class="rider"' in html


def test_a_hostile_stage_name_in_a_shared_line_stays_text(tmp_path):
    stage = "<img src=x onerror=alert(1)> *Eng* [x](javascript:alert(1))"
    rows = [
        csv_row(deal_id=f"H-{n}", deal_name=f"Deal {n}", stage=stage, stage_entered_at="2026-01-05")
        for n in range(8)
    ]
    write_csv(tmp_path / "deals.csv", rows)
    config = write_config(
        tmp_path / "leadprep.yaml", "crm: {kind: file, file: {path: deals.csv}}\n"
    )
    result = cli("prep", "-c", config, "-o", tmp_path / "o", "-f", "html,md,json", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output + result.stderr
    (packet,) = json.loads((tmp_path / "o" / "packets.json").read_text())["packets"]
    (line,) = packet["hygiene"]
    assert line["text"].startswith("Stuck in stage on 8 of 8 open deals (8 high). <img")
    html = (tmp_path / "o" / "alex-morgan.html").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    markdown = (tmp_path / "o" / "alex-morgan.md").read_text()
    assert not re.search(r"(?<!\\)<img", markdown)  # only the escaped \<img: shown as text
    assert not re.search(r"(?<!\\)\]\(javascript:", markdown)
    assert "\\*Eng\\*" in markdown
    index = (tmp_path / "o" / "index.html").read_text()
    assert "<img src=x" not in index


def test_send_too_says_when_most_deals_went_to_no_sheet(tmp_path):
    from tests.helpers import mail_config

    config = mail_config(tmp_path, 2525)
    rows = [
        csv_row(deal_id=f"X-{n}", owner_email="kim@example.com", owner_name="Kim Lee")
        for n in range(3)
    ]
    write_csv(tmp_path / "deals.csv", [csv_row(deal_id="D-1"), *rows])
    result = cli("send", "-c", config, "--dry-run", "--as-of", TODAY.isoformat())
    assert result.exit_code == 1, result.output + result.stderr
    assert "3 of 4 open deals went to no sheet" in result.stderr and "Kim Lee (3)" in result.stderr
