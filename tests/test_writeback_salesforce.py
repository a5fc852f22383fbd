"""Commitments written back to Salesforce as Tasks, exactly once whatever fails: against the fake
org with sObject Collections, the org's request limit, and creates that act and then lose their
answer."""

from __future__ import annotations

import json
import random
import time

import pytest

from tests.fakes.salesforce_server import TOKEN, FakeSalesforce, build_org
from tests.helpers import cli, teams_yaml, write_config
from tests.test_writeback import commit_on_the_page, run_syncs

AS_OF = "2026-11-30"
REPS = ["rep0@example.com", "rep1@example.com"]


@pytest.fixture
def salesforce(tmp_path, monkeypatch):
    monkeypatch.setenv("SF_ACCESS_TOKEN", TOKEN)
    org = build_org([8, 8], seed=6)
    with FakeSalesforce(org, tmp_path) as fake:
        config = write_config(
            tmp_path / "sf.yaml",
            "crm:\n  kind: salesforce\n  salesforce:\n    auth: session\n"
            f"    instance_url: {fake.instance_url}\n"
            '    access_token: "${SF_ACCESS_TOKEN}"\n'
            f"    ca_bundle: {fake.ca_path}\n    retry: {{base_delay: 0.001, max_attempts: 4}}\n"
            "    write_back: {tasks: true, search_settle: 0}\n"
            "state: {path: state.db}\n" + teams_yaml(REPS),
        )
        assert cli("prep", "-c", config, "-o", tmp_path / "out", "--as-of", AS_OF).exit_code == 0
        yield fake, config, org


def open_opportunities(org):
    return [o for o in org.opportunities.values() if not o.get("IsClosed")]


def commit_each(config, org, how_many):
    made = []
    for opp in open_opportunities(org)[:how_many]:
        text = f"Walk the CFO through the {opp['Name']} pricing by Thursday"
        result = cli(
            "commit", "-c", config, opp["Id"], text, "--as-of", AS_OF, "--due", "2026-12-03"
        )
        assert result.exit_code == 0, result.output + result.stderr
        made.append((opp, text))
    return made


def test_every_commitment_becomes_one_task_on_its_opportunity_despite_lost_answers(salesforce):
    fake, config, org = salesforce
    fake.lose(0.15, seed=3)
    rng = random.Random(2)
    fake.inject(limit_exceeded={n for n in range(1, 5000) if rng.random() < 0.1})
    made = commit_each(config, org, 12)
    taken = {opp["Id"] for opp, _ in made}
    made += commit_on_the_page(config, org.opportunities.get, taken, due="2026-12-03")
    for n in range(3):
        run_syncs(config, rounds=3)
        out = config.parent / f"prep{n}"
        assert cli("prep", "-c", config, "-o", out, "--as-of", AS_OF).exit_code in (0, 1)
        time.sleep(0.05)
    assert fake.lost >= 1, "the faults happened"
    tasks = list(org.tasks.values())
    assert len(tasks) == len(made) == fake.task_creates, "exactly one Task per commitment"
    for opp, text in made:
        (task,) = [t for t in tasks if t["Subject"].startswith(text)]
        assert task["WhatId"] == opp["Id"] and task["OwnerId"] == opp["OwnerId"]
        assert task["ActivityDate"] == "2026-12-03" and task["Status"] == "Not Started"
        assert "leadprep key: LP" in task["Description"]


def test_following_up_closes_each_task_once_and_a_refusal_is_said_once(salesforce):
    fake, config, org = salesforce
    commit_each(config, org, 2)
    ids = [c["id"] for c in json.loads(cli("commitments", "-c", config, "--format", "json").stdout)]
    for cid in ids:
        assert cli("followup", "-c", config, str(cid), "--kept", "--as-of", AS_OF).exit_code == 0
    assert all(t["Status"] == "Completed" for t in org.tasks.values())
    assert all("Kept." in t["Description"] for t in org.tasks.values())
    gone = open_opportunities(org)[5]
    org.opportunities.pop(gone["Id"])  # deleted in Salesforce since the review
    made = cli("commit", "-c", config, gone["Id"], "Send Ana the plan by Friday", "--as-of", AS_OF)
    assert made.exit_code == 0 and "INVALID_CROSS_REFERENCE_KEY" in made.stderr
    before = fake.task_creates
    assert cli("sync", "-c", config).exit_code == 0 and fake.task_creates == before


def test_doctor_says_whether_the_user_may_write_tasks(salesforce):
    fake, config, _ = salesforce
    assert (
        "ok   salesforce write-back: Tasks can be created and edited"
        in cli("doctor", "-c", config).stdout
    )
    fake.task_writable = False
    refused = cli("doctor", "-c", config)
    assert refused.exit_code != 0 and "FAIL salesforce write-back" in refused.stdout
