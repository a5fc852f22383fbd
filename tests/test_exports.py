"""A CRM's own export, as it comes: HubSpot, Salesforce and Pipedrive files (two weekly exports
each, so slips and cuts come from leadprep's own snapshots), any file through crm.file.columns,
and no flag raised from data the file does not carry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from leadprep.config import Config
from leadprep.connectors.file import FileConnector, FileSettings, owner_key
from leadprep.errors import DataError
from tests.helpers import cli, write_config

EXPORTS = Path(__file__).parent / "fixtures" / "exports"
TEAM = (
    "teams:\n"
    "  - manager: {name: Dana Kim, email: dana@example.com}\n"
    '    reps: ["Alex Morgan <alex@example.com>", {name: Sam Rivera, email: sam@example.com}]\n'
)


def two_weeks(tmp_path: Path, crm: str) -> tuple[dict, str]:
    """Run prep on the week-1 export, then on the week-2 export, both untouched; returns the
    second week's packets (by rep name) and everything the runs printed."""
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n" + TEAM,
    )
    printed = ""
    for week in ("2026-11-23", "2026-11-30"):
        shutil.copy(EXPORTS / f"{crm}-{week}.csv", tmp_path / "deals.csv")
        result = cli(
            "prep", "-c", config, "-o", tmp_path / week, "-f", "json,html,md", "--as-of", week
        )
        assert result.exit_code == 0, result.output + result.stderr
        printed += result.output + result.stderr
    data = json.loads((tmp_path / "2026-11-30" / "packets.json").read_text())
    return {p["rep"]["name"]: p for p in data["packets"]}, printed


def deals(packet: dict) -> dict[str, dict]:
    return {d["name"]: d for d in packet["deals"]}


def codes(deal: dict) -> set[str]:
    return {f["code"] for f in deal["flags"]}


def test_a_hubspot_export_as_it_comes(tmp_path):
    packets, printed = two_weeks(tmp_path, "hubspot")
    assert set(packets) == {"Alex Morgan", "Sam Rivera"}  # owners matched by name to the team
    alex = deals(packets["Alex Morgan"])
    northwind = alex["Northwind – fleet analytics"]
    assert northwind["account"] == "Northwind Logistics"
    assert northwind["facts"]["contacts"] == [
        {"name": "Maria Okafor", "email": "maria@northwind.example", "role": None, "title": None}
    ]  # "Name (email)": the email is an email, not a job title
    assert "close_date_slipped" in codes(northwind)  # found from last week's snapshot
    assert northwind["close_date"] == "2026-12-28"  # "2026-12-28 00:00" read as a date
    crescent = deals(packets["Sam Rivera"])["Crescent Bank – staffing pilot"]
    assert "amount_decreased" in codes(crescent)
    # no contact roles anywhere in a HubSpot export: the decision-maker check is off, and said so
    every = [d for p in packets.values() for d in p["deals"]]
    assert not any("no_decision_maker" in codes(d) for d in every)
    assert any(
        "No decision maker: this export has no contact roles" in line
        for line in packets["Alex Morgan"]["checks_off"]
    )
    assert "columns not used: Pipeline, Deal Type, Priority" in printed
    assert "Jamie Fox (1)" in printed and "went to no sheet" in printed
    html = (tmp_path / "2026-11-30" / "index.html").read_text()
    assert "Checks off" in html and "no contact roles" in html


def test_a_salesforce_contact_roles_report_with_its_footer(tmp_path):
    packets, printed = two_weeks(tmp_path, "salesforce")
    assert "skipped" not in printed  # the report's footer lines are not bad rows
    alex = deals(packets["Alex Morgan"])
    northwind = alex["Northwind - Fleet analytics"]
    roles = {c["name"]: c["role"] for c in northwind["facts"]["contacts"]}
    assert roles == {"Maria Okafor": "Business User", "Victor Chan": "Economic Buyer"}
    assert "no_decision_maker" not in codes(northwind)  # the rows of one opportunity are one deal
    assert "close_date_slipped" in codes(northwind)
    assert northwind["close_date"] == "2027-01-15"  # 1/15/2027: month first, settled by the file
    assert (northwind["amount"], northwind["currency"]) == ("148000.00", "USD")  # "USD 148,000.00"
    harbor = alex["Harbor Health - Scheduling"]
    assert "amount_decreased" in codes(harbor) and "no_decision_maker" in codes(harbor)
    atlas = deals(packets["Sam Rivera"])["Atlas Freight - Routing"]
    assert atlas["facts"]["contacts"] == []  # an opportunity without roles appears once, blank
    assert "columns not used: Fiscal Period, Age, Lead Source, Type" in printed


