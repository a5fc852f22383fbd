"""Replays a recorded Salesforce password login and pull (vcrpy, no network). The cassette was
recorded against the project's own fake (tests/fakes/salesforce_server.py, built from the
documented shapes), not a live org: it pins leadprep's requests and parsing, not Salesforce's
behaviour."""

from datetime import date
from pathlib import Path

import vcr

from leadprep.connectors.salesforce import SalesforceConnector, SalesforceSettings
from leadprep.model import CLOSE_DATE

CASSETTE = Path(__file__).parent / "cassettes" / "salesforce_pull.yaml"
# The login body is not matched: its credentials are scrubbed in the cassette.
replay = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "port", "path", "query"])


def test_replayed_login_and_pull():
    settings = SalesforceSettings(
        auth="password", username="someone@example.com", password="any", security_token="any"
    )
    with replay.use_cassette(str(CASSETTE)) as cassette:
        result = SalesforceConnector(settings).fetch(None, date(2026, 11, 30))
        assert cassette.all_played
    deals = result.deals
    assert len(deals) == 5 and all(d.is_open for d in deals)
    assert all(
        d.url.startswith("https://acme.my.salesforce.com/lightning/r/Opportunity/") for d in deals
    )
    assert max(len(d.contacts) for d in deals) >= 3  # child pages of 2 were followed
    assert any(d.history_of(CLOSE_DATE) for d in deals)
    assert {d.owner.email for d in deals} == {"rep0@example.com", "rep1@example.com"}


def test_cassette_holds_no_credentials():
    text = CASSETTE.read_text()
    for secret in ("hunter2", "TOKENX", "integration@example.com", "00DFAKE0000000!", "127.0.0.1"):
        assert secret not in text
    assert "PASSWORD_FILTERED" in text and "SESSION_ID_FILTERED" in text
    assert "authorization" not in text.lower()


def test_replayed_task_calls_write_close_find_and_delete():
    """The write-back's calls as recorded (tests/cassettes/record_salesforce_tasks.py), bodies
    matched, so a change in what leadprep sends shows here."""
    from leadprep.connectors.salesforce import SalesforceTaskWriter
    from leadprep.tasks import Written
    from tests.cassettes.record_hubspot_tasks import specs

    tasks = Path(__file__).parent / "cassettes" / "salesforce_tasks.yaml"
    strict = vcr.VCR(
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path", "query", "body"],
        filter_headers=["authorization"],
    )
    settings = SalesforceSettings(
        auth="session", instance_url="https://acme.my.salesforce.com", access_token="any"
    )
    opportunity = "006000000000001AAA"
    with strict.use_cassette(str(tasks)) as cassette:
        writer = SalesforceTaskWriter(SalesforceConnector(settings))
        written = writer.create(specs(opportunity))
        assert all(isinstance(w, Written) for w in written.values())
        ids = [w.remote_id for w in written.values() if isinstance(w, Written)]
        assert writer.find([s.key for s in specs(opportunity)]) == dict(
            zip(written, ids, strict=True)
        )
        closed = writer.update(list(zip(ids, specs(opportunity, completed=True), strict=True)))
        assert all(isinstance(w, Written) for w in closed.values())
        writer.delete(ids[1:])
        assert cassette.all_played
    text = tasks.read_text()
    assert "127.0.0.1" not in text and "authorization" not in text.lower()
