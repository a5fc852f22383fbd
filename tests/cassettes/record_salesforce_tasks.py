"""Re-record tests/cassettes/salesforce_tasks.yaml from the fake Salesforce (run from the repo
root):

    .venv/bin/python -m tests.cassettes.record_salesforce_tasks

The write-back's calls with a session (no login): the owners of the opportunities and the users,
a Task collection created, a search by key, the collection closed, one Task deleted. The host is
rewritten to acme.my.salesforce.com and every Authorization header filtered.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import vcr

from leadprep.connectors.salesforce import (
    SalesforceConnector,
    SalesforceSettings,
    SalesforceTaskWriter,
)
from leadprep.tasks import TaskSpec
from tests.fakes.salesforce_server import TOKEN, FakeSalesforce, build_org

HERE = Path(__file__).resolve().parent
CASSETTE = HERE / "salesforce_tasks.yaml"
INSTANCE = "acme.my.salesforce.com"


def specs(opportunity: str, completed: bool = False) -> list[TaskSpec]:
    """The two Tasks the cassette writes: on an opportunity, and about a habit (no deal)."""
    return [
        TaskSpec(1, "LP0000000000A1", "Walk the CFO through pricing by Thursday [LP0000000000A1]",
                 "Committed in the pipeline review of 2026-11-30 with Dana Kim.",
                 date(2026, 12, 3), "rep0@example.com", opportunity, completed),
        TaskSpec(2, "LP0000000000A2", "Open every call with the buyer's goal [LP0000000000A2]",
                 "Committed in the pipeline review of 2026-11-30 with Dana Kim.",
                 date(2026, 12, 7), "rep1@example.com", None, completed),
    ]  # fmt: skip


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
            writer = SalesforceTaskWriter(SalesforceConnector(settings))
            written = writer.create(specs(opportunity))
            writer.find([s.key for s in specs(opportunity)])
            ids = [written[s.key].remote_id for s in specs(opportunity)]  # type: ignore[union-attr]
            writer.update(list(zip(ids, specs(opportunity, completed=True), strict=True)))
            writer.delete(ids[1:])
    print(f"wrote {CASSETTE} (opportunity {opportunity})")


if __name__ == "__main__":
    main()
