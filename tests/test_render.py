import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from leadprep.config import Config
from leadprep.errors import ConfigError, OutputError
from leadprep.model import Contact
from leadprep.packets import Memory, build_packets
from leadprep.render import Renderer, md_escape
from tests.helpers import TODAY, make_deal

EVIL = "<script>alert(1)</script>"


def packets_for(deals, config=None, memory=None):
    config = config or Config()
    renderer = Renderer(config)
    return renderer, build_packets(
        deals, memory or Memory(), config, renderer.question_bank(), TODAY
    )


def test_crm_text_is_escaped_in_html(tmp_path):
    deal = make_deal(
        name=EVIL,
        account="<b>Acme</b>",
        next_step='"><img src=x onerror=alert(2)>',
        contacts=(Contact("<i>Ana</i>", role="Champion"),),
        url="javascript:alert(3)",
        amount=Decimal(90000),
    )
    renderer, packets = packets_for([deal])
    assert packets[0].focus, "the deal should be a focus deal so every field is rendered"
    files = renderer.write_to(packets, tmp_path, ["html", "md", "json"], as_of=TODAY, source="file")
    for name in ("alex-morgan.html", "index.html"):
        html = (tmp_path / name).read_text()
        assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img" not in html and "<i>Ana" not in html
    md = (tmp_path / "alex-morgan.md").read_text()
    assert "<script>" not in md and r"\<script\>" in md
    data = json.loads((tmp_path / "packets.json").read_text())
    assert data["packets"][0]["deals"][0]["name"] == EVIL  # JSON keeps the data as it is
    assert {p.name for p in files} == {
        "alex-morgan.html",
        "alex-morgan.md",
        "packets.json",
        "index.html",
    }


def test_md_escape():
    assert md_escape("a*b_c [x](y) <t> | #") == r"a\*b\_c \[x\](y) \<t\> \| \#"


def test_user_templates_override_packaged_ones(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "packet.md.j2").write_text("custom sheet for {{ packet.rep.name }}\n")
    config = Config.model_validate({"output": {"templates": str(mine)}})
    renderer, packets = packets_for([make_deal(contacts=())], config)
    renderer.write_to(packets, tmp_path / "out", ["html", "md"], as_of=TODAY, source="file")
    assert (tmp_path / "out" / "alex-morgan.md").read_text() == "custom sheet for Alex Morgan\n"
    assert "Facts from the CRM" in (tmp_path / "out" / "alex-morgan.html").read_text()  # packaged


def test_a_user_template_extends_the_packaged_one_and_changes_one_block(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "packet.html.j2").write_text(
        '{% extends "default:packet.html.j2" %}\n'
        "{% block footer %}<footer>Acme sales · {{ p.rep.name }} · {{ p.deals | length }} deal(s)"
        "</footer>{% endblock %}\n"
        "{% block styles %}{{ super() }} .packet h1 { color: navy; }{% endblock %}\n"
    )
    config = Config.model_validate({"output": {"templates": str(mine)}})
    renderer, packets = packets_for([make_deal(name=EVIL, contacts=())], config)
    renderer.write_to(packets, tmp_path / "out", ["html"], as_of=TODAY, source="file")
    html = (tmp_path / "out" / "alex-morgan.html").read_text()
    assert "<footer>Acme sales · Alex Morgan · 1 deal(s)</footer>" in html
    assert "Prepared by leadprep" not in html  # the block was replaced ...
    assert "Deliver" in html and "Facts from the CRM" in html  # ... and only that block
    assert ".packet h1 { color: navy; }" in html and "@page" in html  # super() kept the CSS
    assert EVIL not in html  # still autoescaped


def test_undefined_variables_in_templates_are_errors(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "packet.md.j2").write_text("{{ packet.no_such_thing }}\n")
    config = Config.model_validate({"output": {"templates": str(mine)}})
    renderer, packets = packets_for([make_deal()], config)
    with pytest.raises(OutputError, match=r"packet\.md\.j2 failed"):
        renderer.write_to(packets, tmp_path / "out", ["md"], as_of=TODAY, source="file")


def test_missing_template_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        Renderer(Config.model_validate({"output": {"templates": str(tmp_path / "nope")}}))


def test_packet_shows_unknown_activity_instead_of_a_flag(tmp_path):
    renderer, packets = packets_for([make_deal(last_activity_at=None, contacts=())])
    html = renderer.packet_html(packets[0])
    assert re.search(r"<dt>Last activity</dt><dd><span class=\"unknown\">unknown</span>", html)
    assert "Stale" not in html


def test_focus_limit_and_compact_rest(tmp_path):
    deals = [make_deal(id=f"D-{i}", name=f"Deal {i}", contacts=()) for i in range(5)]
    deals.append(make_deal(id="H", name="Healthy one"))
    config = Config.model_validate({"review": {"focus_deals": 2}})
    renderer, (packet,) = packets_for(deals, config)
    assert len(packet.focus) == 2 and len(packet.others) == 4
    html = renderer.packet_html(packet)
    assert html.count('class="deal"') == 1 and html.count('class="backup"') == 1  # deep, if time
    assert "Healthy one" in html and "healthy" in html


def test_rep_with_no_flags_gets_a_short_packet_with_listen(tmp_path):
    renderer, (packet,) = packets_for([make_deal()])
    html = renderer.packet_html(packet)
    # no flag: the one deal is still talked through, with the framework's questions
    (deep,) = packet.focus
    assert deep.deep and deep.flags == [] and len(deep.questions["explore"]) >= 2
    assert "No deal is flagged this week" in html and "Listen" in html


def test_ranking_puts_bigger_nearer_riskier_deals_first():
    deals = [
        make_deal(id="small", amount=Decimal(21000), contacts=(Contact("A"),)),
        make_deal(
            id="big-soon",
            amount=Decimal(200000),
            close_date=TODAY + timedelta(days=10),
            contacts=(Contact("A"),),
        ),
        make_deal(
            id="big-late",
            amount=Decimal(200000),
            close_date=TODAY + timedelta(days=90),
            contacts=(Contact("A"),),
        ),
    ]
    _, (packet,) = packets_for(deals)
    assert [v.deal.id for v in packet.deals] == ["big-soon", "big-late", "small"]
    assert packet.deals[0].risk_score > packet.deals[1].risk_score > packet.deals[2].risk_score
