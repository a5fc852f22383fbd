"""What tests share: a frozen review date, canonical deals and import rows, config writers, and
the one way tests run the command line (in-process, as a user types it)."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from leadprep.cli import app
from leadprep.model import Contact, Deal, NewCommitment, Rep
from leadprep.store import Store

TODAY = date(2026, 11, 30)  # a Monday review
EVIL = "<b>Evil</b> & Co — rollout"  # a deal name that must come out escaped everywhere

CSV_COLUMNS = [
    "deal_id",
    "deal_name",
    "account",
    "owner_email",
    "owner_name",
    "manager_email",
    "stage",
    "amount",
    "currency",
    "close_date",
    "forecast_category",
    "created_at",
    "stage_entered_at",
    "last_activity_at",
    "next_step",
    "contacts",
    "previous_close_dates",
    "is_closed",
    "is_won",
    "url",
]


def at(days_ago: int) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), tzinfo=UTC)


REP = Rep("alex@example.com", "Alex Morgan", "alex@example.com")


def make_deal(**overrides: Any) -> Deal:
    """A healthy mid-pipeline deal; override what a test is about."""
    values: dict[str, Any] = dict(
        id="D-1",
        name="Acme rollout",
        owner=REP,
        stage="Proposal",
        account="Acme",
        amount=Decimal(50000),
        close_date=TODAY + timedelta(days=45),
        probability=0.6,
        stage_order=5,
        forecast_category="Pipeline",
        stage_entered_at=at(5),
        last_activity_at=at(2),
        next_step="Pricing call",
        next_step_updated_at=at(2),
        contacts=(
            Contact("Ana Ruiz", role="Champion"),
            Contact("Bo Chen", role="Economic Buyer"),
            Contact("Cy Diaz", role="User"),
        ),
    )
    values.update(overrides)
    return Deal(**values)


def write_csv(path: Path, rows: list[dict[str, Any]], delimiter: str = ",") -> Path:
    columns = list(CSV_COLUMNS)
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, delimiter=delimiter)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def csv_row(**overrides: Any) -> dict[str, Any]:
    row = dict(
        deal_id="D-1",
        deal_name="Acme rollout",
        account="Acme",
        owner_email="alex@example.com",
        owner_name="Alex Morgan",
        manager_email="dana@example.com",
        stage="Proposal",
        amount="50000",
        currency="USD",
        close_date=(TODAY + timedelta(days=45)).isoformat(),
        forecast_category="Pipeline",
        created_at="2026-09-01",
        stage_entered_at=(TODAY - timedelta(days=5)).isoformat(),
        last_activity_at=(TODAY - timedelta(days=2)).isoformat(),
        next_step="Pricing call",
        contacts="Ana Ruiz <ana@acme.com> [Champion]; Bo Chen <bo@acme.com> [Economic Buyer]; Cy Diaz",
        previous_close_dates="",
        is_closed="",
        is_won="",
        url="https://crm.example.com/deals/D-1",
    )
    row.update(overrides)
    return row


def write_config(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def file_config(
    tmp_path: Path, rows: list[dict[str, Any]] | str, extra: str = "", name: str = "deals.csv"
) -> Path:
    """``leadprep.yaml`` over an import file of these rows (or this raw text), plus ``extra``."""
    if isinstance(rows, str):
        (tmp_path / name).write_text(rows, encoding="utf-8")
    else:
        write_csv(tmp_path / name, rows)
    return write_config(
        tmp_path / "leadprep.yaml", f"crm: {{kind: file, file: {{path: {name}}}}}\n" + extra
    )


def teams_yaml(reps: list[str]) -> str:
    """A one-manager ``teams`` section for these reps."""
    return (
        "teams: [{manager: {name: Dana Kim, email: dana@example.com}, reps: ["
        + ", ".join(reps)
        + "]}]\n"
    )


def comparable_packets(path: Path) -> dict[str, Any]:
    """packets.json without what legitimately differs between sources (source name, CRM rep ids)."""
    data = json.loads(path.read_text())
    data.pop("source")
    for packet in data["packets"]:
        packet["rep"].pop("id")
    return data


def prep_json(config: Path, out: Path, as_of: str) -> dict[str, Any]:
    """Run ``leadprep prep --format json`` and return the comparable packets."""
    result = cli("prep", "-c", config, "-o", out, "-f", "json,html,md", "--as-of", as_of)
    assert result.exit_code == 0, result.output + result.stderr
    return comparable_packets(out / "packets.json")


def csv_packets(
    tmp_path: Path, rows: list[dict[str, Any]], reps: list[str], as_of: str
) -> dict[str, Any]:
    """The packets the same deals give when imported from CSV."""
    write_csv(tmp_path / "deals.csv", rows)
    config = write_config(
        tmp_path / "csv.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: csv-state.db}\n"
        + teams_yaml(reps),
    )
    return prep_json(config, tmp_path / "csv", as_of)


def cli(*args: Any) -> Result:
    """Run the ``leadprep`` command line in-process with these arguments (paths allowed): the one
    way tests run it, short of a real process (packaging, concurrent sends)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def add_commitment(store: Store, **overrides: Any) -> int:
    """Record a commitment with sensible defaults (override what the test is about); its id."""
    values: dict[str, Any] = dict(
        deal_id="D-1",
        deal_name="Acme",
        rep_email="a@example.com",
        text="x",
        due=None,
        made_on=TODAY,
    )
    values.update(overrides)
    [new_id] = store.commitments.add([NewCommitment(**values)])
    return new_id


def mail_config(tmp_path: Path, port: int, *, to_reps: bool = False, auth: str = "") -> Path:
    """A file-import config with two reps under one manager and SMTP to ``port`` on loopback;
    deal D-1's name is hostile HTML (``EVIL``)."""
    write_csv(
        tmp_path / "deals.csv",
        [
            csv_row(deal_id="D-1", deal_name=EVIL, contacts="Ana Ruiz [Champion]", amount="90000"),
            csv_row(deal_id="D-2", deal_name="Globex pilot"),
            csv_row(
                deal_id="D-3",
                deal_name="Initech renewal",
                owner_email="sam@example.com",
                owner_name="Sam Rivera",
                contacts="",
            ),
        ],
    )
    return write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        "teams: [{manager: {name: Dana Kim, email: dana@example.com}, reps: [alex@example.com, sam@example.com]}]\n"
        f"email:\n  smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 5{auth}}}\n"
        '  from: "Pipeline prep <prep@example.com>"\n'
        f"  to_reps: {'true' if to_reps else 'false'}\n",
    )


def outbox_names(folder: Path) -> set[str]:
    """The outbox's file names below ``folder`` without the hash that keeps them one-to-one
    (``manager-dana@example.com-<hash>.eml`` -> ``manager-dana@example.com.eml``)."""
    return {
        re.sub(r"-[0-9a-f]{12}(\.\w+)$", r"\1", p.name) for p in folder.rglob("*") if p.is_file()
    }
