"""Agree and Deliver: commitments recorded in one review and followed up in the next."""

import json
import threading
from datetime import date, timedelta

import pytest

from leadprep.commitments import coaching_record, vagueness_hint
from leadprep.model import Commitment, FollowUp, NewCommitment
from leadprep.store import Store
from tests.helpers import TODAY, cli, csv_row, write_config, write_csv

NEXT_WEEK = (TODAY + timedelta(days=7)).isoformat()


@pytest.fixture
def reviewed(tmp_path):
    """A config over a CSV, with week 1's review already run."""
    write_csv(
        tmp_path / "deals.csv",
        [
            csv_row(deal_id="D-1", deal_name="Acme rollout", contacts="Ana Ruiz [Champion]"),
            csv_row(deal_id="D-2", deal_name="Globex pilot", contacts="Bo Chen [Champion]"),
            csv_row(
                deal_id="D-3",
                deal_name="Initech",
                owner_email="sam@example.com",
                owner_name="Sam Rivera",
            ),
        ],
    )
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n",
    )
    assert (
        cli("prep", "-c", config, "-o", tmp_path / "w1", "--as-of", TODAY.isoformat()).exit_code
        == 0
    )
    return config


def count(tmp_path):
    with Store.open(tmp_path / "state.db") as store:
        return len(store.commitments.all())


def test_week1_commit_followup_week2_deliver(reviewed, tmp_path):
    one = cli(
        "commit",
        "D-1",
        "Ask Ana to introduce the CFO on Thursday",
        "--due",
        "2026-12-03",
        "-c",
        reviewed,
        "--as-of",
        TODAY.isoformat(),
    )
    two = cli(
        "commit",
        "D-2",
        "Book the security review with Bo's IT lead by Friday",
        "-c",
        reviewed,
        "--as-of",
        TODAY.isoformat(),
    )
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert "#1 recorded for alex@example.com on Acme rollout, due 2026-12-03" in one.stdout
    assert "hint" not in one.stderr
    followed = cli(
        "followup",
        "1",
        "--kept",
        "--note",
        "CFO joined the call",
        "-c",
        reviewed,
        "--as-of",
        NEXT_WEEK,
    )
    assert followed.exit_code == 0 and "#1 marked kept" in followed.stdout

    week2 = cli(
        "prep", "-c", reviewed, "-o", tmp_path / "w2", "-f", "json,html,md", "--as-of", NEXT_WEEK
    )
    assert week2.exit_code == 0, week2.output
    (packet,) = [
        p
        for p in json.loads((tmp_path / "w2" / "packets.json").read_text())["packets"]
        if p["rep"]["email"] == "alex@example.com"
    ]
    assert [(d["id"], d["deal_id"], d["status"]) for d in packet["deliver"]] == [(2, "D-2", "open")]
    assert packet["deliver"][0]["prompts"] and packet["deliver"][0]["made_on"] == TODAY.isoformat()
    assert packet["coaching"]["kept_last_4"] == 1 and packet["coaching"]["followed_up_last_4"] == 1
    html = (tmp_path / "w2" / "alex-morgan.html").read_text()
    assert "Book the security review" in html and "kept 1 of 1 (100%)" in html
    assert "leadprep followup 2 --kept|--partly|--missed" in html