def test_a_pipedrive_export(tmp_path):
    packets, printed = two_weeks(tmp_path, "pipedrive")
    alex = deals(packets["Alex Morgan"])
    assert "close_date_slipped" in codes(alex["Northwind fleet analytics"])
    assert alex["Harbor scheduling"]["currency"] == "EUR"
    # a next activity scheduled for later counts as a next step; one already past does not
    assert "no_next_step" not in codes(alex["Northwind fleet analytics"])
    atlas = deals(packets["Sam Rivera"])["Atlas routing"]
    assert [f["evidence"] for f in atlas["flags"] if f["code"] == "no_next_step"] == [
        "no next step recorded; the last scheduled activity was due Nov 25"
    ]
    # one contact person per deal is all the export carries: no single-threaded alarm from it
    every = [d for p in packets.values() for d in p["deals"]]
    assert not any(
        codes(d) & {"single_threaded", "no_decision_maker", "commit_without_evidence"}
        for d in every
    )
    # "Won" in the status column: the deal left the pipeline as won
    assert [d["outcome"] for d in packets["Sam Rivera"]["departed"]] == ["won"]
    assert "Deal - Pipeline, Deal - Label" in printed


def test_any_other_file_through_columns_and_no_flag_from_missing_data(tmp_path):
    """The public Maven "CRM Sales Opportunities" shape: no amounts, close dates or contacts on
    open deals, agents named without an email."""
    shutil.copy(EXPORTS / "maven-style.csv", tmp_path / "deals.csv")
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm:\n  kind: file\n  file:\n    path: deals.csv\n"
        "    columns: {deal_id: opportunity_id, deal_name: account, account: account, "
        "owner_name: sales_agent, stage: deal_stage, created_at: engage_date, "
        "close_date: close_date, amount: close_value}\n"
        "state: {path: state.db}\n",
    )
    result = cli(
        "prep", "-c", config, "-o", tmp_path / "out", "-f", "json,html", "--as-of", "2017-10-02"
    )
    assert result.exit_code == 0, result.output + result.stderr
    packets = {
        p["rep"]["name"]: p
        for p in json.loads((tmp_path / "out" / "packets.json").read_text())["packets"]
    }
    assert "Mei-Mei Johns" in packets  # the name as the file writes it, hyphen kept
    every = [d for p in packets.values() for d in p["deals"]]
    assert len(every) == 10  # Won and Lost are closed stages
    assert all(d["flags"] == [] for d in every)  # nothing the file cannot support
    assert not any(p["pipeline_value_known"] for p in packets.values())
    mei = packets["Mei-Mei Johns"]
    assert [d["name"] for d in mei["deals"]] == ["Konex", "Finhigh", "Zoomit"]  # older first
    off = " ".join(mei["checks_off"])
    for reason in ("no contacts column", "close dates", "activity dates", "amounts"):
        assert reason in off
    html = (tmp_path / "out" / "mei-mei-johns.html").read_text()
    assert "pipeline value <b>unknown</b>" in html and "$0" not in html
    assert ">healthy<" not in html  # with checks off, "no flag" is not "healthy"
    assert "columns not used: product" in result.stderr
    assert "stages leadprep does not know: Engaging (7)" in result.stderr


def connector(tmp_path: Path, text: str, **settings: object) -> FileConnector:
    (tmp_path / "deals.csv").write_text(text, encoding="utf-8")
    return FileConnector(FileSettings(path=tmp_path / "deals.csv", **settings))


HEADER = "deal_id,deal_name,owner_email,stage,close_date,last_activity_at\n"


@pytest.mark.parametrize(
    ("rows", "setting", "expected"),
    [
        ("D-1,A,a@x.com,Proposal,12/15/2026,3/4/2026\n", "auto", "2026-12-15"),  # 15 > 12: mdy
        ("D-1,A,a@x.com,Proposal,15/12/2026,3/4/2026\n", "auto", "2026-12-15"),  # dmy
        ("D-1,A,a@x.com,Proposal,15.12.2026,\n", "auto", "2026-12-15"),  # dots: day first
        ("D-1,A,a@x.com,Proposal,3/4/2026,\n", "mdy", "2026-03-04"),
        ("D-1,A,a@x.com,Proposal,3/4/2026,\n", "dmy", "2026-04-03"),
        ("D-1,A,a@x.com,Proposal,2026-12-15 00:00,\n", "auto", "2026-12-15"),
    ],
)
def test_dates_as_exports_write_them(tmp_path, rows, setting, expected):
    found = connector(tmp_path, HEADER + rows, date_format=setting).read()
    assert found.deals[0].close_date.isoformat() == expected


def test_a_file_whose_dates_never_say_which_way_round_stops_and_says_how_to_fix_it(tmp_path):
    with pytest.raises(DataError, match=r"close_date '3/4/2026'") as info:
        connector(tmp_path, HEADER + "D-1,A,a@x.com,Proposal,3/4/2026,\n").read()
    assert "crm.file.date_format" in str(info.value)
    with pytest.raises(DataError, match="both month-first"):
        connector(tmp_path, HEADER + "D-1,A,a@x.com,Proposal,12/15/2026,15/12/2026\n").read()


