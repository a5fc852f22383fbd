"""Email of prep sheets against a real SMTP server on loopback (aiosmtpd)."""

from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakes.smtp_server import SMTPServer
from tests.helpers import (
    EVIL,
    TODAY,
    cli,
    csv_row,
    mail_config,
    outbox_names,
    write_config,
    write_csv,
)


def send(config, *args):
    return cli("send", "-c", config, "--as-of", TODAY.isoformat(), *args)


def test_manager_gets_html_text_and_attachments_with_crm_text_escaped(tmp_path, smtp):
    config = mail_config(tmp_path, smtp.port)
    result = send(config)
    assert result.exit_code == 0, result.output + result.stderr
    (message,) = smtp.inbox.to("dana@example.com")
    assert message["Subject"] == "Pipeline review prep · week of Nov 30, 2026"
    assert message["From"] == "Pipeline prep <prep@example.com>"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in html and "<b>Evil</b>" not in html
    assert EVIL in text and "Alex Morgan" in text
    assert 'style="' in html and "<style>" not in html  # CSS inlined for mail clients
    attachments = {
        part.get_filename(): part.get_content_type() for part in message.iter_attachments()
    }
    assert attachments == {
        "alex-morgan.pdf": "application/pdf",
        "sam-rivera.pdf": "application/pdf",
    }
    assert "1 sent, 0 failed" in result.stdout


def test_second_send_the_same_week_sends_nothing_and_force_resends(tmp_path, smtp):
    config = mail_config(tmp_path, smtp.port)
    assert send(config).exit_code == 0
    again = send(config)
    assert again.exit_code == 0 and "skipped dana@example.com" in again.stdout
    assert len(smtp.inbox.messages) == 1
    forced = send(config, "--force")
    assert forced.exit_code == 0 and len(smtp.inbox.messages) == 2
    next_week = cli("send", "-c", config, "--as-of", (TODAY + timedelta(days=7)).isoformat())
    assert next_week.exit_code == 0 and len(smtp.inbox.messages) == 3


def test_server_down_keeps_the_outbox_and_delivers_once_when_back(tmp_path, smtp):
    config = mail_config(tmp_path, smtp.port, to_reps=True)
    smtp.stop()
    down = send(config)
    assert down.exit_code == 1
    assert "connection refused" in down.stdout and "go out on the next" in down.stderr
    assert outbox_names(tmp_path / "prep-sheets" / "outbox" / "2026-W49") == {
        "manager-dana@example.com.eml",
        "rep-alex@example.com.eml",
        "rep-sam@example.com.eml",
    }
    smtp.start()
    back = send(config)
    assert back.exit_code == 0, back.stdout
    again = send(config)
    assert again.exit_code == 0
    for address in ("dana@example.com", "alex@example.com", "sam@example.com"):
        assert len(smtp.inbox.to(address)) == 1, address


def test_dry_run_writes_the_outbox_and_sends_nothing(tmp_path, smtp):
    config = mail_config(tmp_path, smtp.port)
    dry = send(config, "--dry-run")
    assert dry.exit_code == 0 and "Dry run: 1 message(s)" in dry.stdout
    assert smtp.inbox.messages == []
    (eml,) = (tmp_path / "prep-sheets" / "outbox" / "2026-W49").glob(
        "manager-dana@example.com-*.eml"
    )
    assert (
        message_from_bytes(eml.read_bytes(), policy=policy.default)["To"]
        == "Dana Kim <dana@example.com>"
    )
    assert send(config).exit_code == 0 and len(smtp.inbox.messages) == 1


def test_rejected_recipient_fails_alone(tmp_path, smtp):
    config = mail_config(tmp_path, smtp.port, to_reps=True)
    smtp.inbox.reject.add("sam@example.com")
    result = send(config)
    assert result.exit_code == 1
    assert "FAILED  sam@example.com (rep) recipient refused" in result.stdout
    assert (
        len(smtp.inbox.to("dana@example.com")) == 1 and len(smtp.inbox.to("alex@example.com")) == 1
    )
    smtp.inbox.reject.clear()
    assert send(config).exit_code == 0
    assert [
        len(smtp.inbox.to(a)) for a in ("dana@example.com", "alex@example.com", "sam@example.com")
    ] == [1, 1, 1]


def test_rep_pre_read_has_no_manager_notes(tmp_path, smtp):
    config = mail_config(tmp_path, smtp.port, to_reps=True)
    assert send(config).exit_code == 0
    (message,) = smtp.inbox.to("alex@example.com")
    text = message.get_body(("plain",)).get_content()
    assert message["Subject"] == "Your pipeline review pre-read · week of Nov 30, 2026"
    assert (
        "Alex, ahead of your 1:1 with Dana Kim" in text
        and "The CRM shows: 1 contact: Ana Ruiz (Champion)" in text
    )
    for manager_only in ("Listen for", "risk", "Ask:", "Explore"):
        assert manager_only not in text
    assert list(message.iter_attachments()) == []


