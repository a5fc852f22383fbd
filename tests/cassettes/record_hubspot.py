"""Re-record tests/cassettes/hubspot_pull.yaml from the fake HubSpot (run from the repo root):

    .venv/bin/python -m tests.cassettes.record_hubspot

The cassette's host is rewritten to api.hubapi.com and the Authorization header is filtered, so the
replay test runs the connector exactly as it would run against HubSpot, with no secret stored.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import vcr

from leadprep.connectors.hubspot import HubSpotConnector, HubSpotSettings
from tests.fakes.hubspot_server import TOKEN, FakeHubSpot, build_portal

HERE = Path(__file__).resolve().parent

CASSETTE = HERE / "hubspot_pull.yaml"
PORTAL = dict(open_per_owner=[3, 2], closed=1, seed=30, max_contacts=4)


def recorder(fake: FakeHubSpot) -> vcr.VCR:
    """Records as if from api.hubapi.com, with the Authorization header filtered out."""
    local = urlparse(fake.url).netloc

    def to_hubspot(request):
        request.uri = request.uri.replace(f"http://{local}", "https://api.hubapi.com")
        return request

    return vcr.VCR(
        record_mode="all",
        filter_headers=["authorization"],
        before_record_request=to_hubspot,
        decode_compressed_response=True,
    )


def main() -> None:
    with FakeHubSpot(build_portal(**PORTAL), association_page_size=2) as fake:
        CASSETTE.unlink(missing_ok=True)
        with recorder(fake).use_cassette(str(CASSETTE)):
            settings = HubSpotSettings(access_token=TOKEN, base_url=fake.url, concurrency=1)
            HubSpotConnector(settings).fetch(None, date(2026, 11, 30))
    print(f"wrote {CASSETTE}")


if __name__ == "__main__":
    main()
