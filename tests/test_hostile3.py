"""The third hostile review's findings, each as a regression test (issue 23), plus the cases we
added beyond them. The two cross-team leaks are tested end to end: `send` to a real SMTP server
and to webhook fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.webhooks import FakeWebhooks
from tests.helpers import TODAY, cli, csv_row, write_config, write_csv

# Recipients that a file-name mangling which is not one-to-one folds together.
COLLIDING = [
    ("lee+west@example.com", "lee_west@example.com"),  # + and _ both became _
    ("lee.west@example.com", "lee-west@example.com"),
    ("a" * 60 + "x@example.com", "a" * 60 + "y@example.com"),  # differ past the readable cut
    ("b" * 64 + "@" + "c" * 170 + ".example.com", "b" * 64 + "@" + "c" * 170 + ".example.org"),
]


def two_teams(tmp_path: Path, east: str, west: str, *, to_reps: bool, port: int) -> Path:
    """East and West, one rep each, each team with its own Slack and Teams webhooks."""
    write_csv(
        tmp_path / "deals.csv",
        [
            csv_row(deal_id="E-1", deal_name="EastOnlyDeal", owner_email="eve@example.com",
                    owner_name="Eve East", manager_email=""),
            csv_row(deal_id="W-1", deal_name="WestOnlyDeal", owner_email="wes@example.com",
                    owner_name="Wes West", manager_email=""),
        ],
    )  # fmt: skip
    return write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        "teams:\n"
        f"  - manager: {{name: East Boss, email: '{east}'}}\n"
        "    reps: [eve@example.com]\n"
        '    chat: {slack: "${SLACK_EAST}", teams: "${TEAMS_EAST}"}\n'
        f"  - manager: {{name: West Boss, email: '{west}'}}\n"
        "    reps: [wes@example.com]\n"
        '    chat: {slack: "${SLACK_WEST}", teams: "${TEAMS_WEST}"}\n'
        "chat: {retry: {base_delay: 0.01, max_attempts: 2, timeout: 2}}\n"
        f"email:\n  smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 5}}\n"
        "  from: prep@example.com\n"
        f"  to_reps: {'true' if to_reps else 'false'}\n",
    )


@pytest.mark.parametrize(("east", "west"), COLLIDING)
def test_no_team_reads_another_teams_mail_or_chat(tmp_path, smtp, monkeypatch, east, west):
    with FakeWebhooks() as hooks:
        for team in ("EAST", "WEST"):
            monkeypatch.setenv(f"SLACK_{team}", hooks.url(f"/slack/T/{team}/x"))
            monkeypatch.setenv(f"TEAMS_{team}", hooks.url(f"/teams/{team}?sig=x"))
        config = two_teams(tmp_path, east, west, to_reps=True, port=smtp.port)
        result = cli("send", "-c", config, "--as-of", TODAY.isoformat())
        assert result.exit_code == 0, result.output
        posts = list(hooks.posts)
    bodies = {}
    for rcpts, message in smtp.inbox.messages:
        (rcpt,) = rcpts
        text = "".join(
            part.get_payload(decode=True).decode("utf-8", "replace")
            for part in message.walk()
            if part.get_content_type() in ("text/plain", "text/html")
        )
        bodies.setdefault(rcpt, []).append(text)
    assert sorted(bodies) == sorted([east, west, "eve@example.com", "wes@example.com"])
    for rcpt, own, other in (
        (east, "Eve East", "Wes West"),
        (west, "Wes West", "Eve East"),
        ("eve@example.com", "with East Boss", "West"),  # a rep's pre-read names their manager
        ("wes@example.com", "with West Boss", "East"),
    ):
        (text,) = bodies[rcpt]
        assert own in text and other not in text, rcpt
    assert len(posts) == 4
    for path, body in posts:
        team = "EAST" if "EAST" in path else "WEST"
        text = json.dumps(body)
        assert ("Eve East" in text) == (team == "EAST") and ("Wes West" in text) == (
            team == "WEST"
        ), path
    outbox = [p for p in (tmp_path / "prep-sheets" / "outbox").rglob("*") if p.is_file()]
    assert len(outbox) == 8 and all(len(p.name.encode()) < 120 for p in outbox)


def test_an_address_send_cannot_use_is_a_config_error_not_a_crash_at_send(tmp_path, smtp):
    config = two_teams(tmp_path, "jos\u00e9@example.com", "west@example.com", to_reps=False,
                       port=smtp.port)  # fmt: skip
    result = cli("send", "-c", config, "--as-of", TODAY.isoformat())
    assert result.exit_code == 2, result.output
    assert "outside ASCII" in result.stderr and "internal error" not in result.stderr
    assert smtp.inbox.messages == []


def same_name_teams(tmp_path: Path, port: int, ann: str = "Sam Lee", bob: str = "Sam Lee") -> Path:
    """An export that names owners only; two teams each with a rep of (nearly) the same name."""
    (tmp_path / "deals.csv").write_text(
        "deal_id,deal_name,owner_name,stage\n"
        "A-1,SamsDeal,Sam Lee,Proposal\n"
        "C-1,CarlsDeal,Carl Diaz,Proposal\n",
        encoding="utf-8",
    )
    return write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        "teams:\n"
        "  - manager: {name: Ann Boss, email: ann@example.com}\n"
        f'    reps: ["{ann} <sam.a@example.com>", "Carl Diaz <carl@example.com>"]\n'
        "  - manager: {name: Bob Boss, email: bob@example.com}\n"
        f'    reps: ["{bob} <sam.b@example.com>"]\n'
        f"email:\n  smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 5}}\n"
        "  from: prep@example.com\n",
    )


@pytest.mark.parametrize(("ann", "bob"), [("Sam Lee", "Sam Lee"), ("José García", "Jose  garcia")])
def test_an_owner_name_two_reps_share_is_never_guessed(tmp_path, smtp, ann, bob):
    config = same_name_teams(tmp_path, smtp.port, ann, bob)
    (tmp_path / "deals.csv").write_text(
        f"deal_id,deal_name,owner_name,stage\nA-1,SamsDeal,{ann},Proposal\n"
        "C-1,CarlsDeal,Carl Diaz,Proposal\n",
        encoding="utf-8",
    )
    result = cli("send", "-c", config, "--as-of", TODAY.isoformat())
    assert result.exit_code == 1, result.output  # partial: the row is reported, not routed
    assert "line 2 (deal A-1)" in result.stderr and "is the name of 2 reps" in result.stderr
    assert "sam.a@example.com, sam.b@example.com" in result.stderr
    assert len(smtp.inbox.to("ann@example.com")) == len(smtp.inbox.to("bob@example.com")) == 1
    written = {p.name: p.read_text() for p in (tmp_path / "prep-sheets").glob("*.html")}
    assert "CarlsDeal" in written["carl-diaz.html"]  # Carl's deal still goes out
    assert not any("SamsDeal" in page for page in written.values())  # Sam's goes to no sheet
    doctor = cli("doctor", "-c", config)
    assert doctor.exit_code == 2
    assert "FAIL teams: reps share a name (sam.a@example.com and sam.b@example.com): 1 row" in (
        doctor.stdout
    )


def test_a_rep_under_two_managers_is_a_config_error(tmp_path):
    config = write_config(
        tmp_path / "leadprep.yaml",
        "teams:\n"
        "  - manager: {name: Ann Boss, email: ann@example.com}\n"
        "    reps: [sam@example.com]\n"
        "  - manager: {name: Bob Boss, email: bob@example.com}\n"
        "    reps: [Sam@Example.com]\n",
    )
    for command in (("prep", "-c", config), ("doctor", "-c", config)):
        result = cli(*command)
        assert result.exit_code == 2
        assert "sam@example.com under ann@example.com and bob@example.com" in (
            result.stdout + result.stderr
        )


# --- import ------------------------------------------------------------------------------------


def import_file(tmp_path: Path, text: str | bytes, extra: str = "", name: str = "deals.csv"):
    """prep over an import file written as given; (result, packets by deal id)."""
    target = tmp_path / name
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")
    config = write_config(
        tmp_path / "leadprep.yaml", f"crm: {{kind: file, file: {{path: {name}{extra}}}}}\n"
    )
    result = cli("prep", "-c", config, "-f", "json", "--as-of", TODAY.isoformat())
    deals = {}
    packets = tmp_path / "prep-sheets" / "packets.json"
    if packets.exists():
        for packet in json.loads(packets.read_text())["packets"]:
            for deal in packet["deals"]:
                deals[deal["id"]] = deal
    return result, deals


HEAD = "deal_id,deal_name,owner_email,stage,amount\n"


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("¥5,000,000", "JPY"),
        ("€12,500", "EUR"),
        ("£1,000", "GBP"),
        ("12.500,00 €", "EUR"),
        ("EUR 12,500.00", "EUR"),
        ("$900", "USD"),
        ("CAD $900", "CAD"),
        ("900", "USD"),
    ],
)
def test_a_currency_symbol_sets_the_currency(tmp_path, amount, currency):
    result, deals = import_file(tmp_path, f'{HEAD}D-1,Acme,a@example.com,Proposal,"{amount}"\n')
    assert result.exit_code == 0, result.output
    assert deals["D-1"]["currency"] == currency


def test_a_bare_amount_is_in_the_files_currency_and_dollar_means_its_dollar(tmp_path):
    text = f'{HEAD}D-1,Acme,a@example.com,Proposal,900\nD-2,Bo,a@example.com,Proposal,"$5"\n'
    result, deals = import_file(tmp_path, text, ", currency: cad")
    assert result.exit_code == 0, result.output
    assert deals["D-1"]["currency"] == deals["D-2"]["currency"] == "CAD"


@pytest.mark.parametrize("amount", ["kr 100", "¤5", "$5 EUR", "5 bitcoins"])
def test_an_amount_whose_currency_cannot_be_told_is_a_row_problem(tmp_path, amount):
    text = f'{HEAD}D-1,Acme,a@example.com,Proposal,"{amount}"\nD-2,Ok,a@example.com,Proposal,5\n'
    result, deals = import_file(tmp_path, text)
    assert result.exit_code == 1
    assert "line 2 (deal D-1)" in result.stderr and "crm.file.currency" in result.stderr
    assert set(deals) == {"D-2"}


def test_a_currency_column_that_disagrees_with_the_amounts_sign_is_a_row_problem(tmp_path):
    text = "deal_id,deal_name,owner_email,stage,amount,currency\n"
    text += 'D-1,Acme,a@example.com,Proposal,"€5",USD\nD-2,Ok,a@example.com,Proposal,5,USD\n'
    result, _deals = import_file(tmp_path, text)
    assert result.exit_code == 1 and "is in EUR but currency says USD" in result.stderr


def test_a_column_named_twice_that_leadprep_reads_is_refused(tmp_path):
    text = "deal_id,deal_name,owner_email,stage,owner_email\nD-1,Acme,a@example.com,Proposal,b@example.com\n"
    result, _ = import_file(tmp_path, text)
    assert result.exit_code == 2 and "'owner_email' more than once" in result.stderr


def test_a_column_named_twice_that_nothing_reads_is_only_a_note(tmp_path):
    text = "deal_id,deal_name,owner_email,stage,notes,notes\nD-1,Acme,a@example.com,Proposal,x,y\n"
    result, deals = import_file(tmp_path, text)
    assert result.exit_code == 0 and set(deals) == {"D-1"}


def test_a_row_cut_short_is_a_row_problem(tmp_path):
    text = f"{HEAD}D-1,Acme,a@example.com,Proposal,5\nD-2,Cut,a@example.com\n"
    result, deals = import_file(tmp_path, text)
    assert result.exit_code == 1
    assert "line 3 (deal D-2): 3 values for 5 columns: the row ends early" in result.stderr
    assert set(deals) == {"D-1"}


SF_HEAD = (
    '"Opportunity Owner","Opportunity ID","Opportunity Name","Stage","Amount","Close Date",'
    '"Contact: Full Name","Contact Role"\n'
)


def test_contact_role_rows_that_disagree_on_the_deal_are_a_row_problem(tmp_path):
    text = SF_HEAD + (
        '"Alex Morgan","006A","Northwind","Proposal","USD 5,000.00","12/15/2026","Ann Lee","Champion"\n'
        '"Sam Rivera","006A","Northwind","Proposal","USD 9,000.00","12/15/2026","Bo Chen",""\n'
        '"Alex Morgan","006A","Northwind","Proposal","USD 5,000.00","12/15/2026","Cy Diaz",""\n'
    )
    result, deals = import_file(tmp_path, text)
    assert result.exit_code == 1, result.output
    assert "line 3 (deal 006A): repeats deal 006A of line 2 with another owner_name, amount" in (
        result.stderr
    )
    deal = deals["006A"]
    assert deal["amount"] == "5000.00"  # the first row's values
    assert {c["name"] for c in deal["facts"]["contacts"]} == {"Ann Lee", "Cy Diaz"}


def test_a_report_footer_is_only_recognised_after_the_last_deal(tmp_path):
    text = SF_HEAD + (
        '"Alex Morgan","006A","Northwind","Proposal","USD 5,000.00","12/15/2026","",""\n'
        '"","","Total Rewards rollout","Proposal","USD 7,000.00","12/15/2026","",""\n'
        '"Alex Morgan","006C","Contoso","Proposal","USD 1,000.00","12/15/2026","",""\n'
        '""\n"Grand Totals (3 records)","","","","USD 13,000.00"\n""\n'
        '"Confidential Information - Do Not Distribute"\n'
    )
    result, deals = import_file(tmp_path, text)
    assert result.exit_code == 1, result.output
    assert "line 3: deal_id is empty" in result.stderr  # reported, not taken for the footer
    assert set(deals) == {"006A", "006C"}
    assert "line 6" not in result.stderr and "line 8" not in result.stderr  # the real footer


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_utf16_export_with_its_mark_is_read(tmp_path, encoding):
    text = "deal_id\tdeal_name\towner_email\tstage\nD-1\tAcmé\ta@example.com\tProposal\n"
    data = text.encode(encoding) if encoding == "utf-16" else b"\xfe\xff" + text.encode(encoding)
    result, deals = import_file(tmp_path, data)
    assert result.exit_code == 0, result.output
    assert deals["D-1"]["name"] == "Acmé"


def test_a_utf16_export_without_its_mark_gets_the_right_hint(tmp_path):
    data = (HEAD + "D-1,Acme,a@example.com,Proposal,5\n").encode("utf-16-le")
    result, _ = import_file(tmp_path, data)
    assert result.exit_code == 2 and "UTF-16" in result.stderr
    assert "iconv -f utf-16le -t utf-8" in result.stderr and "windows-1252" not in result.stderr


# --- spreadsheets, chat, secrets ---------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]


def test_history_csv_cells_never_start_a_formula(tmp_path):
    rows = [
        csv_row(deal_id=f"D-{i}", owner_email=f"r{i}@example.com", owner_name=name,
                manager_email="")
        for i, name in enumerate(FORMULAS)
    ]  # fmt: skip
    write_csv(tmp_path / "deals.csv", rows)
    config = write_config(
        tmp_path / "leadprep.yaml", "crm: {kind: file, file: {path: deals.csv}}\n"
    )
    assert cli("prep", "-c", config, "--as-of", TODAY.isoformat()).exit_code == 0
    result = cli("history", "-c", config, "--as-of", TODAY.isoformat(), "--format", "csv")
    assert result.exit_code == 0
    import csv as csv_module
    import io

    names = [row["name"] for row in csv_module.DictReader(io.StringIO(result.stdout))]
    assert sorted(names) == sorted("'" + n for n in FORMULAS)
    assert not any(n.startswith(("=", "+", "-", "@")) for n in names)


def chat_team(tmp_path: Path, reps: int, owner_name: str = "Eve", base_url: str = "") -> Path:
    rows = []
    for r in range(reps):
        for d in range(3):
            rows.append(csv_row(
                deal_id=f"D-{r}-{d}", deal_name=f"Account {r} – expansion {d} " + "x" * 60,
                owner_email=f"rep{r}@example.com", owner_name=f"{owner_name} {r}" if reps > 1
                else owner_name, manager_email="", contacts="", next_step="",
            ))  # fmt: skip
    write_csv(tmp_path / "deals.csv", rows)
    reps_yaml = ", ".join(f"rep{r}@example.com" for r in range(reps))
    return write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        + (f"output: {{base_url: '{base_url}'}}\n" if base_url else "")
        + "teams:\n  - manager: {name: Dana Kim, email: dana@example.com}\n"
        f"    reps: [{reps_yaml}]\n"
        '    chat: {slack: "${SLACK_HOOK}", teams: "${TEAMS_HOOK}"}\n'
        "chat: {retry: {base_delay: 0.01, max_attempts: 2, timeout: 2}}\n",
    )


@pytest.fixture
def hooks(monkeypatch):
    with FakeWebhooks() as fake:
        monkeypatch.setenv("SLACK_HOOK", fake.url("/slack/T1/B1/s3cretSlackPath0123456789"))
        monkeypatch.setenv("TEAMS_HOOK", fake.url("/teams/wf?sig=s3cretTeamsSig0123456789"))
        yield fake


def test_slack_fallback_text_is_escaped_and_crm_sections_are_verbatim(tmp_path, hooks):
    config = chat_team(tmp_path, 1, owner_name="<!here> Eve <https://evil.example|Open the sheet>")
    assert cli("send", "-c", config, "--as-of", TODAY.isoformat()).exit_code == 0
    (slack,) = [body for path, body in hooks.posts if path.startswith("/slack/")]
    assert "<!here>" not in slack["text"] and "<https://evil" not in slack["text"]
    assert "&lt;!here&gt;" in slack["text"]
    sections = [b for b in slack["blocks"] if b["type"] == "section"]
    assert sections and all(b["text"].get("verbatim") is True for b in sections)


def test_a_forty_rep_teams_card_stays_under_28_kb(tmp_path, hooks):
    config = chat_team(tmp_path, 40)
    result = cli("send", "-c", config, "--as-of", TODAY.isoformat())
    assert result.exit_code == 0, result.output
    (card,) = [body for path, body in hooks.posts if path.startswith("/teams/")]
    size = len(json.dumps(card, ensure_ascii=False, sort_keys=True).encode())
    assert size <= 28 * 1024, size
    texts = [b["text"] for b in card["attachments"][0]["content"]["body"]]
    assert any(
        t.startswith("…and ") and t.endswith("more reps: see the prep sheets.") for t in texts
    )


def test_a_webhook_error_quoting_its_own_url_is_neither_printed_nor_stored(tmp_path, hooks):
    config = chat_team(tmp_path, 1)
    hooks.valid_paths = set()  # every post is refused...

    def quoting(method, target, headers, raw):  # ...with a body that quotes the secret path
        hooks.counts["x"] += 1
        return 404, f"no such hook {target[-30:]}".encode(), {}, "text/plain"

    hooks.respond = quoting
    result = cli("send", "-c", config, "--as-of", TODAY.isoformat())
    assert result.exit_code == 1
    assert "s3cret" not in result.output + result.stderr
    import sqlite3

    errors = (
        sqlite3.connect(tmp_path / "state.db")
        .execute("SELECT last_error FROM deliveries")
        .fetchall()
    )
    assert errors and not any("s3cret" in (e or "") for (e,) in errors)


def test_a_piece_of_a_long_secret_is_masked_wherever_it_appears():
    from leadprep.redact import redact, register_secret

    register_secret("https://hooks.slack.com/services/T9/B9/zq8Xc7Vb6Nm5Lk4Jh3")
    said = redact("Slack: no_service for /services/T9/B9/zq8Xc7Vb6 (hooks.slack.com)")
    assert "zq8Xc7Vb6" not in said and "hooks.slack.com" in said  # the host is public


@pytest.mark.parametrize(
    "base_url",
    [
        "https://",
        "https:///sheets",
        "https://user:pw@intranet.example.com/prep",
        "https://intranet.example.com/prep|x",
        "https://intranet.example.com/a>b",
        "https://intranet.example.com/a b",
    ],
)
def test_a_base_url_chat_links_cannot_carry_is_refused(tmp_path, base_url):
    config = write_config(tmp_path / "leadprep.yaml", f"output: {{base_url: '{base_url}'}}\n")
    result = cli("doctor", "-c", config)
    assert result.exit_code == 2 and "base_url" in result.stdout


# --- the review server -------------------------------------------------------------------------

from tests.test_review import csrf_of, make_app, reviewed, running, stored  # noqa: E402

__all__ = ["reviewed"]  # the fixture, shared with test_review


def form_of(client) -> dict[str, str]:
    page = client.get("/rep/alex-morgan")
    return {"csrf": csrf_of(page.text), "text": "Book the CFO call by Friday", "deal_id": "D-1"}


@pytest.mark.parametrize(
    "path",
    [
        "/rep/alex-morgan?saved=\u00b2",
        "/rep/alex-morgan?saved=" + "9" * 5000,
        "/rep/alex-morgan?saved=-1",
    ],
)
def test_odd_numbers_in_the_query_are_not_a_server_error(reviewed, path):
    app, _ = make_app(reviewed)
    with running(app) as client:
        assert client.get(path).status_code == 200


def test_an_odd_commitment_id_in_the_path_is_a_404_not_a_500(reviewed):
    app, _ = make_app(reviewed)
    with running(app) as client:
        form = form_of(client)
        for cid in ("9" * 5000, "\u00b2", "1e3"):
            answer = client.post(f"/rep/alex-morgan/followup/{cid}", data=form)
            assert answer.status_code == 404, cid


def test_a_cross_site_upload_is_refused_before_its_body_is_read(reviewed, tmp_path):
    app, _ = make_app(reviewed)
    read = []

    async def body():
        read.append(True)
        yield b"x" * 1024

    with running(app) as client:
        refused = client.post(
            "/rep/alex-morgan/commit",
            content=body(),
            headers={
                "Origin": "https://evil.example",
                "Content-Type": "multipart/form-data; boundary=x",
            },
        )
        assert refused.status_code == 403 and read == []
        same_site = client.post(
            "/rep/alex-morgan/commit",
            content=b"--x\r\n",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert same_site.status_code == 415  # no form of ours is multipart
        huge = client.post(
            "/rep/alex-morgan/commit",
            content=b"text=" + b"a" * 100_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert huge.status_code == 413
    assert stored(tmp_path) == []


def test_a_save_while_the_state_is_locked_keeps_the_typed_text(reviewed, tmp_path):
    import sqlite3
    import time

    app, _ = make_app(reviewed)
    with running(app) as client:
        form = form_of(client)
        holder = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the file
        try:
            started = time.monotonic()
            answer = client.post("/rep/alex-morgan/commit", data=form)
            waited = time.monotonic() - started
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert answer.status_code == 503
        assert "another leadprep run is writing" in answer.text
        assert "Book the CFO call by Friday" in answer.text  # what was typed is still there
        assert waited < 8  # a short wait, not the CLI's 10 s with every page stalled
        saved = client.post("/rep/alex-morgan/commit", data=form)
        assert saved.status_code == 303  # once the lock is gone, the same form saves
    assert [c.text for c in stored(tmp_path)] == ["Book the CFO call by Friday"]


def test_a_read_only_state_file_is_said_on_every_page(reviewed, tmp_path, monkeypatch):
    import leadprep.review as review_module

    # (the tests run as root, which may write any file: the permission check is what is faked)
    monkeypatch.setattr(review_module.os, "access", lambda path, mode: False)
    app, _ = make_app(reviewed)
    with running(app) as client:
        for page in ("/", "/rep/alex-morgan"):
            assert "is read-only for this server" in client.get(page).text
        answer = client.post("/rep/alex-morgan/commit", data=form_of(client))
        assert answer.status_code == 503 and "Book the CFO call by Friday" in answer.text
    assert stored(tmp_path) == []


def test_a_read_only_state_notice_refuses_saves_and_keeps_the_text(reviewed, tmp_path):
    app, review = make_app(reviewed)
    with running(app) as client:
        review.notice = "The state file x is read-only for this server: nothing can be saved."
        assert "read-only for this server" in client.get("/").text
        answer = client.post("/rep/alex-morgan/commit", data=form_of(client))
        assert answer.status_code == 503 and "Book the CFO call by Friday" in answer.text
    assert stored(tmp_path) == []


def test_a_short_access_token_is_refused(reviewed):
    for token in ("a", "x" * 15):
        result = cli(
            "review", "-c", reviewed, "--host", "0.0.0.0", "--token", token, "--no-browser"
        )
        assert result.exit_code == 2 and "at least 16" in result.stderr
        assert "secrets.token_urlsafe" in result.stderr


def test_wrong_tokens_wait_longer_each_time(reviewed, monkeypatch):
    import leadprep.signin as signin_module

    waits = []

    async def no_sleep(seconds):
        waits.append(seconds)

    monkeypatch.setattr(signin_module.asyncio, "sleep", no_sleep)
    app, _ = make_app(reviewed, token="s3cret-review-token-1234")
    with running(app) as client:
        for _ in range(4):
            assert client.get("/?token=guess").status_code == 403
    assert waits == sorted(waits) and waits[-1] > waits[0]


def test_the_browser_gets_a_one_time_code_never_the_token(reviewed):
    app, review = make_app(reviewed, token="s3cret-review-token-1234")
    code = review.launch_code
    assert code and "s3cret" not in code
    with running(app) as client:
        first = client.get(f"/?code={code}")
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert client.get("/").status_code == 200  # by the cookie
        client.client.cookies.clear()
        assert client.get(f"/?code={code}").status_code == 403  # used once


@pytest.mark.parametrize("port", ["0", "99999", "-1"])
def test_a_port_out_of_range_is_a_usage_error(reviewed, port):
    result = cli(
        "review", "-c", reviewed, "--port", port, "--no-browser", "--as-of", TODAY.isoformat()
    )
    assert result.exit_code == 2 and "internal error" not in result.stderr
    assert "Usage: leadprep review" in result.stderr  # Click's own range check, before anything


def test_a_port_in_use_is_a_usage_error_and_no_browser_opens(reviewed, monkeypatch):
    import socket
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = cli("review", "-c", reviewed, "--port", port, "--as-of", TODAY.isoformat())
    assert result.exit_code == 2 and f"port {port}" in result.stderr
    assert "Choose another --port" in result.stderr and opened == []


def test_any_loopback_host_serves_its_own_url(reviewed):
    import httpx

    _, review = make_app(reviewed)
    review.host = "127.0.0.2"
    from leadprep.review import create_app

    app = create_app(review)
    with running(app) as client:
        client.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.2:8765"
        )
        assert client.get("/").status_code == 200


# --- the rest of the findings ------------------------------------------------------------------


def two_managers(tmp_path: Path) -> Path:
    write_csv(
        tmp_path / "deals.csv",
        [
            csv_row(deal_id="A-1", owner_email="ann.rep@example.com", owner_name="Ann Rep",
                    manager_email=""),
            csv_row(deal_id="B-1", owner_email="bob.rep@example.com", owner_name="Bob Rep",
                    manager_email=""),
        ],
    )  # fmt: skip
    return write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        "teams:\n"
        "  - manager: {name: Ann Boss, email: ann@example.com}\n    reps: [ann.rep@example.com]\n"
        "  - manager: {name: Bob Boss, email: bob@example.com}\n    reps: [bob.rep@example.com]\n",
    )


def test_prep_for_one_manager_writes_nothing_of_another_team(tmp_path):
    config = two_managers(tmp_path)
    assert cli("prep", "-c", config, "--as-of", "2026-11-23", "-o", "w1").exit_code == 0
    result = cli(
        "prep", "-c", config, "--as-of", TODAY.isoformat(), "--manager", "ann@example.com",
        "-o", "ann", "-f", "html,md,json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for path in (tmp_path / "ann").iterdir():
        text = path.read_text()
        assert "Bob" not in text and "bob" not in text, path.name
    assert "Ann Boss" in (tmp_path / "ann" / "rollup.html").read_text()


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "prep-sheets"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    killed = out / f".leadprep-staging-{dead}-abc123"
    killed.mkdir()
    (killed / "alex-morgan.html").write_text("half written")
    ancient = out / ".leadprep-staging-oldstyle"  # a folder of an earlier release, a day old
    ancient.mkdir()
    os.utime(ancient, (0, 0))
    alive = out / f".leadprep-staging-{os.getpid()}-running"  # a run going on right now
    alive.mkdir()
    config = write_config(tmp_path / "leadprep.yaml", "")
    assert cli("prep", "--demo", "-c", config, "--as-of", TODAY.isoformat()).exit_code == 0
    left = sorted(p.name for p in out.iterdir() if p.name.startswith(".leadprep-staging-"))
    assert left == [alive.name]


def test_doctor_checks_the_default_chat_webhook_when_no_team_is_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_ANY", "https://attacker.example/hook/abc")
    config = write_config(tmp_path / "leadprep.yaml", 'chat: {slack: "${SLACK_ANY}"}\n')
    result = cli("doctor", "-c", config)
    assert result.exit_code == 2
    assert "FAIL chat: chat (the default): slack webhook is not hooks.slack.com" in result.stdout


INVISIBLE = ["\u200b", "\u2060\u2060", "\ufeff", "\u3164", "\u2800 \u200b"]


@pytest.mark.parametrize("text", INVISIBLE)
def test_a_commitment_of_invisible_characters_is_refused(reviewed, tmp_path, text):
    result = cli("commit", "-c", reviewed, "D-1", text, "--as-of", TODAY.isoformat())
    assert result.exit_code == 2 and "empty" in result.stderr
    app, _ = make_app(reviewed)
    with running(app) as client:
        form = {**form_of(client), "text": text}
        assert client.post("/rep/alex-morgan/commit", data=form).status_code == 400
    assert stored(tmp_path) == []


@pytest.mark.parametrize(
    "answer", [{"portalId": "not-a-number"}, {"results": "a string"}, ["a", "list"]]
)
def test_a_hubspot_answer_of_the_wrong_shape_is_a_crm_error_not_a_crash(
    tmp_path, monkeypatch, answer
):
    from tests.fakes.hubspot_server import TOKEN, FakeHubSpot, build_portal

    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    portal = build_portal([3], closed=0, seed=2)
    with FakeHubSpot(portal) as fake:
        wanted = "/account-info" if "portalId" in str(answer) else "/crm/v3/pipelines"

        def odd(number, path):
            return (200, {}, answer) if path.startswith(wanted) else None

        fake.fault = odd
        config = write_config(
            tmp_path / "hs.yaml",
            "crm:\n  kind: hubspot\n"
            f'  hubspot: {{access_token: "${{HUBSPOT_ACCESS_TOKEN}}", base_url: "{fake.url}",'
            " retry: {base_delay: 0.001, max_attempts: 1}}\nstate: {path: s.db}\n",
        )
        result = cli("prep", "-c", config, "--as-of", TODAY.isoformat())
    assert result.exit_code == 4, result.output
    assert "HubSpot answered in a shape leadprep does not know" in result.stderr
    assert "internal error" not in result.stderr


def test_a_full_disk_says_so_with_what_to_do():
    import sqlite3

    from leadprep.store.errors import database_error

    for said in ("disk I/O error", "database or disk is full"):
        error = database_error(sqlite3.OperationalError(said), Path("/data/state.db"))
        assert "disk is full or failing" in error.message
        assert "df -h /data" in (error.hint or "")


# --- cases of our own, beyond the review's ------------------------------------------------------


def test_one_manager_on_two_team_entries_is_a_config_error(tmp_path, smtp):
    """(Lee@ and lee@ are one manager: their two teams' posts went to the first team's channel.)"""
    config = two_teams(tmp_path, "Lee@Example.com", "lee@example.com", to_reps=False,
                       port=smtp.port)  # fmt: skip
    result = cli("send", "-c", config, "--as-of", TODAY.isoformat())
    assert result.exit_code == 2 and "manages more than one team entry" in result.stderr
    assert smtp.inbox.messages == []


def test_a_commitment_longer_than_the_form_takes_is_refused_not_cut(reviewed, tmp_path):
    app, _ = make_app(reviewed)
    with running(app) as client:
        form = {**form_of(client), "text": "Call the CFO " + "x" * 3000}
        answer = client.post("/rep/alex-morgan/commit", data=form)
        assert answer.status_code == 400 and "Keep it to 2,000 characters" in answer.text
    assert stored(tmp_path) == []


def test_a_chunked_post_past_the_bound_is_refused_while_it_streams(reviewed, tmp_path):
    app, _ = make_app(reviewed)
    sent = []

    async def body():
        for _ in range(1000):
            sent.append(1)
            yield b"text=" + b"a" * 1000

    with running(app) as client:
        answer = client.post(
            "/rep/alex-morgan/commit",
            content=body(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 413 and len(sent) < 100  # stopped reading, not spooled
    assert stored(tmp_path) == []


def test_a_header_repeated_under_two_spellings_is_refused(tmp_path):
    text = "deal_id,deal_name,Owner Email,stage,owner_email\nD-1,A,a@example.com,Proposal,b@example.com\n"
    result, _ = import_file(tmp_path, text)
    assert result.exit_code == 2 and "'Owner Email', 'owner_email' more than once" in result.stderr


@pytest.mark.parametrize("origin", ["null", "http://127.0.0.1:8766", "http://localhost:8765"])
def test_a_post_from_any_other_origin_is_refused(reviewed, tmp_path, origin):
    app, _ = make_app(reviewed)
    with running(app) as client:
        answer = client.post("/rep/alex-morgan/commit", data=form_of(client),
                             headers={"Origin": origin})  # fmt: skip
        assert answer.status_code == 403
    assert stored(tmp_path) == []
