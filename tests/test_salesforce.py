"""The Salesforce connector against a fake Salesforce over HTTPS on loopback."""

import math
from dataclasses import replace
from datetime import date

import pytest
import requests

from leadprep.connectors.salesforce import (
    RetryingSession,
    SalesforceConnector,
    SalesforceSettings,
    parse_history,
)
from leadprep.errors import CRMAuthError, CRMUnavailableError
from leadprep.model import CLOSE_DATE
from leadprep.signals import SIGNALS, Context
from tests.fakes.salesforce_server import TOKEN, FakeSalesforce, build_org

TODAY = date(2026, 11, 30)


def session_settings(fake, **extra):
    retry = {"base_delay": 0.001, **extra.pop("retry", {})}
    return SalesforceSettings(
        auth="session",
        instance_url=fake.instance_url,
        access_token=TOKEN,
        ca_bundle=fake.ca_path,
        retry=retry,
        **extra,
    )


@pytest.fixture(scope="module")
def big_org():
    return build_org([1400, 1100, 300], closed=60, seed=12, max_roles=9)


def test_every_open_opportunity_with_all_children_in_the_fewest_queries(big_org, tmp_path):
    team = {"rep0@example.com", "rep1@example.com"}
    with FakeSalesforce(big_org, tmp_path, child_page_size=4) as fake:
        connector = SalesforceConnector(session_settings(fake))
        deals = {d.id: d for d in connector.fetch(team, TODAY).deals}
        counts = dict(fake.counts)
        queries = list(fake.queries)
    owners = {"0050000000" + "00000", "0050000000" + "00001"}
    expected = {
        o["Id"]: o
        for o in big_org.opportunities.values()
        if not o["IsClosed"] and o["OwnerId"] in owners
    }
    assert set(deals) == set(expected) and len(deals) == 2500
    child_pages = connector.session.usage.tallies.get("child-record pages", 0)
    assert child_pages > 0  # some opportunities had more contact roles than one child page
    assert counts["batch"] == 1  # describes, stages and users in one composite request
    assert counts["query"] == 1  # the opportunity query
    assert counts["query_more"] == math.ceil(2500 / 2000) - 1 + child_pages
    assert sum(counts.values()) == math.ceil(2500 / 2000) + child_pages + 1
    for opp_id, opp in expected.items():
        deal = deals[opp_id]
        roles = sorted(big_org.roles[opp_id], key=lambda r: not r["IsPrimary"])
        assert [c.name for c in deal.contacts] == [r["Contact"]["Name"] for r in roles]
        assert [c.role for c in deal.contacts] == [r["Role"] for r in roles]
        assert len(deal.history_of(CLOSE_DATE)) == len(big_org.histories[opp_id]) - 1
        assert deal.account == (opp["Account"] or {}).get("Name")
        assert deal.url == f"{fake.instance_url}/lightning/r/Opportunity/{opp_id}/view"
    assert all("PushCount" not in q for q in queries)


def test_pushes_come_from_history_and_push_count_is_ignored():
    rows = [
        {
            "StageName": "Qualification",
            "CloseDate": "2026-10-31",
            "Amount": 1000,
            "CreatedDate": "2026-09-01T10:00:00.000+0000",
            "PrevCloseDate": None,
        },
        {
            "StageName": "Qualification",
            "CloseDate": "2026-11-30",
            "Amount": 1000,
            "CreatedDate": "2026-10-20T10:00:00.000+0000",
            "PrevCloseDate": "2026-10-31",
        },
        {
            "StageName": "Proposal/Price Quote",
            "CloseDate": "2026-11-30",
            "Amount": 800,
            "CreatedDate": "2026-11-02T10:00:00.000+0000",
            "PrevCloseDate": None,
        },
        {
            "StageName": "Proposal/Price Quote",
            "CloseDate": "2026-11-20",
            "Amount": 800,
            "CreatedDate": "2026-11-05T10:00:00.000+0000",
            "PrevCloseDate": "2026-11-30",
        },
        {
            "StageName": "Proposal/Price Quote",
            "CloseDate": "2026-12-17",
            "Amount": 800,
            "CreatedDate": "2026-11-10T10:00:00.000+0000",
            "PrevCloseDate": "2026-11-20",
        },
    ]
    changes = parse_history(list(reversed(rows)))  # any order in, oldest first out
    closes = [(c.old.isoformat(), c.new.isoformat()) for c in changes if c.field == CLOSE_DATE]
    assert closes == [
        ("2026-10-31", "2026-11-30"),
        ("2026-11-30", "2026-11-20"),
        ("2026-11-20", "2026-12-17"),
    ]
    assert [c.field for c in changes].count("amount") == 1 and [c.field for c in changes].count(
        "stage"
    ) == 1
    from tests.helpers import make_deal

    deal = make_deal(close_date=date(2026, 12, 17), history=tuple(changes))
    flag = SIGNALS["close_date_slipped"](deal, Context(today=date(2026, 11, 12)))
    assert flag.facts["pushes"] == 2  # two pushes; the pull-in in between is not one
    assert flag.facts["days"] == 30 + 27


def test_null_child_subqueries_mean_no_contacts(tmp_path):
    org = build_org([20], seed=3, max_roles=0)
    with FakeSalesforce(org, tmp_path) as fake:
        deals = SalesforceConnector(session_settings(fake)).fetch(None, TODAY).deals
    assert len(deals) == 20 and all(d.contacts == () for d in deals)


