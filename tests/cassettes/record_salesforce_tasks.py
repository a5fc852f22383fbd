"""Re-record tests/cassettes/salesforce_tasks.yaml from the fake Salesforce (run from the repo
root):

    .venv/bin/python -m tests.cassettes.record_salesforce_tasks

The write-back's calls with a session (no login): the owners of the opportunities and the users,
a Task collection created, a search by key, the collection closed, one Task deleted. The host is
rewritten to acme.my.salesforce.com and every Authorization header filtered.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import vcr

from leadprep.connectors.salesforce import (
    SalesforceConnector,
    SalesforceSettings,
    SalesforceTaskWriter,
)
from tests.cassettes.record_hubspot_tasks import exercise
from tests.fakes.salesforce_server import TOKEN, FakeSalesforce, build_org

HERE = Path(__file__).resolve().parent
CASSETTE = HERE / "salesforce_tasks.yaml"
INSTANCE = "acme.my.salesforce.com"


def main() -> None:
    org = build_org([2, 2], seed=41)
    opportunity = next(o["Id"] for o in org.opportunities.values() if o["OwnerId"].endswith("0"))
    with tempfile.TemporaryDirectory() as tmp, FakeSalesforce(org, Path(tmp)) as fake:

        def scrub(request):
            request.uri = request.uri.replace(fake.host, INSTANCE)
            return request

        recorder = vcr.VCR(
            record_mode="all", filter_headers=["authorization"], before_record_request=scrub
        )
        settings = SalesforceSettings(
            auth="session",
            instance_url=fake.instance_url,
            access_token=TOKEN,
            ca_bundle=fake.ca_path,
        )
        CASSETTE.unlink(missing_ok=True)
        with recorder.use_cassette(str(CASSETTE)):
            exercise(SalesforceTaskWriter(SalesforceConnector(settings)), opportunity)
    print(f"wrote {CASSETTE} (opportunity {opportunity})")


if __name__ == "__main__":
    main()
