"""Replays recorded HubSpot traffic (vcrpy, no network). The cassette was recorded against the
project's own fake (tests/fakes/hubspot_server.py, built from the documented shapes and the
public SDK's test fixtures in shared/reference), not against a live portal: it pins the
requests leadprep makes and its parsing of those shapes, not HubSpot's behaviour."""

from datetime import date
from pathlib import Path

import pytest
import vcr

from leadprep.connectors.hubspot import HubSpotConnector, HubSpotSettings
from leadprep.model import CLOSE_DATE
from tests.fakes.hubspot_server import TOKEN

CASSETTE = Path(__file__).parent / "cassettes" / "hubspot_pull.yaml"
replay = vcr.VCR(
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "query", "body"],
    filter_headers=["authorization"],
)


@pytest.fixture
def deals():
    with replay.use_cassette(str(CASSETTE)) as cassette:
        # one request at a time: vcrpy records and replays threads unreliably
        settings = HubSpotSettings(
            access_token=TOKEN, base_url="https://api.hubapi.com", concurrency=1
        )
        result = HubSpotConnector(settings).fetch(None, date(2026, 11, 30))
        assert cassette.all_played
    return {d.id: d for d in result.deals}


def test_replayed_pull_parses_every_deal(deals):
    assert len(deals) == 5
    for deal in deals.values():
        assert deal.is_open and deal.owner.email.endswith("@example.com")
        assert deal.stage in {
            "Appointment Scheduled",
            "Qualified To Buy",
            "Presentation Scheduled",
            "Decision Maker Bought-In",
            "Contract Sent",
        }
        assert deal.url.startswith("https://app.hubspot.com/contacts/4242/record/0-3/")
        assert deal.close_date is not None and deal.amount is not None
    # association paging (2 per page) was followed, and at least one deal carries close-date history
    assert max(len(d.contacts) for d in deals.values()) >= 3
    assert any(d.history_of(CLOSE_DATE) for d in deals.values())
    assert any(
        c.role for d in deals.values() for c in d.contacts
    )  # association labels became roles
    assert any(d.account and d.account.startswith("Company ") for d in deals.values())


def test_cassette_holds_no_secret():
    text = CASSETTE.read_text()
    assert TOKEN not in text and "authorization" not in text.lower()
    assert "127.0.0.1" not in text


def test_replayed_task_calls_write_close_find_and_archive():
    """The write-back's calls as recorded (tests/cassettes/record_hubspot_tasks.py): the bodies
    must match what was recorded, byte for byte, so a change in what leadprep sends shows here."""
    from leadprep.connectors.hubspot import HubSpotClient, HubSpotTaskWriter
    from leadprep.tasks import Written
    from tests.cassettes.record_hubspot_tasks import specs

    tasks = Path(__file__).parent / "cassettes" / "hubspot_tasks.yaml"
    with replay.use_cassette(str(tasks)) as cassette:
        settings = HubSpotSettings(access_token=TOKEN, base_url="https://api.hubapi.com")
        writer = HubSpotTaskWriter(HubSpotClient(settings))
        written = writer.create(specs("10007"))
        assert all(isinstance(w, Written) for w in written.values())
        ids = [w.remote_id for w in written.values() if isinstance(w, Written)]
        assert writer.find([s.key for s in specs("10007")]) == dict(zip(written, ids, strict=True))
        closed = writer.update(list(zip(ids, specs("10007", completed=True), strict=True)))
        assert all(isinstance(w, Written) for w in closed.values())
        writer.delete(ids[1:])
        assert cassette.all_played