def test_commitments_made_this_review_are_not_in_its_own_deliver(reviewed, tmp_path):
    cli("commit", "D-1", "Call Ana on Friday", "-c", reviewed, "--as-of", TODAY.isoformat())
    rerun = cli(
        "prep", "-c", reviewed, "-o", tmp_path / "again", "-f", "json", "--as-of", TODAY.isoformat()
    )
    packets = json.loads((tmp_path / "again" / "packets.json").read_text())["packets"]
    assert rerun.exit_code == 0 and all(p["deliver"] == [] for p in packets)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["commit", "NOPE", "Call Ana on Friday"], "Unknown deal id 'NOPE'"),
        (["commit", "D-1", "   "], "commitment text is empty"),
        (["commit", "D-1", "Call Ana", "--due", "next friday"], "'next friday' is not a date"),
        (["followup", "99", "--kept"], "Unknown commitment id 99"),
        (["followup", "1", "--kept", "--missed"], "exactly one of --kept, --partly or --missed"),
        (["commit", "D-1"], "Usage: leadprep commit DEAL_ID"),
        (["commit", "", "Call Ana"], "needs the rep: --rep EMAIL"),
        (["commit", "", "Call Ana", "--rep", "a@b.com, c@d.com"], "needs the rep: --rep EMAIL"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(reviewed, tmp_path, args, message):
    result = cli(*args, "-c", reviewed, "--as-of", TODAY.isoformat())
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert count(tmp_path) == 0


def test_past_due_date_is_accepted_with_a_warning(reviewed, tmp_path):
    result = cli(
        "commit",
        "D-1",
        "Send Ana the MSA on Monday",
        "--due",
        "2026-11-20",
        "-c",
        reviewed,
        "--as-of",
        TODAY.isoformat(),
    )
    assert result.exit_code == 0
    assert (
        "due date 2026-11-20 is before the review date 2026-11-30; recorded anyway" in result.stderr
    )
    assert count(tmp_path) == 1


def test_vague_commitment_is_recorded_with_a_hint(reviewed, tmp_path):
    result = cli(
        "commit", "D-1", "I'll try to multithread", "-c", reviewed, "--as-of", TODAY.isoformat()
    )
    assert result.exit_code == 0 and count(tmp_path) == 1
    assert "Make it specific — who, what, by when" in result.stderr


@pytest.mark.parametrize(
    ("text", "due", "missing"),
    [
        ("I'll try to multithread", None, ["who", "what", "by when"]),
        ("Follow up with the CFO", None, ["what", "by when"]),
        ("Ask Ana to introduce the CFO by Friday", None, []),
        ("Send the security questionnaire to IT", date(2026, 12, 4), []),
        ("Book a meeting with procurement next week", None, []),
        ("Call Kira on 12/04", None, []),
        ("Send pricing", None, ["who", "by when"]),
    ],
)
def test_vagueness_hint(text, due, missing):
    hint = vagueness_hint(text, due)
    if not missing:
        assert hint is None, hint
    else:
        for part in ("who", "what", "by when"):
            assert (f"{part} (" in hint) == (part in missing), (part, hint)


def test_bulk_entry_from_the_typed_up_sheet(reviewed, tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "deal_id;text;due;rep\nD-1;Call Ana on Friday;2026-12-04;\nD-3;Send Sam's buyer the MSA by Tuesday;;\n",
        encoding="utf-8",
    )
    result = cli("commit", "--from-file", sheet, "-c", reviewed, "--as-of", TODAY.isoformat())
    assert result.exit_code == 0, result.output
    assert (
        "#1 recorded for alex@example.com" in result.stdout
        and "#2 recorded for sam@example.com" in result.stdout
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "deal_id,text,due\nD-1,Call Ana on Friday,2026-12-04\nD-404,Something,\nD-2,,\n",
        encoding="utf-8",
    )
    result = cli("commit", "--from-file", bad, "-c", reviewed, "--as-of", TODAY.isoformat())
    assert result.exit_code == 2
    assert (
        "line 3: Unknown deal id 'D-404'" in result.stderr
        and "line 4: The commitment text is empty" in result.stderr
    )
    assert "nothing was written" in result.stderr and count(tmp_path) == 2


def test_listing_as_table_and_json(reviewed, tmp_path):
    cli(
        "commit",
        "D-1",
        "Call Ana on Friday",
        "--due",
        "2026-12-01",
        "-c",
        reviewed,
        "--as-of",
        TODAY.isoformat(),
    )
    cli(
        "commit",
        "D-3",
        "Send Sam's buyer the MSA by Tuesday",
        "-c",
        reviewed,
        "--as-of",
        TODAY.isoformat(),
    )
    cli("followup", "2", "--missed", "-c", reviewed, "--as-of", NEXT_WEEK)
    table = cli("commitments", "-c", reviewed, "--as-of", NEXT_WEEK)
    assert table.exit_code == 0 and "Ana" in table.stdout and "overdue" in table.stdout
    assert "MSA" not in table.stdout  # followed up: only with --all
    data = json.loads(
        cli("commitments", "--all", "--format", "json", "-c", reviewed, "--as-of", NEXT_WEEK).stdout
    )
    assert [(c["id"], c["status"], c["overdue"]) for c in data] == [
        (1, "open", True),
        (2, "missed", False),
    ]
    only_sam = json.loads(
        cli(
            "commitments",
            "--all",
            "--rep",
            "sam@example.com",
            "--format",
            "json",
            "-c",
            reviewed,
            "--as-of",
            NEXT_WEEK,
        ).stdout
    )
    assert [c["id"] for c in only_sam] == [2]


def test_second_followup_warns_and_updates(reviewed, tmp_path):
    cli("commit", "D-1", "Call Ana on Friday", "-c", reviewed, "--as-of", TODAY.isoformat())
    cli("followup", "1", "--kept", "-c", reviewed, "--as-of", NEXT_WEEK)
    again = cli("followup", "1", "--missed", "-c", reviewed, "--as-of", NEXT_WEEK)
    assert (
        again.exit_code == 0
        and "already marked kept" in again.stderr
        and "marked missed" in again.stdout
    )


def test_concurrent_commits_lose_nothing(reviewed, tmp_path):
    errors = []

    def commit(n):
        try:
            with Store.open(tmp_path / "state.db") as store:
                for i in range(10):
                    item = NewCommitment(
                        "D-1", "Acme", "alex@example.com", f"call {n}-{i}", None, TODAY
                    )
                    store.commitments.add([item])
        except Exception as exc:  # pragma: no cover - reported by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store.open(tmp_path / "state.db") as store:
        ids = [c.id for c in store.commitments.all()]
    assert len(ids) == 50 and len(set(ids)) == 50


def c(id_, made, status, followed=None):
    return Commitment(
        id=id_,
        deal_id="D",
        deal_name="Deal",
        rep_email="a@x.co",
        text="t",
        due=None,
        made_on=made,
        status=status,
        followed_up_on=followed,
        followups=(FollowUp(status, None, followed),) if followed else (),
    )


def test_coaching_record_windows_and_streak():
    reviews = [TODAY - timedelta(weeks=w) for w in range(1, 15)]  # newest first
    history = [
        c(1, TODAY - timedelta(weeks=13), "kept", TODAY - timedelta(weeks=12)),
        c(2, TODAY - timedelta(weeks=6), "missed", TODAY - timedelta(weeks=5)),
        c(3, TODAY - timedelta(weeks=4), "kept", TODAY - timedelta(weeks=3)),
        c(4, TODAY - timedelta(weeks=3), "missed", TODAY - timedelta(weeks=2)),
        c(5, TODAY - timedelta(weeks=2), "kept", TODAY - timedelta(weeks=1)),
        c(6, TODAY - timedelta(weeks=1), "kept", TODAY),
        c(7, TODAY - timedelta(weeks=2), "open"),
        c(8, TODAY - timedelta(weeks=1), "open"),
    ]
    record = coaching_record(history, reviews, TODAY)
    assert (record.kept_4, record.decided_4) == (3, 4)
    assert (record.kept_12, record.decided_12) == (3, 5)  # #1 is older than 12 reviews
    assert record.streak == 2
    assert record.not_followed_up == 1  # #7 went through last week's review unanswered
    assert (
        record.summary
        == "kept 3 of 4 (75%) over the last 4 reviews, 3 of 5 (60%) over 12; 2 kept in a row"
    )
    empty = coaching_record([], [], TODAY)
    assert empty.summary == "no commitment followed up yet"


def test_a_commitment_about_no_single_deal_with_its_success_sign(reviewed):
    config = reviewed
    made = cli(
        "commit",
        "-c",
        config,
        "--rep",
        "alex@example.com",
        "Open every call with the buyer's own goal, starting Tuesday",
        "--success",
        "Two buyers state their goal in their own words",
        "--as-of",
        TODAY.isoformat(),
    )
    assert made.exit_code == 0, made.output + made.stderr
    assert "(no single deal)" in made.stdout
    listed = json.loads(
        cli("commitments", "-c", config, "--format", "json", "--as-of", TODAY.isoformat()).stdout
    )
    (item,) = [c for c in listed if c["deal_id"] is None]
    assert item["rep_email"] == "alex@example.com"
    assert item["success"] == "Two buyers state their goal in their own words"
    with_deal = cli(
        "commit",
        "-c",
        config,
        "D-1",
        "Book the CFO call by Friday",
        "--success",
        "CFO on the calendar",
        "--as-of",
        TODAY.isoformat(),
    )
    assert with_deal.exit_code == 0, with_deal.output + with_deal.stderr
    listed = json.loads(
        cli("commitments", "-c", config, "--format", "json", "--as-of", TODAY.isoformat()).stdout
    )
    assert {c["success"] for c in listed} >= {"CFO on the calendar"}


# --- the loop's rough edges ----------------------------------------------------------------------


def commitments_json(config, *extra):
    result = cli("commitments", "-c", config, "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_commitments_lists_every_open_one_whatever_its_review_date(reviewed):
    later = (TODAY + timedelta(days=14)).isoformat()
    assert (
        cli(
            "commit", "D-1", "Book the CFO call by Friday", "-c", reviewed, "--as-of", later
        ).exit_code
        == 0
    )
    # no --as-of: today's date comes before that review, and the commitment is still listed
    assert [c["made_on"] for c in commitments_json(reviewed)] == [later]
    table = cli("commitments", "-c", reviewed).stdout
    assert "Alex Morgan" in table and "alex@example.com" not in table  # names, not emails


def test_a_later_follow_up_keeps_the_earlier_note_and_both_are_in_the_history(reviewed):
    cli(
        "commit", "D-1", "Book the CFO call by Friday", "-c", reviewed, "--as-of", TODAY.isoformat()
    )
    first = cli(
        "followup",
        "1",
        "--kept",
        "--note",
        "CFO joined; budget confirmed",
        "-c",
        reviewed,
        "--as-of",
        NEXT_WEEK,
    )
    assert first.exit_code == 0, first.output
    again = cli("followup", "1", "--missed", "-c", reviewed, "--as-of", NEXT_WEEK)
    assert again.exit_code == 0 and "both are kept in its history" in again.stderr
    [item] = commitments_json(reviewed, "--all")
    assert item["status"] == "missed" and item["note"] == "CFO joined; budget confirmed"
    assert [(f["status"], f["note"]) for f in item["followups"]] == [
        ("kept", "CFO joined; budget confirmed"),
        ("missed", None),
    ]
    table = cli("commitments", "-c", reviewed, "--all").stdout
    assert "CFO joined" in table and "missed" in table


def test_a_follow_up_dated_before_the_commitment_is_refused(reviewed):
    cli("commit", "D-1", "Book the CFO call by Friday", "-c", reviewed, "--as-of", NEXT_WEEK)
    result = cli("followup", "1", "--kept", "-c", reviewed, "--as-of", TODAY.isoformat())
    assert result.exit_code == 2 and "comes before it" in result.stderr
    assert commitments_json(reviewed)[0]["status"] == "open"


def test_partly_counts_half_in_the_kept_rate(reviewed, tmp_path):
    cli(
        "commit", "D-1", "Book the CFO call by Friday", "-c", reviewed, "--as-of", TODAY.isoformat()
    )
    assert cli("followup", "1", "--partly", "-c", reviewed, "--as-of", NEXT_WEEK).exit_code == 0
    out = tmp_path / "w2"
    assert (
        cli("prep", "-c", reviewed, "-o", out, "-f", "json,html", "--as-of", NEXT_WEEK).exit_code
        == 0
    )
    packet = next(
        p
        for p in json.loads((out / "packets.json").read_text())["packets"]
        if p["rep"]["email"] == "alex@example.com"
    )
    assert (
        packet["coaching"]["kept_last_4"] == 0.5 and packet["coaching"]["followed_up_last_4"] == 1
    )
    assert "kept 0.5 of 1 (50%)" in (out / "alex-morgan.html").read_text()


def test_the_commands_on_the_sheet_name_the_config_so_they_work_from_any_folder(reviewed, tmp_path):
    html = (tmp_path / "w1" / "alex-morgan.html").read_text()
    assert f"-c {reviewed.resolve()}" in html


def test_the_cli_and_the_review_page_each_name_an_errors_inputs_in_their_own_terms(tmp_path):
    from leadprep.cli import CLI_TERMS
    from leadprep.commitments import follow_up
    from leadprep.errors import UsageError
    from leadprep.review import _said

    with Store.open(tmp_path / "state.db") as store:
        [cid] = store.commitments.add(
            [NewCommitment("D-1", "Acme", "a@x.co", "Call Ana by Friday", None, TODAY)]
        )
        with pytest.raises(UsageError) as missed:
            follow_up(store, cid, status="missed", note=None, as_of=TODAY, worked=True)
        with pytest.raises(UsageError) as early:
            follow_up(store, cid, status="kept", note=None, as_of=TODAY - timedelta(days=7))
    assert "say --worked or --did-not-work only for one kept" in str(
        missed.value.in_terms(CLI_TERMS)
    )
    assert _said(missed.value) == (
        "A missed commitment cannot have worked or not: say whether it worked (yes or no) only "
        "for one kept (or partly kept)."
    )
    assert "--as-of YYYY-MM-DD" in str(early.value.in_terms(CLI_TERMS))
    assert "--" not in str(early.value.in_terms({"as_of": "the review date"}))
    assert "{" not in str(missed.value) and "{" not in str(early.value)  # plain words by default
