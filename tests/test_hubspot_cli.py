"""``leadprep prep`` with crm.kind: hubspot, end to end against the fake HubSpot."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.fakes.hubspot_server import TOKEN, FakeHubSpot, build_portal
from tests.helpers import cli, csv_packets, prep_json, teams_yaml, write_config

AS_OF = "2026-11-30"
TEAM = ["rep0@example.com", "rep1@example.com"]
FORECAST = {"pipeline": "Pipeline", "best_case": "Best Case", "commit": "Commit"}


@pytest.fixture(scope="module")
def portal():
    return build_portal([25, 20, 15], closed=6, seed=21)


def hubspot_config(tmp_path, url, retry="{base_delay: 0.001, window_wait: 0.01}"):
    return write_config(
        tmp_path / "hubspot.yaml",
        "crm:\n  kind: hubspot\n"
        f'  hubspot: {{access_token: "${{HUBSPOT_ACCESS_TOKEN}}", base_url: "{url}", retry: {retry}}}\n'
        "state: {path: hs-state.db}\n" + teams_yaml(TEAM),
    )


def local_day(value: str) -> str:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(ZoneInfo("America/New_York")).date().isoformat()


def primary_company(portal, deal) -> str:
    """The name of the deal's primary company (else its first), as the connector shows it."""
    chosen = [cid for cid, primary in deal.companies if primary] or [c for c, _ in deal.companies]
    return portal.companies[chosen[0]]["name"] if chosen else ""


def portal_as_csv(portal) -> list[dict]:
    """The same open deals in the documented import format."""
    owners = {o["id"]: o for o in portal.owners}
    stages = {s["id"]: s["label"] for s in portal.pipelines()["results"][0]["stages"]}
    rows = []
    for deal in portal.deals.values():
        p = deal.properties
        owner = owners[p["hubspot_owner_id"]]
        if p["hs_is_closed"] == "true" or owner["email"] not in TEAM:
            continue
        contacts = []
        for cid, labels in deal.contacts:
            c = portal.contacts[cid]
            text = f"{c['firstname']} {c['lastname']} <{c['email']}>"
            text += f" [{labels[0]}]" if labels else ""
            text += f" ({c['jobtitle']})" if c["jobtitle"] else ""
            contacts.append(text)
        closes = [local_day(e["value"]) for e in reversed(deal.history["closedate"])]
        steps = deal.history["hs_next_step"]
        rows.append(
            {
                "deal_id": deal.id,
                "deal_name": p["dealname"],
                "account": primary_company(portal, deal),
                "owner_email": owner["email"],
                "owner_name": f"{owner['firstName']} {owner['lastName']}",
                "manager_email": "",
                "stage": stages[p["dealstage"]],
                "amount": p["amount"],
                "currency": "USD",
                "close_date": local_day(p["closedate"]),
                "forecast_category": FORECAST[p["hs_forecast_category"]],
                "created_at": p["createdate"],
                "stage_entered_at": p["hs_v2_date_entered_current_stage"],
                "last_activity_at": p["notes_last_updated"],
                "next_step": p["hs_next_step"] or "",
                "next_step_updated_at": steps[0]["timestamp"] if steps else "",
                "contacts": "; ".join(contacts),
                "previous_close_dates": "; ".join(closes[:-1]),
                "is_closed": "",
                "is_won": "",
                "url": f"https://app.hubspot.com/contacts/4242/record/0-3/{deal.id}",
            }
        )
    return rows


def test_hubspot_and_csv_of_the_same_data_give_the_same_packets(tmp_path, portal, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    with FakeHubSpot(portal) as fake:
        hs = prep_json(hubspot_config(tmp_path, fake.url), tmp_path / "hs", AS_OF)
    csv = csv_packets(tmp_path, portal_as_csv(portal), TEAM, AS_OF)
    assert len(hs["packets"]) == 2 and sum(len(p["deals"]) for p in hs["packets"]) == 45
    assert any(d["flags"] for p in hs["packets"] for d in p["deals"])
    assert hs == csv


def test_token_appears_nowhere(tmp_path, portal, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    with FakeHubSpot(portal) as fake:
        config = hubspot_config(tmp_path, fake.url)
        result = cli(
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
        assert result.exit_code == 0
        assert "HubSpot: " in result.stderr and "requests" in result.stderr  # the usage report
        fake.token = "rotated"  # now the token is refused: the error must not echo it
        failed = cli("prep", "-c", config, "-o", tmp_path / "o2", "-v", "--as-of", AS_OF)
    assert failed.exit_code == 3 and "rejected the access token" in failed.stderr
    texts = [result.stdout, result.stderr, failed.stdout, failed.stderr]
    texts += [p.read_text() for p in (tmp_path / "o").iterdir()]
    texts += [p.read_text(errors="replace") for p in tmp_path.glob("*.yaml")]
    assert all(TOKEN not in text for text in texts)


def test_rate_limit_exhausted_exits_4_and_writes_nothing(tmp_path, portal, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    with FakeHubSpot(portal) as fake:
        fake.inject(rate_429=1.0)
        config = hubspot_config(
            tmp_path, fake.url, retry="{max_attempts: 2, base_delay: 0.001, window_wait: 0.01}"
        )
        result = cli("prep", "-c", config, "-o", tmp_path / "out", "--as-of", AS_OF)
    assert result.exit_code == 4
    assert (
        "rate limit TEN_SECONDLY_ROLLING" in result.stderr
        and "Nothing was written" in result.stderr
    )
    assert not (tmp_path / "out").exists()


def test_doctor_checks_token_scopes_and_pipelines(tmp_path, portal, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    with FakeHubSpot(portal) as fake:
        config = hubspot_config(tmp_path, fake.url)
        ok = cli("doctor", "-c", config)
        fake.missing_scopes = True
        scopes = cli("doctor", "-c", config)
    assert ok.exit_code == 0, ok.stdout
    assert "ok   hubspot token" in ok.stdout and "Sales Pipeline (7 stages)" in ok.stdout
    assert "ok   hubspot labels: Decision Maker" in ok.stdout
    assert (
        scopes.exit_code == 2
        and "FAIL hubspot scopes" in scopes.stdout
        and "crm.objects.deals.read" in scopes.stdout
    )


def test_a_commitment_about_no_single_deal_does_not_break_the_next_pull(tmp_path, monkeypatch):
    """A habit commitment has no deal id; the deals "known from the last review" that a CRM
    connector re-reads must not include that missing id (found by the type checker)."""
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    with FakeHubSpot(build_portal([3], seed=5)) as fake:
        config = hubspot_config(tmp_path, fake.url)
        assert (
            cli("prep", "-c", config, "-o", tmp_path / "w1", "--as-of", "2026-11-23").exit_code == 0
        )
        commit = cli(
            "commit", "-c", config, "--rep", TEAM[0], "Ask every buyer about their goal",
            "--as-of", "2026-11-23",
        )  # fmt: skip
        assert commit.exit_code == 0, commit.output
        result = cli("prep", "-c", config, "-o", tmp_path / "w2", "-f", "json", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output + result.stderr
    assert "Ask every buyer about their goal" in (tmp_path / "w2" / "packets.json").read_text()
