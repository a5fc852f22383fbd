"""The HubSpot connector against a fake HubSpot on loopback that enforces the real limits."""

import math
from datetime import date

import pytest

from leadprep.connectors import hubspot
from leadprep.connectors.hubspot import HubSpotConnector, HubSpotSettings
from leadprep.errors import CRMAuthError, CRMUnavailableError
from leadprep.model import CLOSE_DATE
from tests.fakes.hubspot_server import TOKEN, FakeHubSpot, build_portal

TODAY = date(2026, 11, 30)
TEAM = {"rep0@example.com", "rep1@example.com", "rep2@example.com"}


def settings(fake, **extra):
    retry = {"base_delay": 0.001, "window_wait": 0.01, **extra.pop("retry", {})}
    return HubSpotSettings(access_token=TOKEN, base_url=fake.url, retry=retry, **extra)


def expected_open(portal, emails):
    owners = {o["id"]: o["email"] for o in portal.owners + portal.archived_owners}
    return {
        d.id: d
        for d in portal.deals.values()
        if d.properties["hs_is_closed"] == "false"
        and owners[d.properties["hubspot_owner_id"]] in emails
    }


@pytest.fixture(scope="module")
def big_portal():
    # three reps in the team, a fourth outside it, and closed deals that must not appear
    return build_portal([400, 350, 250, 40], closed=80, seed=11)


def test_pulls_exactly_the_open_deals_of_the_team_within_the_request_budget(big_portal):
    with FakeHubSpot(big_portal) as fake:
        result = HubSpotConnector(settings(fake)).fetch(TEAM, TODAY)
        counts = dict(fake.counts)
    expected = expected_open(big_portal, TEAM)
    deals = {d.id: d for d in result.deals}
    assert set(deals) == set(expected) and len(deals) == 1000
    n = len(deals)
    contacts = {cid for d in expected.values() for cid, _ in d.contacts}
    companies = {
        next(
            (c for c, primary in d.companies if primary), d.companies[0][0] if d.companies else None
        )
        for d in expected.values()
    } - {None}
    per_owner = [400, 350, 250]
    budget = (
        sum(math.ceil(c / 200) for c in per_owner)
        + math.ceil(n / 50)
        + math.ceil(n / 1000)  # deal→contact associations
        + math.ceil(len(contacts) / 100)
        + math.ceil(n / 1000)  # deal→company associations
        + math.ceil(len(companies) / 100)
        + 4  # owners (active, archived), pipelines, account
    )
    assert sum(counts.values()) <= budget, counts
    assert counts["deal history"] == 20 and counts["search"] <= 6
    assert counts["company associations"] == 1 and counts["companies"] == math.ceil(
        len(companies) / 100
    )

    # contents: stage labels, contacts with roles and titles, company, histories, URLs
    for deal_id, fake_deal in expected.items():
        deal = deals[deal_id]
        primary = [c for c, p in fake_deal.companies if p] or [c for c, _ in fake_deal.companies]
        assert deal.account == (big_portal.companies[primary[0]]["name"] if primary else None)
        assert deal.stage in {
            "Appointment Scheduled",
            "Qualified To Buy",
            "Presentation Scheduled",
            "Decision Maker Bought-In",
            "Contract Sent",
        }
        assert deal.is_open and deal.owner.email in TEAM
        assert [c.email for c in deal.contacts] == [
            big_portal.contacts[cid]["email"] for cid, _ in fake_deal.contacts
        ]
        for contact, (cid, labels) in zip(deal.contacts, fake_deal.contacts, strict=True):
            assert contact.role == (labels[0] if labels else None)
            assert contact.title == big_portal.contacts[cid]["jobtitle"]
        pushes = len(fake_deal.history["closedate"]) - 1
        assert len(deal.history_of(CLOSE_DATE)) == pushes
        assert deal.url == f"https://app.hubspot.com/contacts/4242/record/0-3/{deal_id}"


def test_association_paging_is_followed():
    portal = build_portal([30], seed=5, max_contacts=7)
    with FakeHubSpot(portal, association_page_size=2) as fake:
        deals = HubSpotConnector(settings(fake)).fetch(None, TODAY).deals
    for deal in deals:
        assert len(deal.contacts) == len(portal.deals[deal.id].contacts)


def test_results_past_the_search_cap_are_not_dropped(monkeypatch):
    portal = build_portal([130, 20], seed=9)
    monkeypatch.setattr(hubspot, "SEARCH_RESULT_CAP", 50)
    with FakeHubSpot(portal) as fake:
        fake.result_cap = 50
        deals = HubSpotConnector(settings(fake, search_page_size=20)).fetch(None, TODAY).deals
    assert len(deals) == 150 and len({d.id for d in deals}) == 150


def test_search_page_size_falls_back_to_100():
    portal = build_portal([250], seed=2)
    with FakeHubSpot(portal, search_max_limit=100) as fake:
        deals = HubSpotConnector(settings(fake)).fetch(None, TODAY).deals
        assert fake.counts["search"] == 1 + 3  # the refused 200, then three pages of 100
    assert len(deals) == 250


