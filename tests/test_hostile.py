"""Hostile CRM text in every sink: links, Markdown, shell lines, the terminal, email headers."""

from __future__ import annotations

import json
import re

import pytest

from leadprep.model import Contact, Rep
from leadprep.sanitize import (
    UnsafeValue,
    clean_deal,
    clean_line,
    email_address,
    safe_url,
    terminal_text,
)
from tests.helpers import TODAY, cli, csv_row, file_config, teams_yaml

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def run(tmp_path, rows, *extra, reps=("alex@example.com",), formats="html,md,json"):
    file_config(tmp_path, rows, teams_yaml(list(reps)))
    out = tmp_path / "out"
    result = cli("prep", "-o", out, "-f", formats, "--as-of", TODAY.isoformat(), *extra)
    return result, out


def texts(out):
    return {p.name: p.read_text(encoding="utf-8") for p in out.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://crm.example.com/deals/1", True),
        ("http://crm.example.com/deals/1", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox", False),
        ("https://x.example/a b", False),
        ("https://x.example/a\nb", False),
        ("//evil.example/x", False),
        ("https:///nohost", False),
        ('https://x.example/"onmouseover=alert(1)', False),
    ],
)
def test_only_http_urls_become_links(url, linked):
    assert (safe_url(url) is not None) == linked


def test_javascript_url_is_no_link_in_sheet_markdown_or_json(tmp_path):
    rows = [
        csv_row(deal_id="D-1", url="javascript:alert(document.domain)", contacts="Ana Ruiz"),
        csv_row(deal_id="D-2", deal_name="Second", url="https://crm.example.com/d/2"),
    ]
    result, out = run(tmp_path, rows)
    assert result.exit_code == 0, result.output
    files = texts(out)
    every = "\n".join(files.values())
    assert "javascript:" not in every.lower()
    assert 'href="https://crm.example.com/d/2"' in files["alex-morgan.html"]
    packets = json.loads(files["packets.json"])
    urls = {d["id"]: d["url"] for d in packets["packets"][0]["deals"]}
    assert urls == {"D-1": None, "D-2": "https://crm.example.com/d/2"}


def test_markdown_link_target_cannot_break_out(tmp_path):
    evil = "https://x.example/a) <img src=x onerror=alert(1)>\n# Injected heading"
    rows = [csv_row(deal_id="D-1", url=evil, contacts="Ana Ruiz")]
    result, out = run(tmp_path, rows)
    assert result.exit_code == 0, result.output
    md = (out / "alex-morgan.md").read_text()
    assert "<img" not in md
    assert "\n# Injected" not in md
    # a URL with whitespace is not a link at all; a clean one is percent-encoded inside ( )
    rows = [csv_row(deal_id="D-1", url="https://x.example/a)(b<c>", contacts="Ana Ruiz")]
    result, out = run(tmp_path, rows)
    md = (out / "alex-morgan.md").read_text()
    assert "(https://x.example/a%29%28b%3Cc%3E)" in md


def test_markdown_escapes_deal_text(tmp_path):
    rows = [
        csv_row(
            deal_id="D-1",
            deal_name="[click](javascript:x) <b>bold</b>\n## heading",
            contacts="Ana Ruiz",
        )
    ]
    result, out = run(tmp_path, rows)
    assert result.exit_code == 0, result.output
    md = (out / "alex-morgan.md").read_text()
    assert "[click](javascript" not in md
    assert "<b>" not in md
    assert "\n## heading" not in md


def test_control_characters_never_reach_outputs(tmp_path):
    rows = [
        csv_row(
            deal_id="D-\x001",
            deal_name="Acme\r\nBcc: evil@example.com\x00\x1b[2J",
            account="Ac\u202eme",
            next_step="Call\rback\x07",
            owner_name="Alex\r\nMorgan\x1b]8;;x\x1b\\",
            contacts="Ana\x1b Ruiz\x07",
        )
    ]
    result, out = run(tmp_path, rows, formats="html,md,json")
    assert result.exit_code == 0, result.output
    for name, text in texts(out).items():
        assert not CONTROL.search(text.replace("\n", "").replace("\t", "")), name
        assert "\u202e" not in text, name
    assert "\x1b" not in result.output
    assert "\x1b" not in result.stderr


