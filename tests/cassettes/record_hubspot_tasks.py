"""Re-record tests/cassettes/hubspot_tasks.yaml from the fake HubSpot (run from the repo root):

    .venv/bin/python -m tests.cassettes.record_hubspot_tasks

The task calls of the write-back: the owners page, a batch create (one task on a deal, one on no
deal), a search by key, a batch update closing them, and an archive. The host is rewritten to
api.hubapi.com and the Authorization header filtered: no secret is stored.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from leadprep.connectors.hubspot import HubSpotClient, HubSpotSettings, HubSpotTaskWriter
from leadprep.tasks import TaskSpec, TaskWriter
from tests.cassettes.record_hubspot import recorder
from tests.fakes.hubspot_server import TOKEN, FakeHubSpot, build_portal

HERE = Path(__file__).resolve().parent
CASSETTE = HERE / "hubspot_tasks.yaml"


def specs(deal_id: str, completed: bool = False) -> list[TaskSpec]:
    """The two tasks the cassette writes: on a deal, and about a habit (no deal)."""
    return [
        TaskSpec(1, "LP000000000001", "Book the CFO call by Friday [LP000000000001]",
                 "Committed in the pipeline review of 2026-11-30 with Dana Kim.",
                 date(2026, 12, 4), "rep0@example.com", deal_id, completed),
        TaskSpec(2, "LP000000000002", "Open every call with the buyer's goal [LP000000000002]",
                 "Committed in the pipeline review of 2026-11-30 with Dana Kim.",
                 date(2026, 12, 7), "rep1@example.com", None, completed),
    ]  # fmt: skip


def exercise(writer: TaskWriter, deal_id: str) -> None:
    """What both CRMs' cassettes record: create two, find them by key, close them, delete one."""
    written = writer.create(specs(deal_id))
    writer.find([s.key for s in specs(deal_id)])
    ids = [written[s.key].remote_id for s in specs(deal_id)]  # type: ignore[union-attr]
    writer.update(list(zip(ids, specs(deal_id, completed=True), strict=True)))
    writer.delete(ids[1:])


def main() -> None:
    portal = build_portal([2, 2], seed=31)
    deal_id = next(iter(portal.deals))
    with FakeHubSpot(portal) as fake:
        CASSETTE.unlink(missing_ok=True)
        with recorder(fake).use_cassette(str(CASSETTE)):
            writer = HubSpotTaskWriter(
                HubSpotClient(HubSpotSettings(access_token=TOKEN, base_url=fake.url))
            )
            exercise(writer, deal_id)
    print(f"wrote {CASSETTE} (deal {deal_id})")


if __name__ == "__main__":
    main()
