"""PDF packets: one per rep and one combined, the text layer complete, no focus deal split."""

import json
import math
import re
from datetime import timedelta

import pypdf
import pytest

from leadprep.config import Config
from leadprep.render import Renderer
from leadprep.timeline import close_date_chart
from tests.helpers import TODAY, cli, csv_row, write_config, write_csv

DEMO_REPS = ["alex-morgan", "jordan-lee", "priya-shah", "sam-rivera"]


def pages_text(path):
    return [" ".join(page.extract_text().split()) for page in pypdf.PdfReader(path).pages]


def page_bound(focus: int, others: int) -> int:
    """The documented bound (README, 'Printing'): Deliver and Listen, a page per focus deal, 25 other deals a page."""
    return 1 + focus + math.ceil(others / 25) + 1


@pytest.fixture(scope="module")
def demo_pdfs(tmp_path_factory):
    out = tmp_path_factory.mktemp("pdf")
    result = cli("prep", "--demo", "-o", out, "-f", "pdf, json", "--as-of", TODAY.isoformat())
    assert result.exit_code == 0, result.output
    return out


def test_demo_pdf_per_rep_and_combined(demo_pdfs):
    packets = {
        p["rep"]["name"]: p for p in json.loads((demo_pdfs / "packets.json").read_text())["packets"]
    }
    total = 0
    for slug in DEMO_REPS:
        pages = pages_text(demo_pdfs / f"{slug}.pdf")
        total += len(pages)
        text = " ".join(pages)
        (packet,) = [
            p for p in packets.values() if p["rep"]["email"].split("@")[0].replace(".", "-") == slug
        ]
        focus = [d for d in packet["deals"] if d["focus"]]
        others = len(packet["deals"]) - len(focus)
        assert len(pages) <= page_bound(len(focus), others), slug
        assert packet["rep"]["name"] in pages[0]
        for deal in focus:
            assert deal["name"] in text
            for flag in deal["flags"]:
                assert flag["evidence"] in text, flag
            for questions in deal["questions"].values():
                for question in questions:
                    assert " ".join(question.split()) in text, question
        for page_number, page in enumerate(pages, start=1):
            assert f"page {page_number} of {len(pages)}" in page  # the footer
    assert len(pypdf.PdfReader(demo_pdfs / "packets.pdf").pages) == total


def test_forty_deal_packet_keeps_each_deal_whole(tmp_path):
    rows = [
        csv_row(
            deal_id=f"D-{n:02d}",
            deal_name=f"Account {n:02d} expansion",
            contacts="Ana Ruiz [Champion]"
            if n % 2
            else "Ana Ruiz [Champion]; Bo Chen [CFO]; Cy Diaz",
            amount=str(20000 + 1000 * n),
            close_date=(TODAY + timedelta(days=10 + n)).isoformat(),
            previous_close_dates=(TODAY - timedelta(days=20)).isoformat() if n % 3 == 0 else "",
        )
        for n in range(40)
    ]
    write_csv(tmp_path / "deals.csv", rows)
    config = write_config(
        tmp_path / "c.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: s.db}\nreview: {focus_deals: 5}\n",
    )
    out, day = tmp_path / "o", TODAY.isoformat()
    result = cli("prep", "-c", config, "-o", out, "-f", "pdf,html,json", "--as-of", day)
    assert result.exit_code == 0, result.output
    (packet,) = json.loads((tmp_path / "o" / "packets.json").read_text())["packets"]
    pages = pages_text(tmp_path / "o" / "alex-morgan.pdf")
    focus = [d for d in packet["deals"] if d["focus"]]
    assert len(focus) == 5 and len(packet["deals"]) == 40
    assert len(pages) <= 1 + 5 // 2  # five focus deals need a third page; the others add none
    for deal in focus:
        start = [i for i, page in enumerate(pages) if f"#{deal['id']} " in page + " "]
        # the box ends with its last question: on the page where it starts, so never split
        last_question = " ".join(deal["questions"]["explore"][-1].split())
        assert len(start) == 1 and last_question in pages[start[0]], (deal["name"], start)
    text = " ".join(pages)
    printed = [d for d in packet["deals"] if f"#{d['id']}" in text]
    left = re.search(r"And (\d+) more open deals, less in need of coaching", text)
    assert left and len(printed) + int(left.group(1)) == 40  # every deal printed or counted
    html = (tmp_path / "o" / "alex-morgan.html").read_text()
    assert all(f"#{d['id']}" in html for d in packet["deals"])  # the HTML lists them all


def test_paper_size(tmp_path):
    for paper, width in (("letter", 612), ("a4", 595)):
        config = write_config(tmp_path / f"{paper}.yaml", f"output: {{paper: {paper}}}\n")
        out = tmp_path / paper
        result = cli(
            "prep",
            "--demo",
            "-c",
            config,
            "-o",
            out,
            "-f",
            "pdf",
            "--rep",
            "sam.rivera@example.com",
            "--as-of",
            TODAY.isoformat(),
        )
        assert result.exit_code == 0, result.output
        box = pypdf.PdfReader(out / "sam-rivera.pdf").pages[0].mediabox
        assert round(float(box.width)) == width


def test_pdf_never_fetches_remote_resources(tmp_path):
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "packet.html.j2").write_text(
        '<html><body><img src="http://example.invalid/x.png"><p>sheet</p></body></html>'
    )
    renderer = Renderer(Config.model_validate({"output": {"templates": str(mine)}}))
    from leadprep.render import _pdf_layout

    pdf = _pdf_layout()(renderer.env.get_template("packet.html.j2").render(), tmp_path).write_pdf()
    assert pdf.startswith(b"%PDF")  # rendered, with the remote image refused rather than fetched


