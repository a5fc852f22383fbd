"""The command line as a user runs it: files written, messages printed, exit codes."""

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine

from leadprep.signals import FLAG_CODES
from tests.helpers import TODAY, cli, csv_row, write_config, write_csv

DEMO_REPS = {"alex-morgan", "priya-shah", "jordan-lee", "sam-rivera"}


def load_packets(folder: Path) -> dict:
    return json.loads((folder / "packets.json").read_text())


def test_demo_writes_index_and_a_packet_per_rep(tmp_path):
    result = cli("prep", "--demo", "--out", tmp_path / "out", "--as-of", TODAY.isoformat())
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert "index.html" in names
    assert {f"{r}.html" for r in DEMO_REPS} <= names and {f"{r}.md" for r in DEMO_REPS} <= names
    assert f"Sheets written to {(tmp_path / 'out').resolve()}" in result.stdout


def test_no_config_runs_the_demo_and_says_so(tmp_path):
    result = cli("prep", "--as-of", TODAY.isoformat())
    assert result.exit_code == 0, result.output
    assert "running on the bundled demo pipeline" in result.stdout
    assert (tmp_path / "prep-sheets" / "index.html").is_file()


def test_demo_shows_every_flag_a_healthy_deal_changes_and_deliver(tmp_path):
    result = cli(
        "prep", "--demo", "--out", tmp_path, "--format", "json,html", "--as-of", TODAY.isoformat()
    )
    assert result.exit_code == 0, result.output
    packets = load_packets(tmp_path)["packets"]
    deals = [d for p in packets for d in p["deals"]]
    assert 30 <= len(deals) <= 50 and len(packets) == 4
    assert {f["code"] for d in deals for f in d["flags"]} == set(FLAG_CODES)
    assert any(not d["flags"] for d in deals)
    assert any(d["changes"] for d in deals) and any(d["new"] for d in deals)
    assert sum(len(p["deliver"]) for p in packets) >= 2
    assert {x["outcome"] for p in packets for x in p["departed"]} == {"won", "lost", "gone"}


def test_demo_looks_current_whenever_it_runs(tmp_path):
    for offset in (0, 200):
        as_of = TODAY + timedelta(days=offset)
        out = tmp_path / str(offset)
        assert (
            cli("prep", "--demo", "-o", out, "-f", "json", "--as-of", as_of.isoformat()).exit_code
            == 0
        )
        deals = [d for p in load_packets(out)["packets"] for d in p["deals"]]
        closes = sorted(d["close_date"] for d in deals if d["close_date"])
        assert closes[0] < (as_of + timedelta(days=1)).isoformat() < closes[-1]


def test_default_today_is_the_real_date(tmp_path):
    with time_machine.travel(TODAY + timedelta(days=3, hours=12), tick=False):
        assert cli("prep", "--demo", "-o", tmp_path, "-f", "json").exit_code == 0
    assert load_packets(tmp_path)["as_of"] == (TODAY + timedelta(days=3)).isoformat()


def csv_config(tmp_path: Path, rows, extra: str = "") -> Path:
    write_csv(tmp_path / "deals.csv", rows)
    return write_config(
        tmp_path / "leadprep.yaml",
        f"crm: {{kind: file, file: {{path: deals.csv}}}}\nstate: {{path: state.db}}\n{extra}",
    )


def test_csv_to_packets_json_contract(tmp_path):
    config = csv_config(
        tmp_path, [csv_row(contacts="Ana Ruiz <ana@acme.com> [Champion]", amount="48000")]
    )
    result = cli(
        "prep",
        "--config",
        config,
        "--format",
        "json",
        "--out",
        tmp_path / "o",
        "--as-of",
        TODAY.isoformat(),
    )
    assert result.exit_code == 0, result.output
    data = load_packets(tmp_path / "o")
    assert set(data) >= {"as_of", "source", "packets"} and data["source"] == "file"
    packet = data["packets"][0]
    assert set(packet) >= {"rep", "manager", "deliver", "deals"}
    assert packet["rep"] == {
        "id": "alex@example.com",
        "name": "Alex Morgan",
        "email": "alex@example.com",
    }
    assert packet["manager"]["email"] == "dana@example.com"
    deal = packet["deals"][0]
    assert set(deal) >= {
        "id",
        "name",
        "account",
        "amount",
        "currency",
        "stage",
        "close_date",
        "url",
        "focus",
        "risk_score",
        "flags",
        "changes",
        "questions",
    }
    assert deal["amount"] == "48000.00" and deal["focus"] is True
    assert deal["flags"][0] == {
        "code": "single_threaded",
        "title": "Single-threaded",
        "severity": "high",
        "evidence": "1 contact: Ana Ruiz (Champion)",
        "news": False,
        "shown": "deal",  # or "rider" (one line under another flag), "hygiene" (shared by most)
    }
    assert set(deal["questions"]) == {"listen", "explore"}
    assert deal["deep"] is True  # the one deal talked through in depth
    assert len(deal["questions"]["listen"]) == 1 and 2 <= len(deal["questions"]["explore"]) <= 4
    assert len(packet["agree"]["prompts"]) == 3  # the one thing, how we will know, rehearse
    assert all(deal["questions"][step] for step in deal["questions"])
    assert (tmp_path / "o" / "index.html").is_file()


