"""PDF packets: one per rep and one combined, the text layer complete, no focus deal split."""

import json
import math
from datetime import timedelta

import pypdf
import pytest
from conftest import TODAY, cli, csv_row, write_config, write_csv

from leadprep.config import Config
from leadprep.render import Renderer
from leadprep.timeline import close_date_chart

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
    result = cli(
        "prep", "-c", config, "-o", tmp_path / "o", "-f", "pdf, json", "--as-of", TODAY.isoformat()
    )
    assert result.exit_code == 0, result.output
    (packet,) = json.loads((tmp_path / "o" / "packets.json").read_text())["packets"]
    pages = pages_text(tmp_path / "o" / "alex-morgan.pdf")
    focus = [d for d in packet["deals"] if d["focus"]]
    assert len(focus) == 5 and len(packet["deals"]) == 40
    assert len(pages) <= page_bound(5, 35)
    for deal in focus:
        start = [i for i, page in enumerate(pages) if f". {deal['name']}" in page]
        end = [i for i, page in enumerate(pages) if f"leadprep commit {deal['id']} " in page]
        assert len(start) == 1 and start == end, (deal["name"], start, end)
    for deal in packet["deals"]:
        assert sum(page.count(deal["name"]) for page in pages) >= 1


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
    from leadprep.render import _pdf_writer

    pdf = _pdf_writer()(renderer.env.get_template("packet.html.j2").render(), tmp_path)
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
