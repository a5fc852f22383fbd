"""Slack and Microsoft Teams delivery against loopback fake webhooks (real HTTP, httpx): the
payloads, escaping, exactly-once across reruns, 429 then success, a service down then back,
and the webhook URL never written anywhere."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.fakes.webhooks import FakeWebhooks
from tests.helpers import TODAY, cli, csv_row, outbox_names, write_config, write_csv

SLACK_PATH = "/slack/T0001/B0001/s3cretPathSlack42"
TEAMS_PATH = "/teams/workflows/a1b2/triggers/manual/paths/invoke?sig=s3cretSigTeams42"
HOSTILE = "Acme <!channel> & @here <b>deal</b> [x](javascript:alert(1))"


def chat_config(tmp_path: Path, *, email: bool = False, base_url: bool = True) -> Path:
    write_csv(
        tmp_path / "deals.csv",
        [
            csv_row(
                deal_id="D-1", deal_name=HOSTILE, contacts="Ana Ruiz [Champion]", amount="90000"
            ),
            csv_row(deal_id="D-2", deal_name="Globex pilot"),
        ],
    )
    body = (
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        + ("output: {base_url: 'https://intranet.example.com/prep'}\n" if base_url else "")
        + "teams:\n  - manager: {name: Dana Kim, email: dana@example.com}\n"
        "    reps: [alex@example.com]\n"
        '    chat: {slack: "${SLACK_WEBHOOK_DANA}", teams: "${TEAMS_WEBHOOK_DANA}"}\n'
        "chat: {retry: {base_delay: 0.01, max_attempts: 3, timeout: 2}}\n"
    )
    if email:
        body += (
            "email:\n  smtp: {host: 127.0.0.1, port: 9, security: none}\n  from: prep@example.com\n"
        )
    return write_config(tmp_path / "leadprep.yaml", body)


@pytest.fixture
def hooks(monkeypatch):
    with FakeWebhooks() as fake:
        monkeypatch.setenv("SLACK_WEBHOOK_DANA", fake.url(SLACK_PATH))
        monkeypatch.setenv("TEAMS_WEBHOOK_DANA", fake.url(TEAMS_PATH))
        yield fake


def send(config: Path, *extra: str):
    return cli("send", "-c", config, "--as-of", TODAY.isoformat(), *extra)


def by_service(fake: FakeWebhooks) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"slack": [], "teams": []}
    for path, body in fake.posts:
        out["slack" if path.startswith("/slack/") else "teams"].append(body)
    return out


def test_chat_alone_posts_block_kit_and_an_adaptive_card_with_crm_text_escaped(tmp_path, hooks):
    result = send(chat_config(tmp_path))
    assert result.exit_code == 0, result.output
    posts = by_service(hooks)
    [slack] = posts["slack"]
    assert slack["text"].startswith("Pipeline review prep")  # the plain-text fallback
    assert slack["blocks"][0]["type"] == "header"
    assert "<https://intranet.example.com/prep/index.html|Open the prep sheets>" in json.dumps(
        slack
    )
    section = next(b["text"]["text"] for b in slack["blocks"] if b["type"] == "section")
    assert "&lt;!channel&gt; &amp; @\u2060here &lt;b&gt;deal&lt;/b&gt;" in section
    assert "<!channel>" not in json.dumps(slack)
    [card] = posts["teams"]
    content = card["attachments"][0]["content"]
    assert content["type"] == "AdaptiveCard" and content["version"] == "1.4"
    text = " ".join(block["text"] for block in content["body"])
    assert "\\[x\\](javascript" in text and "[x](" not in text  # no Markdown link can form
    assert "@\u2060here" in text
    assert content["actions"][0]["url"] == "https://intranet.example.com/prep/index.html"


def test_without_a_base_url_there_is_no_link_and_never_a_local_path(tmp_path, hooks):
    assert send(chat_config(tmp_path, base_url=False)).exit_code == 0
    text = json.dumps(hooks.posts)
    assert "index.html" not in text and ".html" not in text and "Open the prep sheets" not in text
    assert str(tmp_path) not in text and "file:" not in text


def test_once_per_week_and_manager_a_rerun_sends_nothing_and_force_resends(tmp_path, hooks):
    config = chat_config(tmp_path)
    assert send(config).exit_code == 0
    again = send(config)
    assert again.exit_code == 0 and "already sent this week" in again.stdout
    assert len(hooks.posts) == 2  # one Slack message, one Teams card
    assert send(config, "--force").exit_code == 0
    assert len(hooks.posts) == 4


def test_a_429_is_waited_out_and_the_message_goes_once(tmp_path, hooks):
    hooks.fail = [(429, {"Retry-After": "0.05"})]
    result = send(chat_config(tmp_path))
    assert result.exit_code == 0, result.output
    assert len(hooks.posts) == 2 and sum(hooks.counts.values()) == 3


def test_a_service_down_keeps_the_message_queued_and_the_next_run_sends_it_once(
    tmp_path, hooks, monkeypatch
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}{SLACK_PATH}"
    monkeypatch.setenv("SLACK_WEBHOOK_DANA", dead)  # nothing listens there
    config = chat_config(tmp_path)
    down = send(config)
    assert down.exit_code == 1 and "cannot reach Slack" in down.stdout
    hooks.fail = [(503, {})] * 3  # Teams answers 503 every time
    # (the Teams card went out in the first run; this checks a 5xx keeps a message queued too)
    monkeypatch.setenv("SLACK_WEBHOOK_DANA", hooks.url(SLACK_PATH))
    back = send(config)
    assert back.exit_code == 1 and "Slack answered 503" in back.stdout
    again = send(config)
    assert again.exit_code == 0, again.output
    assert [p for p, _ in hooks.posts].count(SLACK_PATH) == 1  # delivered once
    assert send(config).exit_code == 0 and [p for p, _ in hooks.posts].count(SLACK_PATH) == 1


def test_the_webhook_url_is_written_nowhere(tmp_path, hooks):
    config = chat_config(tmp_path, email=True)
    results = [
        send(config, "--dry-run", "-v"),
        send(config, "-v"),
        cli("doctor", "-c", config, "-v"),
    ]
    secrets = ("s3cretPathSlack42", "s3cretSigTeams42")
    for result in results:
        for secret in secrets:
            assert secret not in result.output + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, path
    assert {
        n for n in outbox_names(tmp_path / "prep-sheets" / "outbox") if n.endswith(".json")
    } == {
        "slack-dana@example.com.json",
        "teams-dana@example.com.json",
    }


def test_a_webhook_written_in_the_file_is_refused(tmp_path):
    config = chat_config(tmp_path)
    text = config.read_text().replace(
        '"${SLACK_WEBHOOK_DANA}"', '"https://hooks.slack.com/services/T/B/X"'
    )
    config.write_text(text)
    result = cli("doctor", "-c", config)
    assert result.exit_code == 2 and "never goes in the file" in result.output + result.stderr


def test_doctor_checks_the_webhooks_shape_and_online_that_slack_knows_it(tmp_path, monkeypatch):
    with FakeWebhooks(valid_paths={SLACK_PATH}) as fake:
        monkeypatch.setenv("SLACK_WEBHOOK_DANA", fake.url(SLACK_PATH))
        monkeypatch.setenv("TEAMS_WEBHOOK_DANA", fake.url(TEAMS_PATH))
        config = chat_config(tmp_path)
        offline = cli("doctor", "-c", config)
        assert "ok   chat: Dana Kim: slack" in offline.stdout
        online = cli("doctor", "-c", config, "--online")
        assert "Slack knows this webhook" in online.stdout
        assert "Teams" in online.stdout and "not checked" in online.stdout
        assert fake.posts == []  # nothing was posted
        monkeypatch.setenv("SLACK_WEBHOOK_DANA", fake.url("/slack/T0001/B0001/revoked"))
        revoked = cli("doctor", "-c", config, "--online")
        assert "FAIL chat" in revoked.stdout and "no_service" in revoked.stdout


def test_an_unset_webhook_variable_is_named_when_sending(tmp_path, monkeypatch):
    monkeypatch.delenv("SLACK_WEBHOOK_DANA", raising=False)
    monkeypatch.delenv("TEAMS_WEBHOOK_DANA", raising=False)
    result = send(chat_config(tmp_path))
    assert result.exit_code == 2
    assert (
        "teams[0].chat.slack: environment variable SLACK_WEBHOOK_DANA is not set" in result.stderr
    )