def test_close_date_chart_geometry():
    days = [
        TODAY - timedelta(days=30),
        TODAY + timedelta(days=5),
        TODAY,
        TODAY + timedelta(days=40),
    ]
    chart = close_date_chart(days, TODAY)
    xs = [p.x for p in chart.points]
    assert xs[0] < xs[2] < xs[1] < xs[3] and chart.points[-1].current
    assert [h.push for h in chart.hops] == [True, False, True]
    assert chart.left <= min(xs) and max(xs) <= chart.width - chart.right
    assert chart.summary.startswith("Close date history: Oct 31 → Dec 5 → Nov 30 → Jan 9")
    assert close_date_chart([TODAY], TODAY) is None


def team_rows(reps: int = 5, per_rep: int = 20, others_for_first: int = 0):
    """A team with every kind of flag: a share of single-threaded, stale, slipped deals."""
    rows = []
    for r in range(reps):
        count = per_rep + (others_for_first if r == 0 else 0)
        for n in range(count):
            rows.append(
                csv_row(
                    deal_id=f"R{r}-{n:02d}",
                    deal_name=f"Account {r}-{n:02d} platform expansion",
                    account=f"Account {r}-{n:02d}",
                    owner_email=f"rep{r}@example.com",
                    owner_name=f"Rep Number{r}",
                    contacts="Ana Ruiz [Champion]"
                    if n % 2
                    else "Ana Ruiz [Champion]; Bo Chen [CFO]; Cy Diaz",
                    amount=str(20000 + 1000 * n),
                    close_date=(TODAY + timedelta(days=5 + 3 * n)).isoformat(),
                    last_activity_at=(TODAY - timedelta(days=3 + n)).isoformat(),
                    next_step="" if n % 4 == 0 else "Pricing review with procurement",
                    previous_close_dates=(TODAY - timedelta(days=20)).isoformat()
                    if n % 3 == 0
                    else "",
                )
            )
    return rows


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_a_rep_with_3_focus_and_25_other_deals_prints_on_one_sheet(tmp_path, paper):
    write_csv(tmp_path / "deals.csv", team_rows(reps=1, per_rep=28))
    config = write_config(
        tmp_path / "c.yaml",
        f"crm: {{kind: file, file: {{path: deals.csv}}}}\nstate: {{path: s.db}}\noutput: {{paper: {paper}}}\n",
    )
    result = cli(
        "prep", "-c", config, "-o", tmp_path / "o", "-f", "pdf,json", "--as-of", TODAY.isoformat()
    )
    assert result.exit_code == 0, result.output
    (packet,) = json.loads((tmp_path / "o" / "packets.json").read_text())["packets"]
    assert len([d for d in packet["deals"] if d["focus"]]) == 3 and len(packet["deals"]) == 28
    pages = pages_text(tmp_path / "o" / "rep-number0.pdf")
    assert len(pages) <= 2, [p[:80] for p in pages]
    assert "Agree" in pages[0] or "Agree" in pages[1]
    text = " ".join(pages)
    assert "leadprep commit" not in text and "leadprep followup" not in text
    assert "risk " not in text.lower().replace("risk flags", "")


def test_every_demo_packet_prints_on_one_sheet_and_packets_pdf_numbers_per_rep(demo_pdfs):
    combined = pages_text(demo_pdfs / "packets.pdf")
    per_rep = {slug: len(pages_text(demo_pdfs / f"{slug}.pdf")) for slug in DEMO_REPS}
    assert all(count <= 2 for count in per_rep.values()), per_rep
    assert sum("page 1 of" in page for page in combined) == len(DEMO_REPS)
    assert not any("leadprep commit" in page or "leadprep followup" in page for page in combined)


def prompts_besides_deliver(packet) -> int:
    focus = [d for d in packet["deals"] if d["focus"]]
    return (
        len(packet["listen"])
        + sum(len(d["questions"]["listen"]) + len(d["questions"]["explore"]) for d in focus)
        + len(packet["agree"]["prompts"])
    )


def test_ten_minutes_hold_for_the_demo_and_a_five_rep_team(tmp_path, demo_pdfs):
    demo = json.loads((demo_pdfs / "packets.json").read_text())["packets"]
    write_csv(tmp_path / "deals.csv", team_rows(reps=5, per_rep=20))
    config = write_config(
        tmp_path / "c.yaml", "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: s.db}\n"
    )
    result = cli(
        "prep", "-c", config, "-o", tmp_path / "o", "-f", "json", "--as-of", TODAY.isoformat()
    )
    assert result.exit_code == 0, result.output
    team = json.loads((tmp_path / "o" / "packets.json").read_text())["packets"]
    assert len(team) == 5 and sum(len(p["deals"]) for p in team) == 100
    for packet in [*demo, *team]:
        focus = [d for d in packet["deals"] if d["focus"]]
        # three, less a deal Deliver already opens on (Alex: Northwind)
        assert 2 <= len(focus) <= 3, packet["rep"]["name"]
        assert prompts_besides_deliver(packet) <= 12, packet["rep"]["name"]
        (deep,) = [d for d in focus if d["deep"]]  # one deal in depth…
        assert len(deep["questions"]["listen"]) == 1 and 2 <= len(deep["questions"]["explore"]) <= 4
        for deal in focus:  # …the others one question each, "if time"
            if not deal["deep"]:
                assert deal["questions"] == {"listen": [], "explore": deal["questions"]["explore"]}
                assert len(deal["questions"]["explore"]) == 1
        assert len(packet["agree"]["prompts"]) == 3  # the one thing, how we'll know, rehearse
        for item in packet["deliver"]:
            assert item["prompts"]["kept"] and item["prompts"]["missed"]
            assert item["prompts"]["not_worked"]  # done, but it did not work
            assert re.match(r"(Last week|On \w{3} \d+) you committed to", item["opening"])
