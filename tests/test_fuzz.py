"""Random CRM text through CSV → prep → HTML, Markdown, JSON and the email outbox: no exception,
no traceback, no link but http(s), no control character in anything written."""

from __future__ import annotations

import csv
import json
import re
import shutil
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.helpers import TODAY, cli

# Text a hostile or unlucky CRM user could type: markup, URLs of every scheme, quotes, control
# and bidi characters, shell syntax, separators, very long runs.
NASTY = [
    "<script>alert(1)</script>",
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "data:text/html,x",
    '"><img src=x onerror=alert(1)>',
    "[x](javascript:y)",
    "](evil)",
    "\r\n",
    "\x00",
    "\x1b[31m",
    "\x1b]8;;http://evil\x1b\\",
    "\u202e",
    "\u2066",
    "$(touch pwned)",
    "`id`",
    "; rm -rf ~",
    "{week.__class__}",
    "{{ 7*7 }}",
    "Bcc: evil@example.com",
    ",",
    ";",
    '"',
    "#",
    "\\",
    "%0d%0a",
    "https://ok.example/a b",
]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=12)), max_size=5).map(
    "".join
)
url_text = st.one_of(
    nasty_text,
    st.builds(
        lambda scheme, rest: f"{scheme}:{rest}",
        st.sampled_from(["http", "https", "javascript", "ftp", "file", "vbscript", " javascript"]),
        nasty_text,
    ),
)
good_email = st.sampled_from(["alex@example.com", "sam@example.com", "Sam@Example.com "])
email_text = st.one_of(
    good_email,
    good_email,
    good_email,
    st.builds(lambda a, b: f"{a}@{b}", nasty_text, nasty_text),
    nasty_text,
)


def mostly(valid: list[str]) -> st.SearchStrategy[str]:
    """A field the importer checks strictly: usually valid, sometimes hostile."""
    return st.one_of(
        st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(valid), nasty_text
    )


required = nasty_text.map(lambda text: "x" + text)  # hostile, but not blank

row = st.fixed_dictionaries(
    {
        "deal_id": st.one_of(st.from_regex(r"D-[0-9]{1,3}", fullmatch=True), required),
        "deal_name": required,
        "account": nasty_text,
        "owner_email": email_text,
        "owner_name": nasty_text,
        "manager_email": st.one_of(st.sampled_from(["", "dana@example.com"]), email_text),
        "stage": st.one_of(st.sampled_from(["Proposal", "Negotiation", "Closed Won"]), required),
        "amount": mostly(["48000", "1.234", "1e400", "12,5", "", "250000.50"]),
        "currency": st.one_of(st.sampled_from(["USD", "EUR", "JPY"]), nasty_text),
        "close_date": mostly(["2026-12-15", "2026-10-01", "0001-01-01", ""]),
        "next_step": nasty_text,
        "contacts": st.one_of(
            mostly(["", "Ana Ruiz <ana@acme.com> [Champion]"]),
            nasty_text.map(lambda t: t.replace("<", "").replace("[", "").replace("(", "")),
        ),
        "url": url_text,
    }
)

# Importable for sure (valid id, owner, stage, date, amount), hostile in every free-text field:
# every example reaches the sheets, the JSON and the outbox.
routable_row = st.fixed_dictionaries(
    {
        "deal_id": st.from_regex(r"R-[0-9]{1,3}", fullmatch=True),
        "deal_name": required,
        "account": nasty_text,
        "owner_email": good_email,
        "owner_name": nasty_text,
        "manager_email": st.just("dana@example.com"),
        "stage": st.sampled_from(["Proposal", "Negotiation"]),
        "amount": st.sampled_from(["48000", "250000.50"]),
        "currency": st.one_of(st.sampled_from(["USD", "EUR", "JPY"]), nasty_text),
        "close_date": st.sampled_from(["2026-12-15", "2026-10-01"]),
        "next_step": nasty_text,
        "contacts": nasty_text.map(lambda t: t.replace("<", "").replace("[", "").replace("(", "")),
        "url": url_text,
    }
)

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
HREF = re.compile(r"""href\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
CODE_SPAN = re.compile(r"`[^`\n]*`")  # literal text in Markdown: never a link
MD_LINK = re.compile(r"(?<!\\)\]\(([^)]*)\)")  # an unescaped ](…): a real link


def assert_safe_links(html: str) -> None:
    for target in HREF.findall(html):
        scheme = SCHEME.match(target.strip())  # what a browser would take as the scheme
        assert scheme is None or scheme.group(1).lower() in ("http", "https"), target


@pytest.mark.slow
@settings(
    max_examples=80,
    report_multiple_bugs=False,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.tuples(routable_row, st.lists(row, max_size=3)).map(lambda t: [t[0], *t[1]]))
def test_random_crm_text_never_breaks_an_output(tmp_path, rows, monkeypatch):
    monkeypatch.setattr("leadprep.send.pdf_available", lambda: False)  # PDFs print this same HTML
    work = tmp_path / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    with (work / "deals.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (work / "leadprep.yaml").write_text(
        "crm: {kind: file, file: {path: deals.csv}}\n"
        f"state: {{path: {work / 'state.db'}}}\n"
        "output: {formats: [html, md, json]}\n"
        "email:\n  smtp: {host: 127.0.0.1, port: 9, security: none}\n"
        '  from: "Prep <prep@example.com>"\n  to_reps: true\n',
        encoding="utf-8",
    )
    out = work / "out"
    result = cli(
        "send", "--dry-run", "-c", work / "leadprep.yaml", "-o", out, "--as-of", TODAY.isoformat()
    )
    everything = result.stdout + result.stderr
    assert result.exit_code in (0, 1, 2), everything
    assert "Traceback" not in everything and "internal error" not in everything
    assert "\x1b" not in everything
    event(f"exit {result.exit_code}")
    if result.exit_code == 2:
        assert (
            "no usable deal rows" in result.stderr
            or "has a header row but no deal rows" in result.stderr
        )
        return
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "index.html" for p in files)
    for path in files:
        if path.suffix == ".eml":
            check_email(path)
            continue
        if path.suffix not in (".html", ".md", ".json"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not CONTROL.search(text), (path.name, CONTROL.search(text))
        if path.suffix == ".html":
            assert_safe_links(text)
            assert "<script" not in text.lower()
        if path.suffix == ".md":
            for target in MD_LINK.findall(CODE_SPAN.sub("", text)):
                assert target.startswith(("http://", "https://")), target
        if path.suffix == ".json":
            for packet in json.loads(text)["packets"]:
                for deal in packet["deals"]:
                    assert deal["url"] is None or deal["url"].startswith(("http://", "https://"))


def check_email(path: Path) -> None:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert len(message["To"].addresses) == 1
    assert message["Bcc"] is None and message["Cc"] is None
    for part in message.walk():
        if part.get_content_type() == "text/html":
            html = part.get_content()
            assert_safe_links(html)
            assert "<script" not in html.lower()
