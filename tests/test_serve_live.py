"""``leadprep serve`` as a real server on loopback: 20 managers saving at once, a manager signing
in through an access link in Chromium, and the process itself (health, logs without tokens,
a graceful stop on SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from leadprep.config import load_config
from leadprep.prep import open_review
from leadprep.review import ReviewApp, create_app
from leadprep.signin import AccessLinkSignIn, ProxyHeader
from leadprep.store import Store
from tests.helpers import TODAY, cli, csv_row, write_config, write_csv
from tests.test_review import chromium_or_skip, free_port, serving_app

MANAGERS = 20


def org_of(tmp_path: Path, managers: int, sign_in: str) -> Path:
    """``managers`` teams of one rep each, their review recorded."""
    rows, teams = [], []
    for n in range(managers):
        rows.append(
            csv_row(
                deal_id=f"D-{n}",
                deal_name=f"Platform licence {n}",
                owner_email=f"rep{n}@example.com",
                owner_name=f"Rep Number{n}",
                manager_email=f"manager{n}@example.com",
            )
        )
        teams.append(
            f"  - manager: {{name: Manager {n}, email: manager{n}@example.com}}\n"
            f'    reps: ["Rep Number{n} <rep{n}@example.com>"]\n'
        )
    write_csv(tmp_path / "deals.csv", rows)
    server = (
        "server: {sign_in: proxy, proxy: {trusted: [127.0.0.1/32]}}\n"
        if sign_in == "proxy"
        else "server: {sign_in: links, url: http://127.0.0.1}\n"
    )
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        + server
        + "teams:\n"
        + "".join(teams),
    )
    made = cli(
        "prep", "-c", config, "-o", tmp_path / "out", "-f", "json", "--as-of", TODAY.isoformat()
    )
    assert made.exit_code == 0, made.output
    return config


@contextmanager
def served(config: Path, sign_in) -> Iterator[str]:
    cfg = load_config(config)
    review = ReviewApp(lambda: open_review(cfg, TODAY), TODAY, sign_in=sign_in, host="127.0.0.1")
    with serving_app(create_app(review)) as url:
        yield url


class ServeProcess:
    """``leadprep serve`` as its own process on a free port, until :meth:`stop` (SIGTERM)."""

    def __init__(self, tmp_path: Path, config: Path, *options: str) -> None:
        port = free_port()
        env = {**os.environ, "LEADPREP_STATE": str(tmp_path / "state.db"), "COLUMNS": "200"}
        command = [sys.executable, "-m", "leadprep", "serve", "-c", str(config)]
        self.process = subprocess.Popen(
            [*command, "--port", str(port), *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        self.base = f"http://127.0.0.1:{port}"

    def health(self) -> httpx.Response:
        """The first answer of /health, once the server listens."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return httpx.get(f"{self.base}/health", timeout=2)
            except httpx.TransportError:
                assert time.monotonic() < deadline and self.process.poll() is None
                time.sleep(0.2)

    def stop(self) -> tuple[str, str]:
        """SIGTERM, and what it wrote to stdout and stderr."""
        self.process.send_signal(signal.SIGTERM)
        stdout, stderr = self.process.communicate(timeout=60)
        return stdout.decode(), stderr.decode()


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_twenty_managers_saving_at_once_lose_nothing(tmp_path):
    config = org_of(tmp_path, MANAGERS, "proxy")
    settings = load_config(config).server.proxy
    assert settings is not None
    start = threading.Barrier(MANAGERS)

    def save(n: int, base: str) -> int:
        me = {"X-Forwarded-Email": f"manager{n}@example.com"}
        with httpx.Client(base_url=base, headers=me, timeout=60) as client:
            page = client.get(f"/rep/rep-number{n}")
            assert page.status_code == 200, page.text[:300]
            form = {"csrf": csrf_of(page.text), "text": f"Book the CFO call for licence {n} by Friday",
                    "deal_id": f"D-{n}", "due": "", "success": "", "second": ""}  # fmt: skip
            start.wait(30)  # all twenty post together
            return client.post(f"/rep/rep-number{n}/commit", data=form).status_code

    with served(config, ProxyHeader(settings)) as base, ThreadPoolExecutor(MANAGERS) as pool:
        codes = list(pool.map(lambda n: save(n, base), range(MANAGERS)))
    assert codes == [303] * MANAGERS
    with Store.open(tmp_path / "state.db") as store:
        saved = store.commitments.all()
    assert len(saved) == MANAGERS
    for item in saved:
        n = item.rep_email.removeprefix("rep").split("@")[0]
        assert item.deal_id == f"D-{n}" and f"licence {n} " in item.text
        assert item.recorded_by == f"manager{n}@example.com, review page, from 127.0.0.1"


