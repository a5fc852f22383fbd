"""``leadprep review``: the page's routes through httpx (ASGI transport), its CSRF and access
token, writes shared with the CLI, and the whole 1:1 in a real Chromium through Playwright."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadprep.config import load_config
from leadprep.prep import open_review
from leadprep.review import ReviewApp, create_app
from leadprep.signin import SharedToken, ThisMachine
from leadprep.store import Store
from tests.helpers import TODAY, cli, csv_row, write_config, write_csv

NEXT_WEEK = TODAY + timedelta(days=7)
LABELS = ("Commitment", "Deal", "Due")


@pytest.fixture
def reviewed(tmp_path: Path) -> Path:
    """A two-rep team over a CSV whose week-1 review is recorded."""
    write_csv(
        tmp_path / "deals.csv",
        [
            csv_row(
                deal_id="D-1",
                deal_name="Acme <script>alert(1)</script>",
                contacts="Ana Ruiz [Champion]",
            ),
            csv_row(deal_id="D-2", deal_name="Globex pilot"),
            csv_row(
                deal_id="D-3",
                deal_name="Initech",
                owner_email="sam@example.com",
                owner_name="Sam Rivera",
            ),
        ],
    )
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        "teams: [{manager: {name: Dana Kim, email: dana@example.com}, reps: "
        '["Alex Morgan <alex@example.com>", "Sam Rivera <sam@example.com>"]}]\n',
    )
    result = cli(
        "prep", "-c", config, "-o", tmp_path / "w1", "-f", "json", "--as-of", TODAY.isoformat()
    )
    assert result.exit_code == 0, result.output
    return config


def prep_week(config: Path, out: Path, as_of) -> None:
    result = cli("prep", "-c", config, "-o", out, "-f", "json", "--as-of", as_of.isoformat())
    assert result.exit_code == 0, result.output


def make_app(config: Path, as_of=TODAY, token: str | None = None):
    cfg = load_config(config)
    sign_in = SharedToken(token) if token else ThisMachine()
    review = ReviewApp(lambda: open_review(cfg, as_of), as_of, sign_in=sign_in)
    return create_app(review), review


@contextmanager
def running(app) -> Iterator[httpx.AsyncClient]:
    """The app's lifespan and an httpx client on its ASGI transport, in one event loop."""
    loop = asyncio.new_event_loop()
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8765"
    )
    try:
        yield _Sync(loop, client)
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()


class _Sync:
    def __init__(self, loop, client):
        self.loop, self.client = loop, client

    def get(self, url, **kw):
        return self.loop.run_until_complete(self.client.get(url, **kw))

    def post(self, url, **kw):
        return self.loop.run_until_complete(self.client.post(url, **kw))


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def stored(tmp_path: Path) -> list:
    with Store.open(tmp_path / "state.db") as store:
        return store.commitments.all()


def test_the_team_page_and_a_reps_page_with_the_forms_labels(reviewed):
    app, _ = make_app(reviewed)
    with running(app) as client:
        index = client.get("/")
        assert index.status_code == 200
        assert (
            "Dana Kim's team" in index.text
            and '<a href="/rep/alex-morgan">Alex Morgan</a>' in index.text
        )
        page = client.get("/rep/alex-morgan")
    assert page.status_code == 200
    for label in LABELS:
        assert f">{label}</" in page.text, label
    assert (
        ">How will you know it worked?</label>" in page.text
        and ">Save commitment</button>" in page.text
    )
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert "no specific deal" in page.text
    # each deal findable by more than its name: focus order, account, size, id
    assert '<option value="D-2">Acme · Globex pilot · $50,000 · #D-2</option>' in page.text
    assert '<option value="D-1">Focus 1: Acme &lt;script&gt;' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_post_without_the_session_token_or_from_another_site_writes_nothing(reviewed, tmp_path):
    app, _ = make_app(reviewed)
    with running(app) as client:
        token = csrf_of(client.get("/rep/alex-morgan").text)
        form = {"text": "Book the CFO call with Ana by Friday", "deal_id": "D-1"}
        assert client.post("/rep/alex-morgan/commit", data=form).status_code == 403
        wrong = {**form, "csrf": "guess"}
        assert client.post("/rep/alex-morgan/commit", data=wrong).status_code == 403
        elsewhere = client.post(
            "/rep/alex-morgan/commit",
            data={**form, "csrf": token},
            headers={"Origin": "http://evil.example"},
        )
        assert elsewhere.status_code == 403
    assert stored(tmp_path) == []


