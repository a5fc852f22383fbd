"""The output folder: no file of one rep (or team) can be taken by another, a run that fails
writes nothing, and emails carry only what this run rendered for that manager's own reps."""

from __future__ import annotations

import errno
import json
from datetime import timedelta

from leadprep import render
from leadprep.model import Rep
from leadprep.packets import rep_slugs
from leadprep.store import Store
from tests.helpers import TODAY, cli, csv_row, file_config

TWO_TEAMS = (
    "teams:\n"
    "  - manager: {name: Dana Kim, email: dana@example.com}\n"
    "    reps: [alex@example.com, index@example.com]\n"
    "  - manager: {name: Lee Park, email: lee@example.com}\n"
    "    reps: [packets@example.com]\n"
)


def rows_for(*owners):
    return [
        csv_row(deal_id=f"D-{i}", owner_email=email, owner_name=name, contacts="Ana Ruiz")
        for i, (email, name) in enumerate(owners, start=1)
    ]


def config_for(tmp_path, rows, extra=""):
    return file_config(tmp_path, rows, "state: {path: state.db}\n" + extra)


def test_reps_named_like_the_tools_own_files_get_their_own(tmp_path):
    rows = rows_for(
        ("alex@example.com", "Alex Morgan"),
        ("index@example.com", "Index"),
        ("packets@example.com", "Packets"),
    )
    config = config_for(tmp_path, rows, TWO_TEAMS)
    result = cli("prep", "-c", config, "-f", "html,md,json", "--as-of", TODAY.isoformat())
    assert result.exit_code == 0, result.output
    out = tmp_path / "prep-sheets"
    assert "<h1>Index</h1>" in (out / "index-index.html").read_text()
    assert "<h1>Packets</h1>" in (out / "packets-packets.html").read_text()
    assert "<h1>Index</h1>" not in (out / "index.html").read_text()
    slugs = {p["rep"]["name"] for p in json.loads((out / "packets.json").read_text())["packets"]}
    assert slugs == {"Alex Morgan", "Index", "Packets"}


def test_slugs_are_stable_when_the_export_order_changes():
    sam1 = Rep("1", "Sam Lee", "sam.lee@example.com")
    sam2 = Rep("2", "Sam Lee", "slee@example.com")
    other = Rep("3", "Rollup", "r@example.com")
    first = rep_slugs([sam1, sam2, other])
    assert first == rep_slugs([other, sam2, sam1])
    assert first == {
        "sam.lee@example.com": "sam-lee-sam-lee",
        "slee@example.com": "sam-lee-slee",
        "r@example.com": "rollup-r",
    }
    same_local = rep_slugs([Rep("1", "Jo", "jo@a.com"), Rep("2", "Jo", "jo@b.com")])
    assert len(set(same_local.values())) == 2
    long_name = rep_slugs([Rep("1", "x" * 5000, "x@example.com")])
    assert len(long_name["x@example.com"]) <= 60


def test_a_very_long_rep_name_is_no_crash(tmp_path):
    config = config_for(tmp_path, rows_for(("alex@example.com", "Alex " + "Morgan" * 80)))
    result = cli("prep", "-c", config, "--as-of", TODAY.isoformat())
    assert result.exit_code == 0, result.output


def test_unknown_rep_writes_nothing_and_records_no_run(tmp_path):
    config = config_for(tmp_path, rows_for(("alex@example.com", "Alex Morgan")))
    assert cli("prep", "-c", config, "--as-of", TODAY.isoformat()).exit_code == 0
    index = tmp_path / "prep-sheets" / "index.html"
    before = index.read_text()
    result = cli("prep", "-c", config, "--rep", "typo@example.com", "--as-of", "2026-12-07")
    assert result.exit_code == 2
    assert "typo@example.com" in result.stderr and "nothing was written" in result.stderr
    assert index.read_text() == before
    with Store.open(tmp_path / "state.db") as store:
        assert store.runs.count() == 1


def test_unwritable_output_fails_before_anything_is_recorded(tmp_path):
    config = config_for(tmp_path, rows_for(("alex@example.com", "Alex Morgan")))
    (tmp_path / "afile").write_text("x")
    result = cli("prep", "-c", config, "-o", tmp_path / "afile" / "out", "--as-of", "2026-11-30")
    assert result.exit_code == 2
    assert "Cannot write to the output folder" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    with Store.open(tmp_path / "state.db") as store:
        assert store.runs.count() == 0