def test_a_bad_row_is_reported_with_every_bad_field(tmp_path):
    found = connector(
        tmp_path,
        HEADER + "D-1,A,a@x.com,Proposal,2026-12-15,\nD-2,B,not-an-email,,2026-13-45,yesterday\n",
    ).read()
    [problem] = found.problems
    text = str(problem)
    assert problem.where == "line 3"
    for part in (
        "stage is empty",
        "owner_email",
        "close_date '2026-13-45'",
        "last_activity_at 'yesterday'",
    ):
        assert part in text


def test_a_report_without_ids_says_which_column_to_add(tmp_path):
    report = (
        (EXPORTS / "salesforce-2026-11-23.csv").read_text().replace('"Opportunity ID",', '"Row",')
    )
    with pytest.raises(DataError, match="no column gives each deal's id") as info:
        connector(tmp_path, report).read()
    assert "Opportunity ID" in str(info.value) and "Salesforce" in str(info.value)


def test_columns_name_headers_the_file_has_and_fields_leadprep_has(tmp_path):
    with pytest.raises(DataError, match=r"crm.file.columns.deal_id: .* has no column 'Opp #'"):
        connector(tmp_path, "Id,Name,Rep,Step\n1,A,Al,B\n", columns={"deal_id": "Opp #"}).read()
    with pytest.raises(ValueError, match="unknown leadprep field"):
        FileSettings(path=Path("x.csv"), columns={"deal_number": "Id"})
    found = connector(
        tmp_path,
        "Id,Name,Rep,Step\n1,Acme,Al Bo,Proposal\n",
        columns={"deal_id": "Id", "deal_name": "Name", "owner_name": "Rep", "stage": "Step"},
    ).read()
    assert (found.deals[0].id, found.deals[0].owner.name) == ("1", "Al Bo")
    assert found.mapping.preset.name == "columns"


def test_owner_names_match_the_teams_ignoring_case_and_accents():
    assert owner_key("  JOSÉ  Núñez ") == owner_key("jose nunez")
    config = Config.model_validate(
        {
            "teams": [
                {
                    "manager": {"name": "D", "email": "d@x.com"},
                    "reps": ["José Núñez <jose@x.com>", "b@x.com"],
                }
            ]
        }
    )
    assert config.team_reps() == {"jose@x.com", "b@x.com"}
    assert config.rep_names() == {"jose@x.com": "José Núñez"}


def test_a_team_rep_with_no_open_deals_gets_a_short_packet_that_says_so(tmp_path):
    shutil.copy(EXPORTS / "hubspot-2026-11-30.csv", tmp_path / "deals.csv")
    team = TEAM.replace("{name: Sam Rivera, email: sam@example.com}", '"Kim Lee <kim@example.com>"')
    config = write_config(
        tmp_path / "leadprep.yaml", "crm: {kind: file, file: {path: deals.csv}}\n" + team
    )
    result = cli(
        "prep", "-c", config, "-o", tmp_path / "out", "-f", "html", "--as-of", "2026-11-30"
    )
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "kim-lee.html").read_text()
    assert "Kim Lee has no open deals in the CRM data this week" in html
    doctor = cli("doctor", "-c", config)
    assert "no open deals in the data for: Kim Lee" in doctor.stdout
    assert "HubSpot deals export" in doctor.stdout and "columns not used" in doctor.stdout


def test_names_built_from_emails_keep_their_hyphens():
    from leadprep.model import name_from_email

    assert name_from_email("mei-mei.johns@example.com") == "Mei-Mei Johns"
    assert name_from_email("jean_luc.picard@example.com") == "Jean Luc Picard"


def test_an_owner_written_with_an_email_is_that_email(tmp_path):
    found = connector(
        tmp_path,
        "Id,Name,Rep,Step\n1,A,Alex Morgan (Alex@Example.com),Proposal\n2,B,Sam Rivera <sam@example.com>,Proposal\n",
        columns={"deal_id": "Id", "deal_name": "Name", "owner_name": "Rep", "stage": "Step"},
    ).read()
    assert [(d.owner.name, d.owner.email) for d in found.deals] == [
        ("Alex Morgan", "alex@example.com"),
        ("Sam Rivera", "sam@example.com"),
    ]


def test_an_impossible_numeric_date_is_a_bad_value_not_an_ambiguous_file(tmp_path):
    found = connector(
        tmp_path,
        HEADER + "D-1,A,a@x.com,Proposal,12/15/2026,\nD-2,B,a@x.com,Proposal,13/45/2026,\n",
    ).read()
    assert [d.id for d in found.deals] == ["D-1"]
    assert "neither month/day nor day/month" in str(found.problems[0])