def test_429s_and_503s_are_retried_to_the_same_result():
    portal = build_portal([120, 80], seed=4)
    with FakeHubSpot(portal) as fake:
        clean = HubSpotConnector(settings(fake)).fetch(None, TODAY).deals
    with FakeHubSpot(portal) as fake:
        fake.inject(rate_429=0.2, fail_5xx={2, 5, 9})
        connector = HubSpotConnector(settings(fake))
        noisy = connector.fetch(None, TODAY).deals
        assert connector.client.usage.retries >= 5
    assert noisy == clean
    assert [d.contacts for d in noisy] == [d.contacts for d in clean]
    assert [d.history for d in noisy] == [d.history for d in clean]


def test_429_without_retry_after_waits_out_the_window():
    portal = build_portal([5], seed=4)
    slept = []
    with FakeHubSpot(portal) as fake:
        fake.inject(rate_429=0.0, fail_5xx=set())
        fake.fault = lambda n, path: (
            (429, {}, {"policyName": "TEN_SECONDLY_ROLLING"}) if n == 1 else None
        )
        connector = HubSpotConnector(settings(fake, retry={"window_wait": 10.0}))
        connector.client.sleep = slept.append
        connector.fetch(None, TODAY)
    assert slept == [10.0]


def test_exhausted_retries_name_the_limit():
    portal = build_portal([5], seed=4)
    with FakeHubSpot(portal) as fake:
        fake.inject(rate_429=1.0)
        with pytest.raises(CRMUnavailableError, match="TEN_SECONDLY_ROLLING") as info:
            HubSpotConnector(settings(fake, retry={"max_attempts": 3})).fetch(None, TODAY)
        assert (
            fake.total == 3 * 4
        )  # each of the four metadata reads (made in parallel) tried 3 times
    assert info.value.exit_code == 4


def test_bad_token_and_missing_scopes_are_auth_errors():
    portal = build_portal([5], seed=4)
    with FakeHubSpot(portal, token="something-else") as fake:
        with pytest.raises(CRMAuthError, match="rejected the access token") as info:
            HubSpotConnector(settings(fake)).fetch(None, TODAY)
        assert info.value.exit_code == 3 and "Private Apps" in str(info.value)
        assert fake.total == 4  # a 401 is not retried: one try for each parallel metadata read
    with FakeHubSpot(portal, missing_scopes=True) as fake:
        with pytest.raises(CRMAuthError, match="403 MISSING_SCOPES") as info:
            HubSpotConnector(settings(fake)).fetch(None, TODAY)
        assert "crm.objects.deals.read, crm.objects.contacts.read, crm.objects.owners.read" in str(
            info.value
        )


def test_archived_owners_are_resolved_and_unknown_reps_noted():
    portal = build_portal([10, 5], seed=8, archived_owner=True)
    with FakeHubSpot(portal) as fake:
        result = HubSpotConnector(settings(fake)).fetch(
            {"rep0@example.com", "ghost@example.com"}, TODAY
        )
    assert len(result.deals) == 10 and {d.owner.email for d in result.deals} == {"rep0@example.com"}
    assert result.notes == ["not HubSpot owners (no deals pulled): ghost@example.com"]


def test_known_deals_that_closed_are_read_back():
    portal = build_portal([10], closed=4, seed=6)
    closed = sorted(d.id for d in portal.deals.values() if d.properties["hs_is_closed"] == "true")
    with FakeHubSpot(portal) as fake:
        result = HubSpotConnector(settings(fake)).fetch(None, TODAY, frozenset(closed) | {"999999"})
    states = {d.id: (d.is_closed, d.is_won) for d in result.deals}
    assert len(result.deals) == 14 and "999999" not in states
    for deal_id in closed:
        won = portal.deals[deal_id].properties["dealstage"] == "closedwon"
        assert states[deal_id] == (True, won)


def test_unknown_pipeline_is_a_config_error():
    from leadprep.errors import ConfigError

    portal = build_portal([3], seed=1)
    with FakeHubSpot(portal) as fake, pytest.raises(ConfigError, match="enterprise"):
        HubSpotConnector(settings(fake, pipelines=["enterprise"])).fetch(None, TODAY)


def test_client_side_throttle_keeps_search_under_four_per_second():
    portal = build_portal([2000], seed=3, max_contacts=0)
    with FakeHubSpot(portal) as fake:
        connector = HubSpotConnector(settings(fake))
        connector.fetch(None, TODAY)
        assert fake.rate_limited == 0 and fake.counts["search"] == 10


def test_sliding_window_limiter_waits_exactly_for_the_oldest_slot():
    from leadprep.connectors.ratelimit import SlidingWindowLimiter

    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(round(seconds, 3))
        now[0] += seconds

    limiter = SlidingWindowLimiter(4, 1.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        assert limiter.acquire() == 0.0
        now[0] += 0.1
    assert limiter.acquire() == pytest.approx(0.6)  # the first slot frees at t=1.0
    assert slept == [0.6] and limiter.waited == pytest.approx(0.6)


def test_without_the_companies_scope_the_pull_goes_on_without_company_names():
    portal = build_portal([4], seed=3)
    forbidden = frozenset({"company associations", "companies"})
    with FakeHubSpot(portal, forbidden=forbidden) as fake:
        result = HubSpotConnector(settings(fake)).fetch(None, TODAY)
    assert len(result.deals) == 4 and all(d.account is None for d in result.deals)
    assert any("crm.objects.companies.read" in note for note in result.notes)