def test_full_disk_leaves_last_weeks_sheets_and_records_no_run(tmp_path, monkeypatch):
    config = config_for(
        tmp_path, rows_for(("alex@example.com", "Alex Morgan"), ("sam@example.com", "Sam Rivera"))
    )
    assert cli("prep", "-c", config, "--as-of", TODAY.isoformat()).exit_code == 0
    out = tmp_path / "prep-sheets"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real, calls = render._write_file, []

    def full_after_two(path, data):
        calls.append(path.name)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(render, "_write_file", full_after_two)
    result = cli("prep", "-c", config, "--as-of", "2026-12-07")
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no staging folder either
    with Store.open(tmp_path / "state.db") as store:
        assert store.runs.count() == 1


def mail_config(tmp_path, port, rows):
    return config_for(
        tmp_path,
        rows,
        TWO_TEAMS + f"email:\n  smtp: {{host: 127.0.0.1, port: {port}, security: none}}\n"
        '  from: "Pipeline prep <prep@example.com>"\n',
    )


def test_each_manager_gets_only_their_own_reps_files(tmp_path, smtp):
    rows = rows_for(
        ("alex@example.com", "Alex Morgan"),
        ("index@example.com", "Index"),
        ("packets@example.com", "Packets"),
    )
    config = mail_config(tmp_path, smtp.port, rows)
    result = cli("send", "-c", config, "--as-of", TODAY.isoformat())
    assert result.exit_code == 0, result.output + result.stderr
    (dana,) = smtp.inbox.to("dana@example.com")
    (lee,) = smtp.inbox.to("lee@example.com")
    assert {a.get_filename() for a in dana.iter_attachments()} == {
        "alex-morgan.pdf",
        "index-index.pdf",
    }
    assert {a.get_filename() for a in lee.iter_attachments()} == {"packets-packets.pdf"}
    from pypdf import PdfReader

    (attachment,) = lee.iter_attachments()
    path = tmp_path / "lee.pdf"
    path.write_bytes(attachment.get_content())
    text = "".join(page.extract_text() for page in PdfReader(path).pages)
    assert "Packets" in text and "Alex Morgan" not in text


def test_an_email_never_attaches_last_weeks_file(tmp_path, smtp, monkeypatch):
    monkeypatch.setattr("leadprep.send.pdf_available", lambda: False)
    rows = [csv_row(deal_id="D-1", amount="77000", contacts="Ana Ruiz")]
    config = mail_config(tmp_path, smtp.port, rows)
    out = tmp_path / "prep-sheets"
    out.mkdir()
    (out / "alex-morgan.pdf").write_bytes(b"%PDF-1.4 last week: $48,000")
    result = cli("send", "-c", config, "--as-of", TODAY.isoformat())
    assert result.exit_code == 0, result.output + result.stderr
    (message,) = smtp.inbox.to("dana@example.com")
    attachments = {a.get_filename(): a for a in message.iter_attachments()}
    assert set(attachments) == {"alex-morgan.html", "index-index.html"}
    assert "$77,000" in attachments["alex-morgan.html"].get_content()


def test_the_index_orders_reps_by_need_and_lists_the_commitments_to_follow_up(tmp_path):
    from tests.helpers import add_commitment, write_config, write_csv

    write_csv(
        tmp_path / "deals.csv",
        [
            # Zoe: a single-threaded Commit deal (a high flag on $90,000)
            csv_row(
                deal_id="Z-1",
                owner_email="zoe@example.com",
                owner_name="Zoe Adams",
                amount="90000",
                contacts="Ana Ruiz [Champion]",
            ),
            # Abe: nothing high, but an overdue commitment
            csv_row(deal_id="A-1", owner_email="abe@example.com", owner_name="Abe Brown"),
            # Kim: healthy
            csv_row(deal_id="K-1", owner_email="kim@example.com", owner_name="Kim Cho"),
        ],
    )
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: s.db}\n",
    )
    with Store.open(tmp_path / "state.db") as store:  # the state conftest points at
        add_commitment(
            store,
            deal_id="A-1",
            rep_email="abe@example.com",
            text="Call the CFO by Friday",
            made_on=TODAY - timedelta(days=7),
            due=TODAY - timedelta(days=3),
        )
    result = cli(
        "prep", "-c", config, "-o", tmp_path / "o", "-f", "html", "--as-of", TODAY.isoformat()
    )
    assert result.exit_code == 0, result.output
    index = (tmp_path / "o" / "index.html").read_text()
    order = [index.index(f"<b>{name}</b>") for name in ("Abe Brown", "Zoe Adams", "Kim Cho")]
    assert order == sorted(order)  # overdue first, then the high flag, then the healthy rep
    assert "the reps who need you most come first" in index
    section = index.split("Open commitments to follow up", 1)[1]
    assert "Call the CFO by Friday" in section and "(overdue)" in section