def test_smtp_auth_from_the_environment(tmp_path, monkeypatch):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret-smtp-pw"
        return AuthResult(success=ok, handled=False)

    server = SMTPServer(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    server.start()
    try:
        config = mail_config(
            tmp_path, server.port, auth=', username: prep, password: "${LP_SMTP_PASSWORD}"'
        )
        missing = send(config)
        assert (
            missing.exit_code == 2
            and "email.smtp.password: environment variable LP_SMTP_PASSWORD is not set"
            in missing.stderr
        )
        dry = send(config, "--dry-run")  # sends nothing, so it needs no secret
        assert dry.exit_code == 0 and "none sent" in dry.stdout, dry.output
        assert server.inbox.messages == []
        monkeypatch.setenv("LP_SMTP_PASSWORD", "wrong-password")
        refused = send(config)
        assert refused.exit_code == 1 and "refused the login for 'prep'" in refused.stdout
        monkeypatch.setenv("LP_SMTP_PASSWORD", "s3cret-smtp-pw")
        ok = send(config, "-v")
        assert ok.exit_code == 0 and len(server.inbox.messages) == 1
        texts = [
            missing.stdout,
            missing.stderr,
            refused.stdout,
            refused.stderr,
            ok.stdout,
            ok.stderr,
        ]
        texts += [
            p.read_text(errors="replace")
            for p in (tmp_path / "prep-sheets").rglob("*")
            if p.is_file() and p.suffix != ".pdf"
        ]
        assert all("s3cret-smtp-pw" not in t for t in texts)
    finally:
        server.stop()


def test_send_needs_an_email_or_chat_section(tmp_path):
    config = write_config(tmp_path / "c.yaml", "crm: {kind: demo}\n")
    result = cli("send", "-c", config)
    assert result.exit_code == 2 and "neither an email nor a chat section" in result.stderr


def test_invalid_addresses_are_config_errors(tmp_path):
    config = write_config(
        tmp_path / "c.yaml",
        "email: {smtp: {host: h}, from: not-an-address}\nteams: [{manager: {name: D, email: nope}}]\n"
        "schedule: {cron: 'every monday', timezone: Mars/Olympus}\n",
    )
    result = cli("send", "-c", config)
    assert result.exit_code == 2
    for expected in (
        "is not an address",
        "'nope' is not an email address",
        "is not a cron expression",
    ):
        assert expected in result.stderr


@pytest.mark.slow
def test_parallel_sends_deliver_each_message_exactly_once(tmp_path, smtp):
    """Cron and a manual run (here four processes) at once: one message per recipient."""
    import subprocess
    import sys

    reps = [f"rep{i}@example.com" for i in range(6)]
    write_csv(
        tmp_path / "deals.csv",
        [
            csv_row(deal_id=f"D-{i}", owner_email=email, owner_name=f"Rep {i}")
            for i, email in enumerate(reps)
        ],
    )
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        f"teams: [{{manager: {{name: Dana Kim, email: dana@example.com}}, reps: [{', '.join(reps)}]}}]\n"
        f"output: {{formats: [html]}}\n"
        f"email:\n  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: none, timeout: 30}}\n"
        '  from: "Pipeline prep <prep@example.com>"\n  to_reps: true\n',
    )
    smtp.inbox.delay = 0.05
    command = [
        sys.executable,
        "-m",
        "leadprep",
        "send",
        "-c",
        str(config),
        "--as-of",
        TODAY.isoformat(),
    ]
    runs = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    results = [(run.wait(timeout=120), run.stdout.read(), run.stderr.read()) for run in runs]
    report = "\n".join(f"exit {code}\n{(out + err).decode()}" for code, out, err in results)
    assert [code for code, _, _ in results] == [0, 0, 0, 0], report
    recipients = [address for rcpts, _ in smtp.inbox.messages for address in rcpts]
    assert sorted(recipients) == sorted([*reps, "dana@example.com"]), report
    again = send(config)
    assert again.exit_code == 0 and len(smtp.inbox.messages) == 7


def test_a_rep_with_no_deals_and_nothing_to_follow_up_gets_no_pre_read(tmp_path, smtp):
    config = mail_config(tmp_path, smtp.port, to_reps=True)
    text = config.read_text().replace(
        "reps: [alex@example.com, sam@example.com]",
        "reps: [alex@example.com, sam@example.com, new.rep@example.com]",
    )
    config.write_text(text)
    result = send(config)
    assert result.exit_code == 0, result.output
    assert smtp.inbox.to("new.rep@example.com") == []
    assert (
        "has no open deals and nothing to follow up: no pre-read" in result.output + result.stderr
    )
    assert len(smtp.inbox.to("alex@example.com")) == 1