def test_terminal_never_gets_escape_sequences(tmp_path):
    rows = [csv_row(owner_name="\x1b]0;pwned\x07Alex \x1b[31mMorgan", deal_name="\x1b[2JWipe")]
    result, _ = run(tmp_path, rows)
    assert result.exit_code == 0
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert terminal_text("a\x1b[31mb\rc") == "a?[31mb?c"


def test_shell_lines_on_the_screen_sheet_quote_crm_text_and_never_print(tmp_path):
    rows = [
        csv_row(
            deal_id="$(touch pwned)",
            owner_email="o'neil@example.com",
            owner_name="Pat O'Neil",
            contacts="Ana Ruiz",
            stage="Negotiation",
        )
    ]
    result, out = run(tmp_path, rows, reps=("o'neil@example.com",))
    assert result.exit_code == 0, result.output
    html = (out / "pat-o-neil.html").read_text()
    md = (out / "pat-o-neil.md").read_text()
    assert "$(touch pwned)" not in re.sub(r"<h3>.*?</h3>|<td>.*?</td>|id=\"[^\"]*\"", "", html)
    assert "--rep &#39;o&#39;&#34;&#39;&#34;&#39;neil@example.com&#39;" in html  # shlex-quoted
    assert "leadprep commit" not in md  # paper gets no command lines at all
    assert 'class="cmd no-print"' in html


@pytest.mark.parametrize(
    "address",
    [
        "alex@example.com, evil@example.com",
        "Alex <alex@example.com>",
        "alex@example.com\r\nBcc: evil@example.com",
        "alex@example",
        "alex",
        "a@b.c;d@e.f",
        "x" * 250 + "@example.com",
    ],
)
def test_one_valid_address_per_field(address):
    with pytest.raises(UnsafeValue):
        email_address(address)


def test_comma_in_owner_email_is_a_row_problem_not_a_recipient(tmp_path):
    rows = [
        csv_row(deal_id="D-1"),
        csv_row(deal_id="D-2", owner_email="alex@example.com, evil@example.com"),
        csv_row(deal_id="D-3", manager_email="dana@example.com,evil@example.com"),
        csv_row(deal_id="D-4", manager_email="dana@localhost"),
    ]
    result, out = run(tmp_path, rows)
    assert result.exit_code == 1, result.output
    assert "line 3" in result.stderr and "owner_email" in result.stderr
    assert "line 4" in result.stderr and "manager_email" in result.stderr
    assert "line 5" in result.stderr
    packets = json.loads((out / "packets.json").read_text())
    assert [d["id"] for d in packets["packets"][0]["deals"]] == ["D-1"]
    assert "evil@" not in (out / "packets.json").read_text()


def test_clean_deal_at_the_connector_boundary(deal):
    dirty = deal(
        id="D-1\x00",
        name="Acme\u202e\r\nrollout",
        owner=Rep("id\x1b", "Alex\nMorgan", "Alex@Example.com"),
        contacts=(Contact("\x00"), Contact("Ana", email="not an address")),
        url="javascript:alert(1)",
        next_step="Line 1\r\nLine 2\x07",
    )
    clean = clean_deal(dirty)
    assert clean.id == "D-1"
    assert clean.name == "Acme rollout"
    assert clean.owner == Rep("id", "Alex Morgan", "alex@example.com")
    assert clean.contacts == (Contact("Ana"),)
    assert clean.url is None
    assert clean.next_step == "Line 1\nLine 2"
    with pytest.raises(UnsafeValue):
        clean_deal(deal(owner=Rep("x", "X", "a@b.com, c@d.com")))
    assert clean_line("\u2066x\u2069") == "x"


@pytest.mark.parametrize(
    "name", [". script alert 1 /script ¡", "Dr. Ana Ruiz", "J. Müller", "Ana <ana@evil.example>"]
)
def test_a_recipient_name_with_specials_and_accents_parses_back_as_one_address(name):
    """Found by the fuzz test: a quoted name with a period and a non-ASCII letter was re-folded
    by the email package into a header its own parser could not read."""
    from email import message_from_bytes, policy

    from leadprep.config import EmailSettings
    from leadprep.mail.compose import new_message

    settings = EmailSettings.model_validate(
        {"smtp": {"host": "127.0.0.1"}, "from": "Prep <prep@example.com>"}
    )
    message = new_message(settings, (name, "alex@example.com"), "Prep")
    message.set_content("x")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    [address] = parsed["To"].addresses
    assert address.addr_spec == "alex@example.com"
    assert "@" not in address.display_name and "<" not in address.display_name
