"""The director's view, end to end: four weekly reviews of two teams, built by hand, and every
number of the rollup, the index and ``history`` checked against what was worked out on paper."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.helpers import cli, csv_row, write_config, write_csv

REVIEWS = [date(2026, 11, 9) + timedelta(weeks=n) for n in range(4)]  # all in Q4 2026

CONFIG = """\
crm: {kind: file, file: {path: deals.csv}}
state: {path: state.db}
targets: {kept_rate: 70%, agree_share: 90%}
teams:
  - manager: {name: Dana Kim, email: dana@example.com}
    reps: ["Alex Morgan <alex@example.com>", "Sam Rivera <sam@example.com>"]
  - manager: {name: Lee Park, email: lee@example.com}
    reps: ["Pat Lane <pat@example.com>", "Kim Lee <kim@example.com>"]
    targets: {kept_rate: 60%}
"""

OWNERS = {
    "A": ("alex@example.com", "Alex Morgan"),
    "S": ("sam@example.com", "Sam Rivera"),
    "P": ("pat@example.com", "Pat Lane"),
    "K": ("kim@example.com", "Kim Lee"),
}
ONE_CONTACT = "Ana Ruiz <ana@acme.com> [Champion]"


def pipeline(review: int) -> list[dict]:
    """The deals as the CRM had them at review ``review`` (0-3). Between reviews:
    1→2: A2 pushed out of Q4 (50,000); P2 cut from 25,000 to 20,000 (5,000);
    2→3: S1 pulled into Q4 (40,000); A3 raised from 30,000 to 35,000 (5,000); K3 new (12,000);
    3→4: A1 won (100,000); S3 lost (15,000); K1 pushed out of Q4 (80,000)."""
    won = {"is_closed": "true", "is_won": "true"}
    lost = {"is_closed": "true", "is_won": "false"}
    deals = [
        ("A1", "100000", "2026-12-15", "Commit", won if review >= 3 else {}),
        ("A2", "50000", "2027-01-10" if review >= 1 else "2026-12-20", "Pipeline", {}),
        ("A3", "35000" if review >= 2 else "30000", "2027-02-01", "Pipeline", {}),
        ("S1", "40000", "2026-12-28" if review >= 2 else "2027-01-15", "Pipeline", {}),
        ("S2", "20000", "2027-02-01", "Pipeline", {}),
        ("S3", "15000", "2026-12-30", "Pipeline", lost if review >= 3 else {}),
        # Commit with one contact: a high flag on 60,000 of Commit at every review
        ("P1", "60000", "2026-12-10", "Commit", {"contacts": ONE_CONTACT}),
        ("P2", "20000" if review >= 1 else "25000", "2027-03-01", "Pipeline", {}),
        ("K1", "80000", "2027-02-15" if review >= 3 else "2026-12-18", "Pipeline", {}),
        ("K2", "10000", "2027-01-20", "Pipeline", {}),
    ]
    if review >= 2:
        deals.append(("K3", "12000", "2027-03-15", "Pipeline", {}))
    rows = []
    for deal_id, amount, close, category, extra in deals:
        email, name = OWNERS[deal_id[0]]
        rows.append(
            csv_row(
                deal_id=deal_id,
                deal_name=f"Deal {deal_id}",
                owner_email=email,
                owner_name=name,
                manager_email="",
                amount=amount,
                close_date=close,
                forecast_category=category,
                stage_entered_at=(REVIEWS[review] - timedelta(days=5)).isoformat(),
                last_activity_at=(REVIEWS[review] - timedelta(days=2)).isoformat(),
                **extra,
            )
        )
    return rows


# Each rep's commitment at reviews 1-3 is about their first deal; how it went, said at the next
# review: (status, worked). Alex's first one worked; Sam's was kept but did not work.
OUTCOMES = {
    1: {"A": ("kept", True), "S": ("kept", False), "P": ("partly", None), "K": ("missed", None)},
    2: {"A": ("kept", None), "S": ("missed", None), "P": ("kept", None), "K": ("partly", None)},
}


@pytest.fixture
def director(tmp_path: Path) -> Path:
    config = write_config(tmp_path / "leadprep.yaml", CONFIG)

    def run(*args: object) -> str:
        result = cli(*args, "-c", config)
        assert result.exit_code == 0, result.output + result.stderr
        return result.stdout

    ids: dict[tuple[int, str], int] = {}
    for n, day in enumerate(REVIEWS):
        when = day.isoformat()
        write_csv(tmp_path / "deals.csv", pipeline(n))
        run("prep", "-o", tmp_path / f"r{n + 1}", "-f", "html,json", "--as-of", when)
        for rep, (status, worked) in OUTCOMES.get(n, {}).items():
            flags = [f"--{status}"]
            if worked is not None:
                flags.append("--worked" if worked else "--did-not-work")
            run("followup", str(ids[(n, rep)]), *flags, "--as-of", when)
        if n < 3:  # reviews 1-3: every 1:1 ends with a commitment
            for rep in OWNERS:
                said = run(
                    "commit", f"{rep}1", f"Book the next call on {rep}1 by Friday", "--as-of", when
                )
                ids[(n + 1, rep)] = int(re.search(r"#(\d+)", said).group(1))
    return tmp_path


def _row(html: str, name: str) -> str:
    """The rollup row whose first cell is ``name``."""
    for row in html.split("<tr")[1:]:
        if 'class="director"' in row:
            continue
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if cells and re.sub(r"<[^>]+>", "", cells[0]).strip().startswith(name):
            return row
    raise AssertionError(f"no row for {name}")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_rollup_counts_held_1on1s_outcomes_and_money_as_worked_out_by_hand(director):
    rollup = (director / "r4" / "rollup.html").read_text()
    lines = {
        name: _text(line)
        for name, line in re.findall(
            r'<tr class="director"><td[^>]*><b>([^<:]+):</b>(.*?)</td>', rollup, re.S
        )
    }
    dana, lee = lines["Dana Kim"], lines["Lee Park"]
    # Agree over the 1:1s held (reviews 1-3; the fourth is being prepared): 100%
    assert "6 of 6 1:1s ended with a commitment (meets the target of 90%)" in dana
    assert "6 of 6 1:1s ended with a commitment (meets the target of 90%)" in lee
    assert "this week: not held yet" in _text(_row(rollup, "Dana Kim"))
    # Deliver: review 1's and 2's commitments followed up at the next review; review 3's are due
    # at the 1:1 still to come, so they do not count yet
    assert "100% (100%)" in _text(_row(rollup, "Dana Kim")).split("Kept")[0]
    # Kept, partly, missed, worked (the team's target, or the team's own over it)
    assert "of 4 followed up: 3 kept, 1 missed (kept rate 75%, meets the target of 70%)" in dana
    assert "1 of 2 worked, as the rep said" in dana
    assert (
        "of 4 followed up: 1 kept, 2 partly, 1 missed (kept rate 50%, below the target of 60%)"
        in lee
    )
    assert "worked" not in lee.split("followed up")[1].split(";")[1]
    for rep, outcome in (
        ("Alex Morgan", "2 kept"),
        ("Sam Rivera", "1 kept, 1 missed"),
        ("Pat Lane", "1 kept, 1 partly"),
        ("Kim Lee", "1 partly, 1 missed"),
    ):
        assert outcome in _text(_row(rollup, rep)), rep
    lee_row = _row(rollup, "Lee Park")
    assert 'class="off-target"' in lee_row and "below the target of 60%" in lee_row
    # Money since review 1, summed over the window, as worked out in pipeline()'s docstring
    for figure in (
        "won $100,000",
        "lost $15,000",
        "pushed out of Q4 $50,000",
        "pulled into Q4 $40,000",
        "raised $5,000",
    ):
        assert figure in dana, figure
    assert "cut" not in dana and "new $" not in dana and "Commit carrying" not in dana
    for figure in (
        "pushed out of Q4 $80,000",
        "cut $5,000",
        "new $12,000",
        "Commit carrying a high flag: $60,000",
    ):
        assert figure in lee, figure
    assert "won $" not in lee and "pulled into" not in lee


def history(folder: Path, form: str) -> str:
    """``leadprep history`` at the fourth review, in ``form``."""
    as_of = REVIEWS[-1].isoformat()
    result = cli("history", "-c", folder / "leadprep.yaml", "--as-of", as_of, "--format", form)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_history_carries_the_same_numbers_with_stable_names(director):
    rows = json.loads(history(director, "json"))
    dana_reps = {"alex@example.com", "sam@example.com"}
    totals: dict[str, int] = {}
    for row in rows:
        if row["rep"] in dana_reps:
            for key, value in row["money"].get("USD", {}).items():
                totals[key] = totals.get(key, 0) + int(float(value))
    assert {k: v for k, v in totals.items() if v and "at_risk" not in k} == {
        "won": 100000,
        "lost": 15000,
        "pushed_out": 50000,
        "pulled_in": 40000,
        "raised": 5000,
    }
    sam = [r for r in rows if r["rep"] == "sam@example.com"]
    assert [r["followups_kept"] for r in sam] == [0, 1, 0, 0]
    assert [r["followups_missed"] for r in sam] == [0, 0, 1, 0]
    assert [r["agreed"] for r in sam] == [True, True, True, False]
    table = list(csv.DictReader(io.StringIO(history(director, "csv"))))
    assert {"followups_kept", "followups_partly", "followups_missed", "agreed"} <= set(table[0])


def test_the_index_and_the_sheet_use_the_rollups_kept_rate(director):
    index = _text((director / "r4" / "index.html").read_text())
    assert "1 of 2 (50%)" in index.split("Sam Rivera")[1].split("Pat Lane")[0]
    sheet = _text((director / "r4" / "kim-lee.html").read_text())
    assert "0.5 of 2 (25%)" in sheet


@pytest.mark.parametrize(
    "targets, said",
    [
        ({"kept_rate": 170}, "kept_rate: 170 is above 1; write a share as 80% or 0.8"),
        ({"kept_rate": "7o%"}, "kept_rate: '7o%' is not a share"),
        ({"speed": 3}, "'speed' takes no target; targets can be set for: agree_share"),
        ({"close_moved": 3}, "'close_moved' takes no target"),
        ({"flags_per_deal": "50%"}, "flags_per_deal is counted in flags a deal, not a percentage"),
        ({"never_followed_up": -1}, "never_followed_up: a target is 0 or more"),
    ],
)
def test_a_target_the_rollup_cannot_use_is_refused_with_what_it_takes(targets, said):
    from pydantic import ValidationError

    from leadprep.config import Config

    with pytest.raises(ValidationError, match=re.escape(said)):
        Config.model_validate({"targets": targets})
    assert Config.model_validate({"targets": {"kept_rate": "70%"}}).targets == {"kept_rate": 0.7}
    assert Config.model_validate({"targets": {"kept_rate": 0.7}}).targets == {"kept_rate": 0.7}


def test_the_two_team_rollup_with_a_long_unbroken_name_fits_1200_pixels(director, tmp_path):
    """Names wrap (a long one with no space breaks anywhere): the page never scrolls sideways,
    and the two teams print on one landscape page."""
    from tests.test_history import one_landscape_page, rollup_in_chromium

    config = director / "leadprep.yaml"
    config.write_text(config.read_text().replace("Lee Park", "Lee" + "Parkinson" * 8))
    out = tmp_path / "wide"
    result = cli("prep", "-c", config, "-o", out, "-f", "html", "--as-of", REVIEWS[-1].isoformat())
    assert result.exit_code == 0, result.output
    scroll, client, pdf = rollup_in_chromium(out / "rollup.html")
    assert scroll <= client, (scroll, client)
    assert one_landscape_page(pdf)
