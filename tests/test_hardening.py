"""Regression tests for the hostile-input review: secrets, money, bad files, bad config and
the one safety net (every problem a clear error with its exit code, never a traceback)."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from leadprep.config import ConfigError, SMTPSettings, parse_config
from leadprep.connectors.hubspot import HubSpotConnector, HubSpotSettings
from leadprep.errors import EXIT_INTERNAL
from leadprep.redact import register_secret
from tests.fakes.hubspot_server import TOKEN, FakeHubSpot, build_portal
from tests.helpers import TODAY, cli, csv_row, file_config, teams_yaml, write_config, write_csv

# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost@evil.example",
        "http://127.evil.example",
        "http://127.0.0.1.evil.example",
        "http://evil.example",
        "https://user:pw@api.hubapi.com",
        "https://localhost@evil.example",
        "http://localhost:8080",  # a name, not a literal address: it may resolve anywhere
        "ftp://api.hubapi.com",
        "https://",
        "https://api.hubapi.com:99999",
        "https://api.hubapi.com/?x=1",
    ],
)
def test_a_secret_only_goes_over_https_or_to_a_literal_loopback(url):
    with pytest.raises(ValueError, match="base_url"):
        HubSpotSettings(access_token="t", base_url=url)


@pytest.mark.parametrize(
    "url",
    ["https://api.hubapi.com/", "http://127.0.0.1:8080", "http://127.1.2.3", "http://[::1]:80"],
)
def test_https_and_literal_loopback_are_fine(url):
    assert HubSpotSettings(access_token="t", base_url=url).base_url == url.rstrip("/")


def test_salesforce_domain_is_a_host_name_only():
    raw = {"crm": {"kind": "salesforce", "salesforce": {"username": "u", "password": "p"}}}
    raw["crm"]["salesforce"]["domain"] = "evil.example/x#"
    with pytest.raises(ConfigError, match="domain"):
        parse_config(raw)
    raw["crm"]["salesforce"]["domain"] = "acme.my"
    assert parse_config(raw).crm.salesforce.domain == "acme.my"


def hubspot_config(tmp_path, url):
    return write_config(
        tmp_path / "hubspot.yaml",
        "crm:\n  kind: hubspot\n"
        f'  hubspot: {{access_token: "${{HUBSPOT_ACCESS_TOKEN}}", base_url: "{url}",'
        " retry: {base_delay: 0.001, window_wait: 0.01, max_attempts: 2}}\n"
        "state: {path: hs.db}\n" + teams_yaml(["rep0@example.com"]),
    )


def test_a_token_echoed_in_an_error_body_is_masked_even_in_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    with FakeHubSpot(build_portal([3], seed=1)) as fake:
        fake.fault = lambda n, path: (400, {}, {"message": f"bad request for token {TOKEN}"})
        config = hubspot_config(tmp_path, fake.url)
        result = cli("prep", "-c", config, "-v", "--as-of", TODAY.isoformat())
    assert result.exit_code == 2
    assert "Traceback" in result.stderr  # -v shows it ...
    assert TOKEN not in result.stdout + result.stderr  # ... masked
    assert "****" in result.stderr


def test_the_schedulers_log_masks_secrets_in_tracebacks(capsys):
    from leadprep.cli import _setup_logging
    from leadprep.schedule import Scheduler

    register_secret("sched-secret-123")
    _setup_logging(False)

    def job(fire):
        raise RuntimeError("boom with sched-secret-123 inside")

    ticks = iter(range(10))
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 11, 30, 6, 59, tzinfo=UTC)
    scheduler = Scheduler(
        "0 7 * * *",
        "UTC",
        job,
        now=lambda: start + timedelta(minutes=next(ticks)),
        wait=lambda s: False,
    )
    scheduler.run(max_runs=1)
    logged = capsys.readouterr().err
    assert "Traceback" in logged and "RuntimeError" in logged
    assert "sched-secret-123" not in logged and "****" in logged
    logging.getLogger("leadprep").handlers.clear()


def test_smtp_password_in_clear_to_another_host_is_warned_about(tmp_path, monkeypatch):
    settings = SMTPSettings(host="smtp.example.com", security="none", password="pw")
    assert "unencrypted" in settings.cleartext_warning()
    assert (
        SMTPSettings(host="127.0.0.1", security="none", password="pw").cleartext_warning() is None
    )
    assert SMTPSettings(host="smtp.example.com", password="pw").cleartext_warning() is None
    monkeypatch.setenv("SMTP_PASSWORD", "pw-1234")
    config = write_config(
        tmp_path / "leadprep.yaml",
        "email:\n  smtp: {host: smtp.example.com, security: none, username: u, "
        'password: "${SMTP_PASSWORD}"}\n  from: "Prep <prep@example.com>"\n',
    )
    doctor = cli("doctor", "-c", config)
    assert "FAIL email" in doctor.stdout and "unencrypted" in doctor.stdout
    # and send says so before it logs in (no connection is made here: the sender is a stub)
    from leadprep.config import load_config
    from leadprep.mail import send_email
    from leadprep.store import Store

    class NoSender:
        def close(self):
            pass

    from leadprep.outbox import Sending

    with Store.memory() as store:
        sending = Sending(load_config(config), store, [], [], TODAY, tmp_path)
        report = send_email(sending, [], transport=NoSender)
    assert any("unencrypted" in note for note in report.notes)


# --- the safety net --------------------------------------------------------------------------


def test_an_unexpected_error_is_exit_70_with_no_traceback_and_no_secret(tmp_path, monkeypatch):
    register_secret("internal-secret-987")

    def broken(*args, **kwargs):
        raise KeyError("internal-secret-987")

    monkeypatch.setattr("leadprep.prep.build_packets", broken)
    result = cli("prep", "--demo", "--as-of", TODAY.isoformat())
    assert result.exit_code == EXIT_INTERNAL
    assert "internal error" in result.stderr and "-v" in result.stderr
    assert "Traceback" not in result.stderr
    assert "internal-secret-987" not in result.stderr
    verbose = cli("prep", "--demo", "-v", "--as-of", TODAY.isoformat())
    assert verbose.exit_code == EXIT_INTERNAL
    assert "Traceback" in verbose.stderr and "internal-secret-987" not in verbose.stderr


def test_a_hubspot_5xx_with_an_html_body_is_retried(tmp_path):
    portal = build_portal([20], seed=2)
    with FakeHubSpot(portal) as fake:
        clean = HubSpotConnector(HubSpotSettings(access_token=TOKEN, base_url=fake.url)).fetch(
            None, TODAY
        )
    with FakeHubSpot(portal) as fake:
        fake.fault = lambda n, path: (
            (502, {}, b"<html><h1>502 Bad Gateway</h1></html>") if n in (1, 3) else None
        )
        settings = HubSpotSettings(
            access_token=TOKEN, base_url=fake.url, retry={"base_delay": 0.001}
        )
        noisy = HubSpotConnector(settings).fetch(None, TODAY)
    assert noisy.deals == clean.deals


def test_doctor_survives_a_hubspot_that_answers_html(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    with FakeHubSpot(build_portal([3], seed=1)) as fake:
        fake.fault = lambda n, path: (503, {}, b"<html>down for maintenance</html>")
        result = cli("doctor", "-c", hubspot_config(tmp_path, fake.url))
    assert "FAIL" in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert result.exit_code == 2


def file_run(tmp_path, rows, *extra, name="deals.csv"):
    file_config(tmp_path, rows, teams_yaml(["alex@example.com"]), name=name)
    return cli("prep", "-f", "html,md,json", "--as-of", TODAY.isoformat(), *extra)


@pytest.mark.parametrize("amount", ["1e400", "1e28", "99999999999999999999999999999"])
def test_absurd_amounts_are_row_problems(tmp_path, amount):
    result = file_run(tmp_path, [csv_row(deal_id="D-1"), csv_row(deal_id="D-2", amount=amount)])
    assert result.exit_code == 1, result.output + result.stderr
    assert "line 3" in result.stderr and "amount" in result.stderr


def test_a_field_over_the_limit_is_a_row_problem(tmp_path):
    rows = [csv_row(deal_id="D-1", next_step="x" * 200_000), csv_row(deal_id="D-2")]
    result = file_run(tmp_path, rows)
    assert result.exit_code == 1, result.output + result.stderr
    assert "line 2" in result.stderr and "100,000 characters" in result.stderr
    packets = json.loads((tmp_path / "prep-sheets" / "packets.json").read_text())
    assert [d["id"] for d in packets["packets"][0]["deals"]] == ["D-2"]


def test_rows_swallowed_by_an_unbalanced_quote_are_read_again(tmp_path):
    header = "deal_id,deal_name,owner_email,stage,amount\n"
    names = {i: f"Deal {i}" for i in range(1, 11)}
    names[3] = '"Broken, quote'
    body = "".join(f"D-{i},{names[i]},alex@example.com,Proposal,{1000 + i}\n" for i in names)
    result = file_run(tmp_path, header + body)
    assert result.exit_code == 1, result.output + result.stderr
    assert "a quote opened on line 4 is not closed" in result.stderr
    packets = json.loads((tmp_path / "prep-sheets" / "packets.json").read_text())
    ids = sorted(d["id"] for d in packets["packets"][0]["deals"])
    assert ids == sorted(f"D-{i}" for i in range(1, 11) if i != 3)


def test_json_values_of_the_wrong_type_are_row_problems(tmp_path):
    good = {
        "deal_id": "D-1",
        "deal_name": "Acme",
        "owner_email": "alex@example.com",
        "stage": "Proposal",
    }
    records = [
        good,
        {**good, "deal_id": "D-2", "deal_name": {"text": "x"}},
        {**good, "deal_id": "D-3", "contacts": [{"name": "Ana", "email": 5}]},
        {**good, "deal_id": "D-4", "amount": [1]},
        {**good, "deal_id": "D-5", "is_closed": {}},
        {**good, "deal_id": "D-6", "amount": 48000, "probability": 0.4, "is_closed": False},
        {**good, "deal_id": 7},
    ]
    result = file_run(tmp_path, json.dumps(records), name="deals.json")
    assert result.exit_code == 1, result.output + result.stderr
    for n in (2, 3, 4, 5):
        assert f"record {n}" in result.stderr
    packets = json.loads((tmp_path / "prep-sheets" / "packets.json").read_text())
    assert sorted(d["id"] for d in packets["packets"][0]["deals"]) == ["7", "D-1", "D-6"]


# --- money -----------------------------------------------------------------------------------


def test_currencies_are_never_added_together(tmp_path):
    rows = [
        csv_row(deal_id="D-1", amount="48000", currency="USD"),
        csv_row(deal_id="D-2", amount="29000", currency="USD"),
        csv_row(deal_id="D-3", amount="12500", currency="EUR"),
        csv_row(deal_id="D-4", amount="5000000", currency="JPY"),
    ]
    result = file_run(tmp_path, rows)
    assert result.exit_code == 0, result.output + result.stderr
    out = tmp_path / "prep-sheets"
    for name in ("alex-morgan.html", "alex-morgan.md", "index.html"):
        text = out / name
        assert "$77,000" in text.read_text(), name
        assert "€12,500" in text.read_text() and "¥5,000,000" in text.read_text(), name
        assert "¥5,089,500" not in text.read_text()


def test_a_us_amount_that_reads_two_ways_is_a_row_problem_not_a_thousandfold_error(tmp_path):
    rows = [csv_row(deal_id="D-1", amount="1.234"), csv_row(deal_id="D-2", amount="48,000")]
    result = file_run(tmp_path, rows)
    assert result.exit_code == 1
    assert "line 2" in result.stderr and "ambiguous" in result.stderr
    packets = json.loads((tmp_path / "prep-sheets" / "packets.json").read_text())
    assert [d["amount"] for d in packets["packets"][0]["deals"]] == ["48000.00"]
    # the file's own other values settle it
    rows.append(csv_row(deal_id="D-3", amount="2,500.50"))
    result = file_run(tmp_path, rows)
    assert result.exit_code == 0, result.stderr
    packets = json.loads((tmp_path / "prep-sheets" / "packets.json").read_text())
    amounts = {d["id"]: d["amount"] for d in packets["packets"][0]["deals"]}
    assert amounts == {"D-1": "1.23", "D-2": "48000.00", "D-3": "2500.50"}


def test_a_semicolon_file_reads_commas_as_decimals(tmp_path):
    text = "deal_id;deal_name;owner_email;stage;amount\nD-1;A;alex@example.com;Proposal;48.000\n"
    result = file_run(tmp_path, text)
    assert result.exit_code == 0, result.stderr
    packets = json.loads((tmp_path / "prep-sheets" / "packets.json").read_text())
    assert packets["packets"][0]["deals"][0]["amount"] == "48000.00"


# --- config and arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Prep {weeks}",
        "Prep {0}",
        "Prep {week",
        "{week.__class__.__mro__}",
        "{week!r}",
        "{reps:>{week}}",
    ],
)
def test_subject_placeholders_are_checked_when_the_config_loads(tmp_path, subject):
    config = write_config(
        tmp_path / "leadprep.yaml",
        "email:\n  smtp: {host: 127.0.0.1}\n  from: prep@example.com\n"
        f"  subject: {json.dumps(subject)}\n",
    )
    for command in ("send", "doctor"):
        result = cli(command, "-c", config)
        assert result.exit_code == 2, result.output
        assert "subject" in result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr


def test_literal_braces_and_known_placeholders_are_fine():
    from leadprep.config import format_subject

    subject = "{{Prep}} {week}: {reps} reps, {date}"
    assert format_subject(subject, week="week of Nov 30", reps=3, date="2026-11-30") == (
        "{Prep} week of Nov 30: 3 reps, 2026-11-30"
    )


ALIAS_BOMB = "a: &a [1,2,3,4,5,6,7,8,9]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcde", "bcdef", strict=True)
)


@pytest.mark.parametrize(
    "yaml_text",
    ["a: &a [*a]\n", "teams: &t [{manager: {name: x, email: a@b.co}, reps: *t}]\n", ALIAS_BOMB],
)
def test_recursive_or_exploding_yaml_is_a_config_error(tmp_path, yaml_text):
    config = write_config(tmp_path / "leadprep.yaml", yaml_text)
    result = cli("prep", "-c", config)
    assert result.exit_code == 2
    assert "refers to itself" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("number", ["99999999999999999999", "0", "-1"])
def test_followup_of_an_impossible_id_is_a_usage_error(number):
    result = cli("followup", "--", number, "--kept")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31"])
def test_as_of_far_outside_any_review_is_a_usage_error(value):
    for command in (["prep", "--demo"], ["commitments"]):
        result = cli(*command, "--as-of", value)
        assert result.exit_code == 2, result.output
        assert "outside" in result.stderr


def test_dates_far_outside_any_review_are_row_problems(tmp_path):
    rows = [csv_row(deal_id="D-1"), csv_row(deal_id="D-2", close_date="0001-01-01")]
    result = file_run(tmp_path, rows)
    assert result.exit_code == 1 and "line 3" in result.stderr


# --- email -------------------------------------------------------------------------------------


def send_with_rep_named(tmp_path, port, owner_name):
    """``send`` with ``to_reps`` for one rep of that name; returns the CLI result."""
    write_csv(tmp_path / "deals.csv", [csv_row(owner_name=owner_name)])
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: s.db}\n"
        + teams_yaml(["alex@example.com"])
        + f"output: {{formats: [html]}}\nemail:\n  smtp: {{host: 127.0.0.1, port: {port}, security: none}}\n"
        '  from: "Prep <prep@example.com>"\n  to_reps: true\n',
    )
    return cli("send", "-c", config, "--as-of", TODAY.isoformat())


def recipients(server):
    return sorted(address for rcpts, _ in server.inbox.messages for address in rcpts)


def test_a_line_break_in_a_rep_name_cannot_add_headers(tmp_path, smtp):
    result = send_with_rep_named(tmp_path, smtp.port, "Alex\r\nBcc: evil@example.com\r\nMorgan")
    assert result.exit_code == 0, result.output + result.stderr
    assert recipients(smtp) == ["alex@example.com", "dana@example.com"]
    (rep_mail,) = smtp.inbox.to("alex@example.com")
    assert rep_mail["Bcc"] is None
    assert rep_mail["To"] == '"Alex Bcc evil example.com Morgan" <alex@example.com>'
    assert [a.addr_spec for a in rep_mail["To"].addresses] == ["alex@example.com"]


def test_the_envelope_is_the_recorded_recipient_whatever_the_header_says(tmp_path, smtp):
    """A name that folds into a header parsing as two addresses adds no recipient."""
    from leadprep.sanitize import display_name

    name = "<script>alert(1)</script>" * 3 + "data:text/html,x"
    assert display_name(name) and not set(display_name(name)) & set('<>@,;:"()[]\\')
    assert len(display_name("x" * 500)) == 64
    result = send_with_rep_named(tmp_path, smtp.port, name)
    assert result.exit_code == 0, result.output + result.stderr
    assert recipients(smtp) == ["alex@example.com", "dana@example.com"]


def test_money_totals_keep_currencies_apart():
    from leadprep.formatting import money_totals

    totals = {"USD": Decimal("77000"), "EUR": Decimal("12500")}
    assert money_totals(totals) == "$77,000 + €12,500"
    assert money_totals({}) == "$0"