def test_bad_rows_are_reported_and_exit_1_with_the_rest_written(tmp_path):
    config = csv_config(tmp_path, [csv_row(), csv_row(deal_id="D-2", close_date="next week")])
    result = cli(
        "prep", "-c", config, "-o", tmp_path / "o", "-f", "json", "--as-of", TODAY.isoformat()
    )
    assert result.exit_code == 1
    assert "line 3 (deal D-2): close_date 'next week' is not a date" in result.stderr
    assert [d["id"] for d in load_packets(tmp_path / "o")["packets"][0]["deals"]] == ["D-1"]


def test_config_errors_exit_2_without_traceback(tmp_path):
    config = write_config(
        tmp_path / "c.yaml", "crm: {kind: file, file: {path: 3}}\nreview: {focus_deals: 0}\n"
    )
    result = cli("prep", "-c", config)
    assert result.exit_code == 2
    assert "review.focus_deals: Input should be greater than or equal to 1" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_missing_import_file_exits_2(tmp_path):
    config = write_config(tmp_path / "c.yaml", "crm: {kind: file, file: {path: nope.csv}}\n")
    result = cli("prep", "-c", config, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "nope.csv does not exist" in result.stderr


def test_usage_errors_exit_2(tmp_path):
    assert cli("prep", "--demo", "--as-of", "30/11/2026").exit_code == 2
    result = cli("prep", "--demo", "--format", "html,docx")
    assert result.exit_code == 2 and "docx" in result.stderr
    result = cli("prep", "--demo", "--rep", "nobody@example.com", "-o", tmp_path)
    assert result.exit_code == 2 and "No rep matches" in result.stderr
    assert cli("prep", "--config", tmp_path / "missing.yaml").exit_code == 2


def test_rep_filter(tmp_path):
    result = cli("prep", "--demo", "--rep", "Priya.Shah@example.com", "-o", tmp_path, "-f", "json")
    assert result.exit_code == 0
    assert [p["rep"]["name"] for p in load_packets(tmp_path)["packets"]] == ["Priya Shah"]


def test_init_writes_a_valid_config_once(tmp_path):
    assert cli("init").exit_code == 0
    text = (tmp_path / "leadprep.yaml").read_text()
    assert "kind: file" in text
    assert cli("init").exit_code == 2
    assert cli("init", "--force").exit_code == 0


def test_doctor(tmp_path):
    result = cli("doctor")
    assert result.exit_code == 0, result.output
    assert re.search(r"ok\s+config: no config file", result.stdout)
    assert "ok   crm: demo pipeline" in result.stdout
    config = csv_config(tmp_path, [csv_row(), csv_row(deal_id="D-2", amount="??")])
    result = cli("doctor", "-c", config)
    assert result.exit_code == 2 and "FAIL crm" in result.stdout and "line 3" in result.stdout


def test_secrets_never_reach_output_or_logs(tmp_path, monkeypatch):
    secret = "pat-na1-0123456789-TOPSECRET"
    monkeypatch.setenv("LP_TEST_TOKEN", secret)
    config = csv_config(
        tmp_path,
        [csv_row()],
        extra="teams: [{manager: {name: D, email: d@example.com}, reps: [alex@example.com]}]\n",
    )
    # the token is referenced from the (unused) hubspot section, so it is known as a secret
    text = config.read_text().replace(
        "crm: {kind: file, file: {path: deals.csv}}",
        'crm: {kind: file, file: {path: deals.csv}, hubspot: {access_token: "${LP_TEST_TOKEN}"}}',
    )
    config.write_text(text)
    result = cli(
        "prep",
        "-c",
        config,
        "-o",
        tmp_path / "o",
        "-f",
        "html,md,json",
        "-v",
        "--as-of",
        TODAY.isoformat(),
    )
    assert result.exit_code == 0, result.output
    assert secret not in result.stdout + result.stderr
    for path in (tmp_path / "o").iterdir():
        assert secret not in path.read_text(), path


def test_week_over_week_changes_and_slips_from_two_exports(tmp_path):
    """Two CSV exports a week apart: every kind of change lands in the second packets.json."""
    week1 = [
        csv_row(deal_id="PUSH", deal_name="Pushed", close_date="2026-12-15", stage="Negotiation"),
        csv_row(deal_id="PULL", deal_name="Pulled", close_date="2027-01-20"),
        csv_row(deal_id="CUT", deal_name="Cut", amount="80000"),
        csv_row(deal_id="BACK", deal_name="Back", stage="Negotiation"),
        csv_row(deal_id="GONE", deal_name="Gone"),
        csv_row(deal_id="WON", deal_name="Won"),
        csv_row(deal_id="SAME", deal_name="Same"),
    ]
    config = csv_config(tmp_path, week1)
    first = cli(
        "prep", "-c", config, "-o", tmp_path / "w1", "-f", "json", "--as-of", TODAY.isoformat()
    )
    assert first.exit_code == 0, first.output
    assert all(not d["changes"] for d in load_packets(tmp_path / "w1")["packets"][0]["deals"])

    week2 = [
        csv_row(deal_id="PUSH", deal_name="Pushed", close_date="2027-01-10", stage="Negotiation"),
        csv_row(deal_id="PULL", deal_name="Pulled", close_date="2027-01-05"),
        csv_row(deal_id="CUT", deal_name="Cut", amount="50000"),
        csv_row(deal_id="BACK", deal_name="Back", stage="Proposal"),
        csv_row(deal_id="WON", deal_name="Won", stage="Closed Won"),
        csv_row(deal_id="SAME", deal_name="Same"),
        csv_row(deal_id="NEW", deal_name="Brand new"),
    ]
    next_week = (TODAY + timedelta(days=7)).isoformat()
    write_csv(tmp_path / "deals.csv", week2)
    # two runs the same day: the second compares with last week, not with the first
    assert (
        cli(
            "prep", "-c", config, "-o", tmp_path / "w2a", "-f", "json", "--as-of", next_week
        ).exit_code
        == 0
    )
    second = cli("prep", "-c", config, "-o", tmp_path / "w2", "-f", "json", "--as-of", next_week)
    assert second.exit_code == 0, second.output
    (packet,) = load_packets(tmp_path / "w2")["packets"]
    deals = {d["id"]: d for d in packet["deals"]}
    assert set(deals) == {"PUSH", "PULL", "CUT", "BACK", "SAME", "NEW"}

    def change(deal_id, field):
        return next(c for c in deals[deal_id]["changes"] if c["field"] == field)

    assert change("PUSH", "close_date") | {"text": None} == {
        "field": "close_date",
        "old": "2026-12-15",
        "new": "2027-01-10",
        "text": None,
    }
    slipped = next(f for f in deals["PUSH"]["flags"] if f["code"] == "close_date_slipped")
    assert slipped["severity"] == "medium"  # one push, across a quarter end
    assert "Dec 15 → Jan 10, 2027" in slipped["evidence"] and "quarter" in slipped["evidence"]
    assert "pulled in" in change("PULL", "close_date")["text"]
    assert not any(f["code"] == "close_date_slipped" for f in deals["PULL"]["flags"])
    assert (
        change("CUT", "amount")["old"] == "80000.00"
        and change("CUT", "amount")["new"] == "50000.00"
    )
    assert any(
        f["code"] == "amount_decreased" and f["severity"] == "high" for f in deals["CUT"]["flags"]
    )
    assert change("BACK", "stage")["text"] == "stage moved back: Negotiation → Proposal"
    assert (
        deals["SAME"]["changes"] == []
        and deals["NEW"]["new"] is True
        and deals["SAME"]["new"] is False
    )
    assert {d["id"]: d["outcome"] for d in packet["departed"]} == {"GONE": "gone", "WON": "won"}
    assert packet["previous_review"] == TODAY.isoformat()


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_a_reader_that_stops_early_is_not_an_error(tmp_path, fmt):
    """`leadprep history --format csv | head -1`: the pipe closes, leadprep stops quietly."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is already gone: the first write fails, every time
    try:
        result = subprocess.run(
            [sys.executable, "-m", "leadprep", "history", "--format", fmt],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")