def test_a_page_asked_for_under_another_host_name_is_refused(reviewed):
    """DNS rebinding: evil.example resolving to 127.0.0.1 must not read the sheets."""
    app, _ = make_app(reviewed)
    with running(app) as client:
        assert client.get("/", headers={"Host": "evil.example:8765"}).status_code == 400
        assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200


def test_saving_a_commitment_and_following_one_up_go_through_the_clis_rules(reviewed, tmp_path):
    app, _ = make_app(reviewed)
    with running(app) as client:
        token = csrf_of(client.get("/rep/alex-morgan").text)
        empty = client.post(
            "/rep/alex-morgan/commit", data={"csrf": token, "text": " ", "due": "someday"}
        )
        assert empty.status_code == 400
        assert 'id="text-error"' in empty.text and 'id="due-error"' in empty.text
        assert stored(tmp_path) == []
        saved = client.post(
            "/rep/alex-morgan/commit",
            data={
                "csrf": token,
                "text": "Try to get more people involved",
                "deal_id": "D-1",
                "due": "",
                "success": "",
            },
            headers={"Origin": "http://127.0.0.1:8765"},
        )
        assert saved.status_code == 303
        page = client.get(saved.headers["location"])
        assert "Saved #1" in page.text and "Make it specific" in page.text  # the CLI's hint
    [item] = json.loads(cli("commitments", "-c", reviewed, "--format", "json").stdout)
    assert (item["deal_id"], item["made_on"], item["rep_email"]) == (
        "D-1",
        TODAY.isoformat(),
        "alex@example.com",
    )

    # next week's review: follow it up on the page
    prep_week(reviewed, tmp_path / "w2", NEXT_WEEK)
    app, _ = make_app(reviewed, NEXT_WEEK)
    with running(app) as client:
        page = client.get("/rep/alex-morgan")
        assert "Try to get more people involved" in page.text
        for label in ("Kept", "Partly", "Missed", "Note"):
            assert f">{label}</" in page.text, label
        token = csrf_of(page.text)
        done = client.post(
            "/rep/alex-morgan/followup/1",
            data={
                "csrf": token,
                "status": "kept",
                "note": "Ana brought the CFO",
                "worked": "yes",
            },
        )
        assert done.status_code == 303
        page = client.get("/rep/alex-morgan")
        assert "Recorded: <b>kept</b> · it worked · Ana brought the CFO" in page.text
        assert "kept 1 of 1 (100%)" in page.text
        refused = client.post(
            "/rep/alex-morgan/followup/1", data={"csrf": token, "status": "sort of"}
        )
        assert refused.status_code == 400
    [item] = json.loads(cli("commitments", "-c", reviewed, "--all", "--format", "json").stdout)
    assert [(f["status"], f["note"], f["worked"]) for f in item["followups"]] == [
        ("kept", "Ana brought the CFO", True)
    ]


def test_the_page_and_the_cli_write_at_the_same_time_and_lose_nothing(reviewed, tmp_path):
    """Eight `leadprep commit` processes and eight posts on the page, all at once."""
    import subprocess
    import sys

    app, _ = make_app(reviewed)
    with running(app) as client:
        token = csrf_of(client.get("/rep/alex-morgan").text)
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "leadprep",
                    "commit",
                    "D-2",
                    f"Call Bo about pricing {n} by Friday",
                    "-c",
                    str(reviewed),
                    "--as-of",
                    TODAY.isoformat(),
                ],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for n in range(8)
        ]
        for n in range(8):
            form = {
                "csrf": token,
                "text": f"Ask Ana for the CFO intro {n} by Friday",
                "deal_id": "D-1",
                "second": "keep",  # the page asks before a second one: here, keep them all
            }
            assert client.post("/rep/alex-morgan/commit", data=form).status_code == 303
        outputs = [(p.wait(timeout=120), p.stdout.read().decode()) for p in processes]
    assert [code for code, _ in outputs] == [0] * 8, outputs
    assert len(stored(tmp_path)) == 16


