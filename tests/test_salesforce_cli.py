"""``leadprep prep`` with crm.kind: salesforce (session auth), end to end against the fake."""

import pytest

from tests.fakes.salesforce_server import TOKEN, FakeSalesforce, build_org
from tests.helpers import cli, csv_packets, prep_json, teams_yaml, write_config

AS_OF = "2026-11-30"
TEAM = ["rep0@example.com", "rep1@example.com"]


@pytest.fixture(scope="module")
def org():
    return build_org([30, 25, 10], closed=5, seed=23, max_roles=4)


def sf_config(tmp_path, fake, retry="{base_delay: 0.001}"):
    return write_config(
        tmp_path / "sf.yaml",
        "crm:\n  kind: salesforce\n  salesforce:\n    auth: session\n"
        f"    instance_url: {fake.instance_url}\n"
        '    access_token: "${SF_ACCESS_TOKEN}"\n'
        f"    ca_bundle: {fake.ca_path}\n    retry: {retry}\n"
        "state: {path: sf-state.db}\n" + teams_yaml(TEAM),
    )


def org_as_csv(org, instance_url) -> list[dict]:
    users = {u["Id"]: u for u in org.users}
    rows = []
    for opp in org.opportunities.values():
        owner = users[opp["OwnerId"]]
        if opp["IsClosed"] or owner["Email"] not in TEAM:
            continue
        roles = sorted(org.roles[opp["Id"]], key=lambda r: not r["IsPrimary"])
        contacts = []
        for role in roles:
            c = role["Contact"]
            text = f"{c['Name']} <{c['Email']}>"
            text += f" [{role['Role']}]" if role["Role"] else ""
            text += f" ({c['Title']})" if c["Title"] else ""
            contacts.append(text)
        history = org.histories[opp["Id"]]
        rows.append(
            {
                "deal_id": opp["Id"],
                "deal_name": opp["Name"],
                "account": (opp["Account"] or {}).get("Name", ""),
                "owner_email": owner["Email"],
                "owner_name": owner["Name"],
                "manager_email": "",
                "stage": opp["StageName"],
                "probability": str(opp["Probability"]),
                "amount": str(opp["Amount"]),
                "currency": "USD",
                "close_date": opp["CloseDate"],
                "forecast_category": opp["ForecastCategoryName"],
                "created_at": opp["CreatedDate"].replace(".000+0000", "+00:00"),
                "stage_entered_at": opp["LastStageChangeDate"].replace(".000+0000", "+00:00"),
                "last_activity_at": opp["LastActivityDate"],
                "next_step": opp["NextStep"] or "",
                "contacts": "; ".join(contacts),
                "previous_close_dates": "; ".join(r["CloseDate"] for r in history[:-1]),
                "is_closed": "",
                "is_won": "",
                "url": f"{instance_url}/lightning/r/Opportunity/{opp['Id']}/view",
            }
        )
    return rows


def test_salesforce_and_csv_of_the_same_data_give_the_same_packets(tmp_path, org, monkeypatch):
    monkeypatch.setenv("SF_ACCESS_TOKEN", TOKEN)
    with FakeSalesforce(org, tmp_path, child_page_size=2) as fake:
        sf = prep_json(sf_config(tmp_path, fake), tmp_path / "sf", AS_OF)
        instance = fake.instance_url
    csv = csv_packets(tmp_path, org_as_csv(org, instance), TEAM, AS_OF)
    assert sum(len(p["deals"]) for p in sf["packets"]) == 55
    assert any(
        f["code"] == "close_date_slipped"
        for p in sf["packets"]
        for d in p["deals"]
        for f in d["flags"]
    )
    assert sf == csv


def test_no_secret_appears_anywhere(tmp_path, org, monkeypatch):
    monkeypatch.setenv("SF_ACCESS_TOKEN", TOKEN)
    with FakeSalesforce(org, tmp_path) as fake:
        config = sf_config(tmp_path, fake)
        ok = cli(
            "prep",
            "-c",
            config,
            "-o",
            tmp_path / "o",
            "-f",
            "json, html, md",
            "-v",
            "--as-of",
            AS_OF,
        )
        fake.token = "rotated"
        expired = cli("prep", "-c", config, "-o", tmp_path / "o2", "-v", "--as-of", AS_OF)
    assert ok.exit_code == 0 and "Salesforce: " in ok.stderr
    assert expired.exit_code == 3 and "sf org display" in expired.stderr
    texts = [ok.stdout, ok.stderr, expired.stdout, expired.stderr]
    texts += [p.read_text() for p in (tmp_path / "o").iterdir()]
    assert all(TOKEN not in text for text in texts)


def test_limit_exhausted_exits_4_and_writes_nothing(tmp_path, org, monkeypatch):
    monkeypatch.setenv("SF_ACCESS_TOKEN", TOKEN)
    with FakeSalesforce(org, tmp_path) as fake:
        fake.inject(always="limit")
        config = sf_config(tmp_path, fake, retry="{max_attempts: 2, base_delay: 0.001}")
        result = cli("prep", "-c", config, "-o", tmp_path / "out", "--as-of", AS_OF)
    assert result.exit_code == 4 and "REQUEST_LIMIT_EXCEEDED" in result.stderr
    assert not (tmp_path / "out").exists()


def test_doctor_checks_login_objects_and_usage(tmp_path, org, monkeypatch):
    monkeypatch.setenv("SF_ACCESS_TOKEN", TOKEN)
    with FakeSalesforce(org, tmp_path) as fake:
        result = cli("doctor", "-c", str(sf_config(tmp_path, fake)))
    assert result.exit_code == 0, result.stdout
    assert "ok   salesforce login: session auth" in result.stdout
    assert "ok   salesforce OpportunityHistory: readable" in result.stdout
    assert "ok   salesforce API usage:" in result.stdout and "/15000" in result.stdout
