"""Tracking the results: four weekly reviews with commitments made and followed up, and the
rollup's, history's and the sheets' numbers checked exactly."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from leadprep.history import rep_series, team_series
from leadprep.store import Store
from tests.helpers import cli, csv_row, write_config, write_csv

WEEKS = [date(2026, 11, 2) + timedelta(weeks=n) for n in range(4)]


def teams(week: int) -> str:
    """Kim joins Lee's team at the third review; Max's team (his direct reports in the data)
    has nobody in it yet."""
    lee = '"Pat Lane <pat@example.com>"' + (', "Kim Lee <kim@example.com>"' if week >= 2 else "")
    return (
        "teams:\n"
        "  - manager: {name: Dana Kim, email: dana@example.com}\n"
        '    reps: ["Alex Morgan <alex@example.com>", "Sam Rivera <sam@example.com>"]\n'
        "  - manager: {name: Lee Park, email: lee@example.com}\n"
        f"    reps: [{lee}]\n"
        "  - manager: {name: Max Stone, email: max@example.com}\n"
    )


def rows_for(week: int) -> list[dict]:
    rows = [
        # alex's D-1 moves its close date between the first and second review
        csv_row(
            deal_id="D-1",
            deal_name="Acme",
            close_date=(WEEKS[0] + timedelta(days=40 + (10 if week else 0))).isoformat(),
        ),
        csv_row(deal_id="D-2", deal_name="Globex", contacts=""),
        csv_row(
            deal_id="D-3",
            deal_name="Initech",
            owner_email="sam@example.com",
            owner_name="Sam Rivera",
        ),
    ]
    if week >= 2:  # Kim joins at the third review
        rows.append(
            csv_row(
                deal_id="D-4",
                deal_name="Umbrella",
                owner_email="kim@example.com",
                owner_name="Kim Lee",
            )
        )
    return rows


@pytest.fixture
def four_weeks(tmp_path: Path) -> Path:
    config = tmp_path / "leadprep.yaml"

    def run(*args: object) -> None:
        result = cli(*args, "-c", config)
        assert result.exit_code == 0, result.output + result.stderr

    for week, day in enumerate(WEEKS):
        write_csv(tmp_path / "deals.csv", rows_for(week))
        write_config(
            config,
            "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n" + teams(week),
        )
        when = day.isoformat()
        run("prep", "-o", tmp_path / f"w{week + 1}", "-f", "json,html", "--as-of", when)
        if week == 0:
            run("commit", "D-1", "Book the CFO call with Ana by Friday", "--as-of", when)  # 1
            run("commit", "D-3", "Send Bo the security answers by Tuesday", "--as-of", when)  # 2
        if week == 1:
            run("followup", "1", "--kept", "--as-of", when)
            run("followup", "2", "--missed", "--as-of", when)
            run("commit", "D-2", "Ask Cy to add the IT lead by Thursday", "--as-of", when)  # 3
        if week == 2:
            run("followup", "3", "--partly", "--as-of", when)
            run("commit", "D-3", "Walk Bo through pricing on Monday", "--as-of", when)  # 4
    return config


def test_the_rollups_numbers(four_weeks, tmp_path):
    with Store.open(tmp_path / "state.db") as store:
        reps = {s.key: s for s in rep_series(store, WEEKS[-1], 12)}
        managers = {
            "dana@example.com": "Dana Kim",
            "lee@example.com": "Lee Park",
            "max@example.com": "Max Stone",
        }
        by_team = {t.key: t for t in team_series(list(reps.values()), managers)}
    alex = reps["alex@example.com"].summary(4)
    assert alex["reviews"] == 4 and alex["commitments"] == 2
    # the last review's 1:1 has not been held (nothing recorded, no later review, not a week
    # old): it does not count against the Agree rate, and is shown apart
    assert alex["held"] == 3 and alex["not_held_yet"] is True
    assert alex["commitments_per_review"] == pytest.approx(2 / 3)
    assert alex["agree_share"] == pytest.approx(2 / 3)  # the third 1:1 ended without one
    assert alex["followed_up_share"] == 1.0  # both followed up at the very next review
    assert alex["kept_rate"] == 0.75  # kept + partly (half) of 2
    assert alex["never_followed_up"] == 0
    assert alex["close_moved"] == 1  # D-1's close date moved at the second review
    sam = reps["sam@example.com"].summary(4)
    # #4 was made at the third review; the fourth's 1:1 has not happened, so Deliver is not due
    # yet: it neither counts nor pulls the share down (as with Agree)
    assert (sam["commitments"], sam["followed_up_next"], sam["followed_up_share"]) == (2, 1, 1.0)
    assert sam["kept_rate"] == 0.0 and sam["never_followed_up"] == 1
    kim = reps["kim@example.com"].summary(4)  # joined at the third review
    assert kim["reviews"] == 2 and kim["commitments"] == 0 and kim["kept_rate"] is None
    dana = by_team["dana@example.com"].summary(4)
    # per 1:1 held (two reps × three held reviews), not per team review
    assert dana["reviews"] == 4 and dana["held"] == 6
    assert dana["commitments_per_review"] == pytest.approx(4 / 6) == dana["agree_share"]
    assert (
        dana["followed_up_share"] == 1.0
        and dana["kept_rate"] == 0.5
        and dana["never_followed_up"] == 1
    )
    assert by_team["lee@example.com"].summary(12)["reviews"] == 4  # Pat had a sheet every week
    max_team = by_team["max@example.com"]
    assert max_team.reps == [] and max_team.summary(4)["reviews"] == 0  # no reviews yet

    # the page the director opens says the same
    html = (tmp_path / "w4" / "rollup.html").read_text()
    assert "Max Stone" in html and "no reviews yet" in html
    assert "<svg" in html and "<script" not in html
    assert "75%" in html and "50%" in html


def test_history_prints_the_same_series(four_weeks):
    result = cli(
        "history",
        "-c",
        four_weeks,
        "--rep",
        "sam@example.com",
        "--format",
        "json",
        "--as-of",
        WEEKS[-1].isoformat(),
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["review"] for r in rows] == [d.isoformat() for d in WEEKS]
    assert [r["commitments"] for r in rows] == [1, 0, 1, 0]
    assert [r["followed_up_next_review"] for r in rows] == [1, 0, 0, 0]
    assert [r["kept_rate"] for r in rows] == [None, 0.0, None, None]
    csv_out = cli(
        "history", "-c", four_weeks, "--format", "csv", "--as-of", WEEKS[-1].isoformat()
    ).stdout
    assert csv_out.splitlines()[0].startswith("rep,name,manager,review")
    table = cli(
        "history", "-c", four_weeks, "--weeks", "2", "--as-of", WEEKS[-1].isoformat()
    ).stdout
    assert "Kim Lee" in table and WEEKS[0].isoformat() not in table


def test_each_sheet_has_its_trend_and_the_index_groups_reps_by_manager(four_weeks, tmp_path):
    alex = (tmp_path / "w4" / "alex-morgan.html").read_text()
    assert "Last 4 reviews: flagged deals" in alex
    index = (tmp_path / "w4" / "index.html").read_text()
    assert (
        index.index("Dana Kim")
        < index.index("Alex Morgan")
        < index.index("Lee Park")
        < index.index("Kim Lee")
    )
    assert 'href="rollup.html"' in index


def test_one_managers_sheets_only(four_weeks, tmp_path):
    out = tmp_path / "lee"
    result = cli(
        "prep",
        "-c",
        four_weeks,
        "-o",
        out,
        "-f",
        "html",
        "--manager",
        "lee@example.com",
        "--as-of",
        WEEKS[-1].isoformat(),
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.html")) == [
        "index.html",
        "kim-lee.html",
        "pat-lane.html",
        "rollup.html",
    ]
    wrong = cli(
        "prep",
        "-c",
        four_weeks,
        "-o",
        tmp_path / "x",
        "--manager",
        "nobody@example.com",
        "--as-of",
        WEEKS[-1].isoformat(),
    )
    assert wrong.exit_code == 2 and "No rep in this pipeline has the manager" in wrong.stderr


def test_a_first_close_date_is_set_not_moved(tmp_path):
    """Dating four undated deals is no slip: 'Close dates moved' counts pushes and pull-ins."""
    undated = [csv_row(deal_id=f"D-{i}", close_date="", manager_email="") for i in range(4)]
    dated = [csv_row(deal_id=f"D-{i}", close_date="2027-01-15", manager_email="") for i in range(4)]
    config = write_config(
        tmp_path / "leadprep.yaml", "crm: {kind: file, file: {path: deals.csv}}\n"
    )
    for day, rows in ((WEEKS[0], undated), (WEEKS[1], dated)):
        write_csv(tmp_path / "deals.csv", rows)
        assert cli("prep", "-c", config, "--as-of", day.isoformat(), "-o", "out").exit_code == 0
    result = cli("history", "-c", config, "--as-of", WEEKS[1].isoformat(), "--format", "json")
    (row,) = [r for r in json.loads(result.stdout) if r["review"] == WEEKS[1].isoformat()]
    assert row["close_moved"] == 0
    assert "4 open deals" in (tmp_path / "out" / "alex-morgan.md").read_text()
    assert "close date set to" in (tmp_path / "out" / "alex-morgan.html").read_text()


def test_a_team_that_commits_at_every_1on1_shows_100_percent_and_this_week_apart(tmp_path):
    """The review being prepared has not had its 1:1: it never pulls the Agree rate down."""
    config = tmp_path / "leadprep.yaml"
    write_config(
        config,
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n" + teams(0),
    )
    write_csv(tmp_path / "deals.csv", rows_for(0))
    for week, day in enumerate(WEEKS):
        when = day.isoformat()
        result = cli(
            "prep", "-c", config, "-o", tmp_path / f"w{week}", "-f", "html", "--as-of", when
        )
        assert result.exit_code == 0, result.output
        if week < 3:  # reviews 1-3: every 1:1 ends with a commitment
            for deal in ("D-1", "D-3"):
                text = f"Book the next call on {deal} by Friday"
                assert cli("commit", "-c", config, deal, text, "--as-of", when).exit_code == 0
    rollup = (tmp_path / "w3" / "rollup.html").read_text()
    summary = rollup.split('<tr class="director">', 1)[1].split("</tr>", 1)[0]
    assert "Dana Kim:" in summary and "6 of 6 1:1s ended with a commitment" in summary
    dana = rollup.split('<tr class="team">', 1)[1].split("</tr>", 1)[0]
    assert "100% (100%)" in dana and "this week: not held yet" in dana


def test_history_in_an_80_column_terminal_shows_full_dates(four_weeks, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("history", "-c", four_weeks, "--as-of", WEEKS[-1].isoformat())
    assert result.exit_code == 0, result.output
    table = [line for line in result.output.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table)  # (the caption wraps as text does)
    for day in WEEKS:
        assert day.isoformat() in result.output  # never "2026-1…"
    assert "—: not held yet" in result.output  # the last review's 1:1 is not counted as held


def rollup_in_chromium(page_path: Path) -> tuple[int, int, bytes]:
    """The rollup at 1,200 px in Chromium: (scroll width, client width, the page printed)."""
    from tests.test_review import chromium_or_skip

    sync_api, browser_path = chromium_or_skip()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(page_path.as_uri())
        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        page.emulate_media(media="print")
        pdf = page.pdf(prefer_css_page_size=True)
        browser.close()
    return scroll, client, pdf


def one_landscape_page(pdf: bytes) -> bool:
    import io

    import pypdf

    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    return len(pages) == 1 and pages[0].mediabox.width > pages[0].mediabox.height


def test_the_rollup_fits_1200_pixels_and_one_landscape_page(tmp_path):
    result = cli("prep", "--demo", "-o", tmp_path, "-f", "html", "--as-of", "2026-11-30")
    assert result.exit_code == 0, result.output
    scroll, client, pdf = rollup_in_chromium(tmp_path / "rollup.html")
    assert scroll <= client, (scroll, client)  # no horizontal scroll
    assert one_landscape_page(pdf)


def test_whether_a_commitment_worked_is_recorded_and_counted(four_weeks, tmp_path):
    """Kept and worked, kept and did not work: the rollup's line and history's rows say so."""
    when = WEEKS[-1].isoformat()
    done = cli("followup", "-c", four_weeks, "4", "--kept", "--worked", "--as-of", when)
    assert done.exit_code == 0 and "and it worked" in done.output
    refused = cli("followup", "-c", four_weeks, "4", "--missed", "--worked", "--as-of", when)
    assert refused.exit_code == 2  # a missed commitment neither worked nor failed
    with Store.open(tmp_path / "state.db") as store:
        (four,) = [c for c in store.commitments.all() if c.id == 4]
        assert four.followups[-1].worked is True
        sam = {s.key: s for s in rep_series(store, WEEKS[-1], 12)}["sam@example.com"]
    assert (sam.summary(4)["worked"], sam.summary(4)["worked_said"]) == (1, 1)
    rows = json.loads(cli("history", "-c", four_weeks, "--format", "json", "--as-of", when).output)
    assert sum(r["worked_said"] for r in rows) == 1