def test_off_loopback_it_needs_an_access_token_and_every_request_carries_it(reviewed):
    refused = cli("review", "-c", reviewed, "--host", "0.0.0.0", "--no-browser")
    assert refused.exit_code == 2 and "access token" in refused.stderr
    app, _ = make_app(reviewed, token="s3cret-review-token-1234")
    with running(app) as client:
        assert client.get("/").status_code == 403
        first = client.get("/rep/alex-morgan?token=s3cret-review-token-1234")
        assert first.status_code == 303  # the token leaves the address bar for a cookie
        assert first.headers["location"] == "/rep/alex-morgan"
        assert client.get("/rep/alex-morgan").status_code == 200  # the cookie it set
        bearer = httpx.Headers({"Authorization": "Bearer s3cret-review-token-1234"})
        client.client.cookies.clear()
        assert client.get("/rep/alex-morgan").status_code == 403
        assert client.get("/rep/alex-morgan", headers=bearer).status_code == 200


def test_without_a_recorded_review_it_says_to_run_prep_first(tmp_path):
    write_csv(tmp_path / "deals.csv", [csv_row()])
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n",
    )
    result = cli("review", "-c", config, "--no-browser")
    assert result.exit_code == 2 and "Run `leadprep prep` first" in result.stderr


# --- a real browser ------------------------------------------------------------------------------


def find_browser() -> str | None:
    wanted = os.environ.get("LEADPREP_BROWSER")
    if wanted:
        return wanted if Path(wanted).exists() else shutil.which(wanted)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_or_skip() -> tuple[Any, str]:
    """Playwright's sync API and the system's Chromium, or the test is skipped saying why."""
    browser_path = find_browser()
    if browser_path is None:
        pytest.skip(
            "no Chromium found (apt-get install chromium, or set $LEADPREP_BROWSER to a "
            "Chromium or Chrome binary)"
        )
    return pytest.importorskip("playwright.sync_api"), browser_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(config: Path, as_of) -> Iterator[str]:
    app, _ = make_app(config, as_of)
    with serving_app(app) as url:
        yield url


@contextmanager
def serving_app(app) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, in a thread; its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            log_config=None,
            proxy_headers=False,  # as serve runs it: the peer's address is the one checked
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_1on1_in_chromium_keyboard_only(reviewed, tmp_path):
    sync_api, browser_path = chromium_or_skip()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        with served(reviewed, TODAY) as url:
            page.goto(url + "/")
            page.get_by_role("link", name="Alex Morgan").click()
            # keyboard only: Tab to the Commitment field, fill the form, Enter to save
            for _ in range(300):
                if page.evaluate("document.activeElement && document.activeElement.id") == "text":
                    break
                page.keyboard.press("Tab")
            page.keyboard.type("Ask Ana to bring the CFO to Thursday's call")
            page.keyboard.press("Tab")  # Deal
            page.get_by_label("Deal").select_option(
                label="Focus 1: Acme <script>alert(1)</script> · $50,000 · #D-1"
            )
            page.keyboard.press("Tab")  # Due
            page.get_by_label("Due").fill((TODAY + timedelta(days=3)).isoformat())
            page.get_by_label("How will you know it worked?").fill("The CFO is on the invite")
            page.get_by_label("How will you know it worked?").press("Enter")
            page.wait_for_url("**saved=1**")
            assert "Saved #1" in page.inner_text("#saved")
            assert "leadprep review: the forms" not in page.inner_text("body")  # CSS stays CSS
            assert page.evaluate("window.__xss === undefined")
        [item] = json.loads(cli("commitments", "-c", reviewed, "--format", "json").stdout)
        assert (
            item["success"] == "The CFO is on the invite"
            and item["due"] == (TODAY + timedelta(days=3)).isoformat()
        )

        prep_week(reviewed, tmp_path / "w2", NEXT_WEEK)
        with served(reviewed, NEXT_WEEK) as url:
            page.goto(url + "/rep/alex-morgan")
            page.get_by_label("Note").fill("CFO joined; budget confirmed")
            page.get_by_role("button", name="Kept").click()
            page.wait_for_load_state()
            assert "Recorded: kept" in page.inner_text(".deliver")
            assert "kept 1 of 1 (100%)" in page.inner_text("header")
            page.emulate_media(media="print")
            assert not page.is_visible("form.record")  # paper keeps the write-in lines
            assert page.is_visible(".print-only")
        browser.close()
    [item] = json.loads(cli("commitments", "-c", reviewed, "--all", "--format", "json").stdout)
    assert item["status"] == "kept" and item["note"] == "CFO joined; budget confirmed"


