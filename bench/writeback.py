"""Requests a week of write-back takes (``python -m bench.writeback``): K commitments written as
tasks, then closed with their outcome, against the fake HubSpot and Salesforce, counted by kind
and set beside the floor the APIs' batch sizes allow. Results go to bench/writeback-results.md.
Measurements, never assertions.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from leadprep.config import Config, parse_config
from leadprep.connectors import connector_for
from leadprep.model import NewCommitment
from leadprep.store import Store
from leadprep.writeback import manager_names, sync, writer_of
from tests.fakes.hubspot_server import TOKEN as HUBSPOT_TOKEN
from tests.fakes.hubspot_server import FakeHubSpot, build_portal
from tests.fakes.salesforce_server import TOKEN as SF_TOKEN
from tests.fakes.salesforce_server import FakeSalesforce, build_org

HERE = Path(__file__).parent
AS_OF = date(2026, 11, 30)


def week(
    config: Config, deals: list[tuple[str, str]], k: int, counts: Callable[[], dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Record k commitments (one per deal, round the deals), sync; follow them all up, sync."""
    managers = manager_names(config)
    out = {}
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "s.db") as store:
        items = [
            NewCommitment(deal_id, None, owner, f"Commitment {n} on {deal_id}", None, AS_OF)
            for n, (deal_id, owner) in enumerate(deals[i % len(deals)] for i in range(k))
        ]
        ids = store.commitments.add(items)
        before = dict(counts())
        sync(store, writer_of(connector_for(config)), managers)  # a new run: a new connector
        out["write"] = _delta(before, counts())
        for cid in ids:
            store.commitments.follow_up(cid, status="kept", note=None, on=AS_OF + timedelta(7))
        before = dict(counts())
        sync(store, writer_of(connector_for(config)), managers)
        out["close"] = _delta(before, counts())
    return out


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def hubspot(k: int) -> tuple[dict[str, Any], dict[str, int]]:
    import os

    os.environ["BENCH_HUBSPOT_TOKEN"] = HUBSPOT_TOKEN
    portal = build_portal([20] * 10, seed=3)
    with FakeHubSpot(portal, search_per_second=None, burst_per_10s=None) as fake:
        config = parse_config(
            {"crm": {"kind": "hubspot", "hubspot": {
                "access_token": "${BENCH_HUBSPOT_TOKEN}", "base_url": fake.url,
                "write_back": {"tasks": True}}}}
        )  # fmt: skip
        owners = {o["id"]: o["email"] for o in portal.owners}
        deals = [(d.id, owners[d.properties["hubspot_owner_id"]]) for d in portal.deals.values()]
        measured = week(config, deals, k, lambda: dict(fake.counts))
    batches = math.ceil(k / 100)
    return measured, {"write": batches + 1, "close": batches + 1}  # + the owners page


def salesforce(k: int) -> tuple[dict[str, Any], dict[str, int]]:
    import os

    os.environ["BENCH_SF_TOKEN"] = SF_TOKEN
    org = build_org([20] * 10, seed=3)
    with tempfile.TemporaryDirectory() as folder, FakeSalesforce(org, Path(folder)) as fake:
        config = parse_config(
            {"crm": {"kind": "salesforce", "salesforce": {
                "auth": "session", "instance_url": fake.instance_url,
                "access_token": "${BENCH_SF_TOKEN}", "ca_bundle": str(fake.ca_path),
                "write_back": {"tasks": True}}}}
        )  # fmt: skip
        users = {u["Id"]: u["Email"] for u in org.users}
        deals = [(o["Id"], users[o["OwnerId"]]) for o in org.opportunities.values()]
        measured = week(config, deals, k, lambda: dict(fake.counts))
    batches = math.ceil(k / 200)
    # the writes, and the owners of all the opportunities and users, in two queries (leadprep
    # asks both per batch of 200: two more queries per batch past the first)
    return measured, {"write": batches + 2, "close": batches + 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commitments", type=int, default=250)
    k = parser.parse_args().commitments
    lines = [
        "# Write-back requests",
        "",
        f"A week of {k} commitments written as tasks, then closed with their outcome (each a new "
        "run: a new connector), against the fakes. The floor is what the APIs' batch sizes "
        "allow (HubSpot: 100 tasks a batch, plus the one owners page that maps reps to owners; "
        "Salesforce: 200 records a collection, plus two queries for the opportunities' owners "
        "and the reps' users; leadprep asks those two per batch, so two more per 200 past the "
        "first).",
        "",
        "| CRM | step | requests (by kind) | total | floor |",
        "|---|---|---|---:|---:|",
    ]
    for name, run in (("HubSpot", hubspot), ("Salesforce", salesforce)):
        measured, floor = run(k)
        for step in ("write", "close"):
            kinds = measured[step]
            shown = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
            lines.append(f"| {name} | {step} | {shown} | {sum(kinds.values())} | {floor[step]} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "writeback-results.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
