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