def test_a_second_commitment_in_the_same_review_is_asked_about_not_slipped_in(reviewed, tmp_path):
    app, _ = make_app(reviewed)
    origin = {"Origin": "http://127.0.0.1:8765"}
    with running(app) as client:
        token = csrf_of(client.get("/rep/alex-morgan").text)

        def post(text, **extra):
            data = {"csrf": token, "text": text, "deal_id": "D-2", "due": "2026-12-04", **extra}
            return client.post("/rep/alex-morgan/commit", data=data, headers=origin)

        assert post("Ask Ana who signs, by Friday").status_code == 303
        second = post("Book the CFO meeting by Thursday")
        assert second.status_code == 409
        assert "already has a commitment from this review" in second.text
        assert "Ask Ana who signs, by Friday" in second.text
        assert 'value="Book the CFO meeting by Thursday"' in second.text  # nothing typed is lost
        assert [c.text for c in stored(tmp_path)] == ["Ask Ana who signs, by Friday"]
        assert post("Book the CFO meeting by Thursday", second="replace").status_code == 303
        assert [c.text for c in stored(tmp_path)] == ["Book the CFO meeting by Thursday"]
        assert post("Send the pricing options by Wednesday", second="keep").status_code == 303
    first, kept = stored(tmp_path)
    assert kept.text == "Send the pricing options by Wednesday"
    assert kept.kept_beside == first.id  # keeping both is recorded as a choice


def test_hostile_values_in_the_new_choices_are_refused_or_ignored_never_a_traceback(
    reviewed, tmp_path
):
    app, _ = make_app(reviewed)
    origin = {"Origin": "http://127.0.0.1:8765"}
    with running(app) as client:
        token = csrf_of(client.get("/rep/alex-morgan").text)
        first = {"csrf": token, "text": "Ask Ana who signs, by Friday", "deal_id": "D-2"}
        assert client.post("/rep/alex-morgan/commit", data=first, headers=origin).status_code == 303
        for second in ("javascript:alert(1)", "<script>x</script>", "keep\r\nX: y", "\x00"):
            again = dict(first, text="Book the CFO by Thursday", second=second)
            answer = client.post("/rep/alex-morgan/commit", data=again, headers=origin)
            assert answer.status_code == 409, second  # not a choice: asked again, nothing saved
            assert "<script>x</script>" not in answer.text
        assert [c.text for c in stored(tmp_path)] == ["Ask Ana who signs, by Friday"]
    prep_week(reviewed, tmp_path / "w2", NEXT_WEEK)
    app, _ = make_app(reviewed, NEXT_WEEK)
    with running(app) as client:
        token = csrf_of(client.get("/rep/alex-morgan").text)
        cid = stored(tmp_path)[0].id
        weird = {"csrf": token, "status": "kept", "worked": "<img src=x onerror=alert(1)>"}
        done = client.post(f"/rep/alex-morgan/followup/{cid}", data=weird, headers=origin)
        assert done.status_code == 303  # an unknown answer is "not said"
    (followed,) = stored(tmp_path)
    assert followed.followups[-1].worked is None


def test_who_recorded_each_commitment_and_follow_up_is_kept_and_shown(reviewed, tmp_path):
    """The audit: the page records "review page, from <address>", the CLI "<user> on <host>,
    command line"; `commitments --all` and --format json say it."""
    import getpass

    made = cli("commit", "-c", reviewed, "D-2", "Send Bo the pricing by Friday",
               "--as-of", TODAY.isoformat())  # fmt: skip
    assert made.exit_code == 0, made.output
    app, _ = make_app(reviewed)
    with running(app) as client:
        page = client.get("/rep/alex-morgan").text
        (cid,) = [c.id for c in stored(tmp_path) if c.deal_id == "D-2"]
        form = {"csrf": csrf_of(page), "status": "kept", "note": "", "worked": "yes"}
        assert client.post(f"/rep/alex-morgan/followup/{cid}", data=form).status_code == 303
    listed = json.loads(cli("commitments", "-c", reviewed, "--all", "--format", "json").stdout)
    (item,) = [c for c in listed if c["id"] == cid]
    assert item["recorded_by"].startswith(f"{getpass.getuser()} on ")
    assert item["recorded_by"].endswith(", command line")
    assert item["followups"][-1]["recorded_by"].startswith("review page, from ")
    table = cli("commitments", "-c", reviewed, "--all").stdout
    letters = "".join(ch for ch in table if ch.isalnum())  # however the cells wrap
    assert "madeby" in letters and "byreviewpagefrom127001" in letters