def test_optional_fields_only_when_the_org_has_them(tmp_path):
    org = build_org([10], seed=4)
    org.opportunity_fields -= {"LastStageChangeDate"}
    with FakeSalesforce(org, tmp_path) as fake:
        deals = SalesforceConnector(session_settings(fake)).fetch(None, TODAY).deals
        assert all(
            "LastStageChangeDate" not in q and "CurrencyIsoCode" not in q for q in fake.queries
        )
    assert all(d.stage_entered_at is not None for d in deals)  # from the history instead


def test_a_hidden_optional_field_is_dropped_not_fatal(tmp_path):
    org = build_org([10], seed=4)
    with FakeSalesforce(org, tmp_path) as fake:
        original = fake._describe

        def describe_claims_more(sobject):
            data = original(sobject)
            if sobject == "Opportunity":
                data["fields"].append({"name": "CurrencyIsoCode"})  # described, but not queryable
            return data

        fake._describe = describe_claims_more
        result = SalesforceConnector(session_settings(fake)).fetch(None, TODAY)
    assert len(result.deals) == 10
    assert result.notes == ["fields this org does not have were left out: CurrencyIsoCode"]


def test_limit_exceeded_and_5xx_are_retried_to_the_same_result(tmp_path):
    org = build_org([60, 40], seed=5, max_roles=6)
    with FakeSalesforce(org, tmp_path, child_page_size=2) as fake:
        clean = SalesforceConnector(session_settings(fake)).fetch(None, TODAY).deals
    with FakeSalesforce(org, tmp_path, child_page_size=2) as fake:
        fake.inject(limit_exceeded={2, 7, 30}, fail_5xx={4, 12})
        connector = SalesforceConnector(session_settings(fake))
        noisy = connector.fetch(None, TODAY).deals
    assert connector.session.usage.retries == 5

    def same(deals):  # each fake has its own port, hence its own instance URL
        return [(replace(d, url=None), d.contacts, d.history) for d in deals]

    assert same(noisy) == same(clean)


def test_exhausted_retries_name_the_limit(tmp_path):
    with FakeSalesforce(build_org([3]), tmp_path) as fake:
        fake.inject(always="limit")
        with pytest.raises(CRMUnavailableError, match="REQUEST_LIMIT_EXCEEDED") as info:
            SalesforceConnector(session_settings(fake, retry={"max_attempts": 3})).fetch(
                None, TODAY
            )
        assert fake.total == 3
    assert info.value.exit_code == 4


def test_expired_session_is_an_auth_error_with_the_fix(tmp_path):
    with (
        FakeSalesforce(build_org([3]), tmp_path, token="another-session") as fake,
        pytest.raises(CRMAuthError, match="INVALID_SESSION_ID") as info,
    ):
        SalesforceConnector(session_settings(fake)).fetch(None, TODAY)
    assert info.value.exit_code == 3 and "sf org display" in str(info.value)


class ToFake(requests.adapters.HTTPAdapter):
    """Sends https://login.salesforce.com to the fake (SOAP login has no configurable URL)."""

    def __init__(self, host):
        super().__init__()
        self.host = host

    def send(self, request, **kwargs):
        request.url = request.url.replace("login.salesforce.com", self.host)
        return super().send(request, **kwargs)


def password_connector(fake, password="hunter2"):
    settings = SalesforceSettings(
        auth="password",
        username="integration@example.com",
        password=password,
        security_token="TOKENX",
        ca_bundle=fake.ca_path,
        retry={"base_delay": 0.001},
    )
    session = RetryingSession(settings)
    session.mount("https://login.salesforce.com", ToFake(fake.host))
    return SalesforceConnector(settings, session=session)


def test_password_login(tmp_path):
    with FakeSalesforce(build_org([4], seed=2), tmp_path) as fake:
        deals = password_connector(fake).fetch(None, TODAY).deals
        assert fake.counts["login"] == 1
    assert len(deals) == 4


def test_failed_login_is_not_retried(tmp_path):
    with FakeSalesforce(build_org([4], seed=2), tmp_path) as fake:
        with pytest.raises(CRMAuthError, match="INVALID_LOGIN") as info:
            password_connector(fake, password="wrong").fetch(None, TODAY)
        assert fake.counts["login"] == 1
    assert "security token" in str(info.value)


def test_manager_only_team_pulls_direct_reports(tmp_path):
    org = build_org([5, 3], seed=7)
    org.users.append(
        {
            "Id": "005000000000XYZ",
            "Name": "Other",
            "Email": "other@example.com",
            "IsActive": True,
            "ManagerId": None,
        }
    )
    with FakeSalesforce(org, tmp_path) as fake:
        connector = SalesforceConnector(session_settings(fake), managers={"dana@example.com"})
        deals = connector.fetch(None, TODAY).deals
    assert len(deals) == 8 and {d.manager_email for d in deals} == {"dana@example.com"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"auth": "session"}, "auth 'session' needs instance_url, access_token"),
        ({"auth": "password", "username": "u"}, "auth 'password' needs password"),
        ({"auth": "jwt", "username": "u"}, "auth 'jwt' needs consumer_key, private_key_file"),
        (
            {"auth": "client_credentials", "consumer_key": "k", "consumer_secret": "s"},
            "needs domain set to your My Domain",
        ),
        (
            {"auth": "session", "instance_url": "http://x.my.salesforce.com", "access_token": "t"},
            "must start with https://",
        ),
    ],
)
def test_each_auth_mode_names_its_missing_fields(fields, message):
    from leadprep.config import parse_config
    from leadprep.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config({"crm": {"kind": "salesforce", "salesforce": fields}})
