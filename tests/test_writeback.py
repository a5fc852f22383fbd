"""Commitments written back to HubSpot as tasks, exactly once whatever fails: against the fake
HubSpot with its task endpoints, 429s, and batch creates that act and then lose their answer."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, timedelta

import pytest

from leadprep.config import load_config
from leadprep.connectors import connector_for
from leadprep.store import Store
from leadprep.writeback import manager_names, sync, writer_of
from tests.fakes.hubspot_server import FakeHubSpot, build_portal
from tests.helpers import cli, teams_yaml, write_config

AS_OF = "2026-11-30"
REPS = ["rep0@example.com", "rep1@example.com", "rep2@example.com"]


@pytest.fixture
def hubspot(tmp_path, monkeypatch):
    from tests.fakes.hubspot_server import TOKEN

    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    portal = build_portal([6, 6, 6], seed=8)
    with FakeHubSpot(portal, search_per_second=None, burst_per_10s=None) as fake:
        config = write_config(
            tmp_path / "hubspot.yaml",
            "crm:\n  kind: hubspot\n  hubspot:\n"
            f'    access_token: "${{HUBSPOT_ACCESS_TOKEN}}"\n    base_url: "{fake.url}"\n'
            "    retry: {base_delay: 0.001, window_wait: 0.01, max_attempts: 4}\n"
            "    write_back: {tasks: true, search_settle: 0.3}\n"
            "state: {path: state.db}\n" + teams_yaml(REPS),
        )
        assert cli("prep", "-c", config, "-o", tmp_path / "out", "--as-of", AS_OF).exit_code == 0
        yield fake, config, portal


def commit_each(config, portal, how_many):
    """One commitment per deal, through the CLI, for the first ``how_many`` deals."""
    made = []
    for deal in list(portal.deals.values())[:how_many]:
        text = f"Book the CFO call on {deal.properties['dealname']} by Friday"
        result = cli("commit", "-c", config, deal.id, text, "--as-of", AS_OF, "--due", "2026-12-04")
        assert result.exit_code == 0, result.output + result.stderr
        made.append((deal, text))
    return made


def run_syncs(config, *, threads=3, rounds=6):
    """Several syncs at once (each its own process's worth: store, connector), several times."""
    cfg = load_config(config)
    managers = manager_names(cfg)
    errors = []

    def one():
        try:
            with Store.open(cfg.state_path()) as store:
                writer = writer_of(connector_for(cfg))
                sync(store, writer, managers, settle=timedelta(seconds=0.3))
        except Exception as exc:  # a test failure, reported below
            errors.append(exc)

    for _ in range(rounds):
        workers = [threading.Thread(target=one) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert errors == []
    return cfg


def test_every_commitment_becomes_one_task_on_its_deal_despite_lost_answers(hubspot):
    fake, config, portal = hubspot
    fake.task_api.lose(0.1)
    fake.task_api.index_delay = 0.1  # search shows a new task a moment later
    fake.inject(rate_429=0.1, seed=4)
    made = commit_each(config, portal, 12)
    made += commit_on_the_page(config, portal.deals.get, {deal.id for deal, _ in made})
    for n in range(4):  # lost answers wait for the search to settle, then are settled
        run_syncs(config)
        out = config.parent / f"prep{n}"
        assert cli("prep", "-c", config, "-o", out, "--as-of", AS_OF).exit_code in (0, 1)
        time.sleep(0.35)
    run_syncs(config)
    tasks = fake.task_api.tasks
    assert fake.task_api.lost >= 1, "the faults happened (else raise the share or change seed)"
    assert len(tasks) == len(made) == fake.task_api.creates, "exactly one task per commitment"
    owners = {o["email"]: o["id"] for o in portal.owners}
    by_subject = {t["properties"]["hs_task_subject"]: t for t in tasks.values()}
    for deal, text in made:
        (task,) = [t for s, t in by_subject.items() if s.startswith(text)]
        props = task["properties"]
        assert task["deals"] == [deal.id]
        assert props["hs_timestamp"].startswith("2026-12-04")
        assert props["hs_task_status"] == "NOT_STARTED"
        assert props["hubspot_owner_id"] == owners[deal_owner_email(portal, deal)]
        assert "Dana Kim" in props["hs_task_body"] and "leadprep key: LP" in props["hs_task_body"]


def commit_on_the_page(config, deal_of, taken, due="2026-12-04"):
    """One commitment per rep through the review page, each on a deal not yet committed to;
    ``deal_of`` maps a deal id to the test's own record of it."""
    from tests.test_review import csrf_of, make_app, running

    made = []
    app, _ = make_app(config, as_of=date(2026, 11, 30))
    with running(app) as client:
        index = client.get("/").text
        slugs = sorted(
            {part.split('"', 1)[0].split("/")[0] for part in index.split('href="/rep/')[1:]}
        )
        for slug in slugs:
            page = client.get(f"/rep/{slug}").text
            options = [o.split('"', 1)[0] for o in page.split('<option value="')[1:]]
            deal_id = next(o for o in options if o and o not in taken)
            text = f"Confirm the signer on {deal_id} by Wednesday"
            form = {"csrf": csrf_of(page), "text": text, "deal_id": deal_id,
                    "due": due, "success": "", "second": "keep"}  # fmt: skip
            assert client.post(f"/rep/{slug}/commit", data=form).status_code == 303
            made.append((deal_of(deal_id), text))
    return made


def deal_owner_email(portal, deal):
    owner_id = deal.properties["hubspot_owner_id"]
    return next(o["email"] for o in portal.owners if o["id"] == owner_id)


def test_following_up_closes_each_task_once_with_its_outcome(hubspot):
    fake, config, portal = hubspot
    commit_each(config, portal, 3)
    run_syncs(config, rounds=1)
    listed = cli("commitments", "-c", config, "--format", "json")
    ids = [c["id"] for c in json.loads(listed.stdout)]
    outcomes = ["--kept", "--partly", "--missed"]
    for cid, how in zip(ids, outcomes, strict=True):
        assert cli("followup", "-c", config, str(cid), how, "--as-of", AS_OF).exit_code == 0
    before = fake.counts["tasks update"]
    run_syncs(config, threads=3, rounds=3)
    run_syncs(config, threads=1, rounds=1)
    assert fake.counts["tasks update"] - before <= 1  # one batch closed them all, once
    bodies = sorted(t["properties"]["hs_task_body"] for t in fake.task_api.tasks.values())
    assert all(
        t["properties"]["hs_task_status"] == "COMPLETED" for t in fake.task_api.tasks.values()
    )
    assert any("Kept." in b for b in bodies) and any("Partly kept." in b for b in bodies)
    assert any("Missed." in b for b in bodies)
    listed = cli("commitments", "-c", config, "--all")
    assert listed.stdout.count("closed") == 3, listed.stdout


def test_a_commitment_recorded_while_hubspot_is_down_is_written_by_the_next_sync(hubspot):
    fake, config, portal = hubspot
    fake.inject(fail_5xx=set(range(1, 10_000)))  # every request answers 503
    ((_deal, text),) = commit_each(config, portal, 1)  # the commit itself succeeds at once
    assert fake.task_api.tasks == {}  # a 503 before HubSpot acted: nothing written
    fake.fault = None  # HubSpot is back
    time.sleep(0.35)  # a create that may have acted is looked for before it is redone
    result = cli("sync", "-c", config)
    assert result.exit_code == 0, result.output + result.stderr
    assert [
        t["properties"]["hs_task_subject"].startswith(text) for t in fake.task_api.tasks.values()
    ] == [True]


def test_a_refused_task_is_reported_once_and_not_tried_again(hubspot):
    fake, config, portal = hubspot
    deal = next(iter(portal.deals.values()))
    portal.deals.pop(deal.id)  # deleted in HubSpot since the review was prepared
    text = "Book the CFO call by Friday"
    made = cli("commit", "-c", config, deal.id, text, "--as-of", AS_OF)
    assert made.exit_code == 0, made.output  # recorded all the same
    assert "refused a task" in made.stderr and f"deal {deal.id} does not exist" in made.stderr
    creates = fake.counts["tasks create"]
    again = cli("sync", "-c", config)
    assert again.exit_code == 0 and fake.counts["tasks create"] == creates  # not tried again
    listed = cli("commitments", "-c", config)
    assert "refused" in listed.stdout


def test_sync_dry_run_says_what_it_would_write_and_writes_nothing(hubspot):
    fake, config, portal = hubspot
    fake.inject(fail_5xx=set(range(1, 10_000)))
    commit_each(config, portal, 2)
    fake.fault = None
    calls = sum(fake.counts.values())
    result = cli("sync", "-c", config, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("create #") == 2
    assert sum(fake.counts.values()) == calls and fake.task_api.tasks == {}


def test_a_commitment_replaced_on_the_review_page_has_its_task_deleted(hubspot):
    from leadprep.model import NewCommitment

    fake, config, portal = hubspot
    ((deal, _),) = commit_each(config, portal, 1)
    assert len(fake.task_api.tasks) == 1
    cfg = load_config(config)
    with Store.open(cfg.state_path()) as store:
        (first,) = store.commitments.all()
        store.commitments.replace(
            first.id,
            NewCommitment(deal.id, "Deal", first.rep_email, "Send Bo the security answers by "
                          "Tuesday", None, date(2026, 11, 30)),
        )  # fmt: skip
    result = cli("sync", "-c", config)
    assert result.exit_code == 0, result.output + result.stderr
    assert "1 deleted (commitment replaced)" in result.stdout
    (only,) = fake.task_api.tasks.values()  # the new one; the replaced one's task is gone
    assert only["properties"]["hs_task_subject"].startswith("Send Bo the security answers")


def test_a_commitment_saved_on_the_review_page_goes_to_hubspot_at_once(hubspot):
    from tests.test_review import csrf_of, make_app, running

    fake, config, _ = hubspot
    app, _ = make_app(config, as_of=date(2026, 11, 30))
    with running(app) as client:
        slug = client.get("/").text.split('href="/rep/', 1)[1].split('"', 1)[0]
        page = client.get(f"/rep/{slug}").text
        owner_deal = page.split('<option value="', 2)[2].split('"', 1)[0]
        form = {
            "csrf": csrf_of(page),
            "text": "Call Ana to book the security review by Friday",
            "deal_id": owner_deal,
            "due": "2026-12-04",
            "success": "",
        }
        saved = client.post(f"/rep/{slug}/commit", data=form)
        assert saved.status_code == 303  # the page did not wait for HubSpot
        deadline = time.monotonic() + 10
        while not fake.task_api.tasks and time.monotonic() < deadline:
            time.sleep(0.05)
    (task,) = fake.task_api.tasks.values()
    assert task["properties"]["hs_task_subject"].startswith("Call Ana to book the security")
    assert task["deals"] == [owner_deal]


def test_doctor_says_whether_the_token_may_write_tasks(hubspot):
    fake, config, _ = hubspot
    ok = cli("doctor", "-c", config)
    assert "ok   hubspot write-back: tasks can be written (crm.objects.contacts.write)" in ok.stdout
    fake.scopes.discard("crm.objects.contacts.write")
    missing = cli("doctor", "-c", config)
    assert missing.exit_code != 0
    assert "FAIL hubspot write-back" in missing.stdout
    assert "lacks crm.objects.contacts.write" in missing.stdout


def test_send_brings_the_tasks_up_to_date_too(hubspot, smtp):
    """A scheduled send is the run that keeps the tasks up to date between reviews."""
    fake, config, portal = hubspot
    fake.inject(fail_5xx=set(range(1, 10_000)))
    commit_each(config, portal, 2)  # HubSpot was down: nothing written yet
    fake.fault = None
    time.sleep(0.35)
    config.write_text(
        config.read_text()
        + f"email:\n  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: none}}\n"
        '  from: "Prep <prep@example.com>"\n'
    )
    sent = cli("send", "-c", config, "--as-of", AS_OF, "-o", config.parent / "sent")
    assert sent.exit_code == 0, sent.output + sent.stderr
    assert len(fake.task_api.tasks) == 2


def test_commitment_text_is_plain_text_in_hubspots_html_task_body(hubspot):
    """HubSpot renders a task's body as HTML: what the manager typed is escaped there."""
    fake, config, portal = hubspot
    deal = next(iter(portal.deals.values()))
    text = 'Send <img src=x onerror=alert(1)> the "plan" & terms by Friday'
    made = cli("commit", "-c", config, deal.id, text, "--as-of", AS_OF,
               "--success", "<script>alert(2)</script> signed")  # fmt: skip
    assert made.exit_code == 0, made.output
    (task,) = fake.task_api.tasks.values()
    body = task["properties"]["hs_task_body"]
    assert "<script>" not in body and "&lt;script&gt;alert(2)&lt;/script&gt; signed" in body
    assert "<br>" in body  # its lines stay lines
    assert task["properties"]["hs_task_subject"].startswith(text)  # a subject is plain text