def test_a_manager_signs_in_by_access_link_in_chromium_and_the_audit_names_them(tmp_path):
    sync_api, browser_path = chromium_or_skip()
    config = org_of(tmp_path, 2, "links")
    made = cli("access", "add", "manager1@example.com", "-c", config)
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().rsplit("/", 1)[1]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context()
        page = context.new_page()
        with served(config, AccessLinkSignIn()) as base:
            page.goto(f"{base}/access/{token}")
            assert page.url == f"{base}/"  # the token left the address bar
            assert token not in page.url
            [cookie] = [c for c in context.cookies() if c["name"] == "leadprep_signin"]
            assert cookie["httpOnly"] and cookie["value"] != token
            banner = " ".join(page.inner_text(".signed-in").split())
            assert "Signed in as Manager 1 (manager1@example.com) · manager" in banner
            assert page.get_by_role("link", name="Rep Number0").count() == 0  # not their team
            page.get_by_role("link", name="Rep Number1").click()
            page.get_by_label("Commitment").fill("Ask the sponsor to book the CFO by Thursday")
            page.get_by_label("Deal").select_option(value="D-1")
            page.get_by_role("button", name="Save commitment").click()
            page.wait_for_url("**saved=1**")
            shown = " ".join(page.inner_text("body").split())
            assert "recorded by manager1@example.com, review page, from 127.0.0.1" in shown
            # another team's rep, typed in the address bar: refused with a page that says why
            response = page.goto(f"{base}/rep/rep-number0")
            assert response is not None and response.status == 403
            assert "not on a team you manage" in page.inner_text("body")
        browser.close()
    listed = cli("commitments", "-c", config, "--all", "--format", "json").stdout
    assert '"recorded_by": "manager1@example.com, review page, from 127.0.0.1"' in listed


def test_the_serve_process_answers_health_logs_no_token_and_stops_on_sigterm(tmp_path):
    config = org_of(tmp_path, 2, "links")
    made = cli("access", "add", "manager0@example.com", "-c", config)
    link = made.stdout.strip()
    token = link.rsplit("/", 1)[1]
    server = ServeProcess(tmp_path, config, "--as-of", TODAY.isoformat())
    try:
        assert server.health().json()["status"] == "ok"
        with httpx.Client(base_url=server.base) as client:
            assert client.get(f"/access/{token}").status_code == 303
            assert client.get("/?token=should-not-be-logged").status_code == 200
            assert client.get("/rep/rep-number1").status_code == 403
    finally:
        out, err = server.stop()
    assert server.process.returncode == 0, err
    assert "Stopped. Everything recorded is in" in out
    assert token not in out + err and "should-not-be-logged" not in out + err
    assert "GET /access/… 303" in err and "GET / 200 manager0@example.com" in err
    assert "GET /rep/rep-number1 403 manager0@example.com" in err
    assert "Traceback" not in err


def test_serve_without_a_config_or_with_a_schedule_it_cannot_run_says_so(tmp_path):
    demo = cli("serve")
    assert demo.exit_code == 2 and "leadprep review --demo" in demo.stderr
    config = org_of(tmp_path, 1, "links")
    scheduled = cli("serve", "-c", config, "--schedule")
    assert scheduled.exit_code == 2 and "--schedule needs a schedule section" in scheduled.stderr


def test_serve_with_its_schedule_starts_before_the_first_review_and_stops_on_sigterm(tmp_path):
    """A fresh install: no review yet, the schedule waiting inside the server for its first run."""
    write_csv(tmp_path / "deals.csv", [csv_row()])
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        "teams: [{manager: {name: Dana Kim, email: dana@example.com}, reps: [alex@example.com]}]\n"
        "email: {smtp: {host: 127.0.0.1, port: 2525, security: none}, from: prep@example.com}\n"
        'schedule: {cron: "0 7 * * MON", timezone: America/New_York}\n',
    )
    link = cli("access", "add", "dana@example.com", "-c", config).stdout.strip()
    server = ServeProcess(tmp_path, config, "--schedule")
    try:
        assert server.health().json() == {"status": "ok", "review": None, "writable": True}
        with httpx.Client(base_url=server.base, follow_redirects=True) as client:
            index = client.get(link)
            assert index.status_code == 200 and "No review yet" in index.text
            assert client.get("/rollup").status_code == 404
    finally:
        started = time.monotonic()
        out, err = server.stop()
    assert server.process.returncode == 0, err
    assert time.monotonic() - started < 30  # the waiting schedule does not hold the stop
    assert "next run Mon" in err and "scheduler stopped after 0 run(s)" in err
    assert "Stopped." in out
