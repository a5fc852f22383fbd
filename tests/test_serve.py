"""``leadprep serve``: who may see and record what, on every route, under both sign-ins.

Two teams (Dana's: Alex and Sam; Lee's: Jo), a manager of both managers (Vic), a director (Erin),
someone who signs in with no team (Zed) and a rep (Alex). Every route the app serves is in the
table below (a test fails when a route is added without it): each role asks each route for a rep
of each team, and the answer is allowed or refused with nothing written.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from leadprep.config import load_config
from leadprep.prep import open_review
from leadprep.review import ROUTES, ReviewApp, create_app
from leadprep.signin import AccessLinkSignIn, Identity, ProxyHeader
from leadprep.store import Store
from tests.helpers import TODAY, cli, csv_row, write_config, write_csv

PROXY = "10.0.0.2"  # the sign-in proxy's address, the only one trusted
ELSEWHERE = "10.0.0.9"

TEAM_A = "alex-morgan"  # Dana's rep
TEAM_B = "jo-chen"  # Lee's rep

# role -> (email, the teams' reps it may see); None: sees nothing
ROLES = {
    "manager A": ("dana@example.com", {TEAM_A}),
    "manager B": ("lee@example.com", {TEAM_B}),
    "manager of managers": ("vic@example.com", {TEAM_A, TEAM_B}),
    "director": ("erin@example.com", {TEAM_A, TEAM_B}),
    "no team": ("zed@example.com", set()),
    "a rep": ("alex@example.com", set()),
}

# every route the app serves: (method, path) -> what an allowed request answers
ROUTE_TABLE = {
    ("GET", "/"): 200,
    ("GET", "/rep/{slug}"): 200,
    ("GET", "/rep/{slug}/sheet.pdf"): 200,
    ("GET", "/rep/{slug}/packet.json"): 200,
    ("POST", "/rep/{slug}/commit"): 303,
    ("POST", "/rep/{slug}/followup/{commitment}"): 303,
    ("GET", "/rollup"): 200,
    ("POST", "/signout"): 200,
    ("GET", "/health"): 200,
}
PER_REP = [route for route in ROUTE_TABLE if "{slug}" in route[1]]


def test_every_route_the_app_serves_is_in_the_table():
    served = {(method, route.path) for route in ROUTES for method in route.methods or ()}
    served -= {(m, p) for m, p in served if m == "HEAD"}
    assert served == set(ROUTE_TABLE)


@pytest.fixture(scope="module")
def recorded_org(tmp_path_factory) -> Path:
    """The two teams' reviews recorded, with one open commitment per team's rep (made once)."""
    tmp = tmp_path_factory.mktemp("org")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LEADPREP_STATE", str(tmp / "state.db"))
        return _record_org(tmp)


@pytest.fixture
def org(recorded_org: Path, tmp_path: Path, monkeypatch) -> Path:
    """A copy of the recorded org for one test."""
    folder = tmp_path / "org"
    shutil.copytree(recorded_org.parent, folder)
    monkeypatch.setenv("LEADPREP_STATE", str(folder / "state.db"))
    return folder / "leadprep.yaml"


def _record_org(tmp: Path) -> Path:
    write_csv(
        tmp / "deals.csv",
        [
            csv_row(deal_id="A-1", deal_name="Acme rollout"),
            csv_row(
                deal_id="A-2", owner_email="sam@example.com", owner_name="Sam Rivera", amount="9000"
            ),
            csv_row(
                deal_id="B-1",
                deal_name="Borealis <b>pilot</b>",
                owner_email="jo@example.com",
                owner_name="Jo Chen",
                manager_email="lee@example.com",
            ),
        ],
    )
    config = write_config(
        tmp / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        "teams:\n"
        "  - manager: {name: Dana Kim, email: dana@example.com}\n"
        '    reps: ["Alex Morgan <alex@example.com>", "Sam Rivera <sam@example.com>"]\n'
        "  - manager: {name: Lee Park, email: lee@example.com}\n"
        '    reps: ["Jo Chen <jo@example.com>"]\n'
        "  - manager: {name: Vic Ortega, email: vic@example.com}\n"
        "    reps: [dana@example.com, lee@example.com]\n"
        "directors: [erin@example.com]\n"
        f"server: {{sign_in: proxy, proxy: {{header: X-Forwarded-Email, trusted: [{PROXY}/32]}}}}\n",
    )
    last_week = (TODAY - timedelta(days=7)).isoformat()
    made = cli("prep", "-c", config, "-o", tmp / "out", "-f", "json", "--as-of", last_week)
    assert made.exit_code == 0, made.output
    for deal in ("A-1", "B-1"):
        done = cli("commit", "-c", config, deal, f"Book the exec call on {deal} by Friday",
                   "--as-of", last_week)  # fmt: skip
        assert done.exit_code == 0, done.output
    made = cli("prep", "-c", config, "-o", tmp / "out", "-f", "json", "--as-of", TODAY.isoformat())
    assert made.exit_code == 0, made.output
    return config


def commitment_of(config: Path, rep_email: str) -> int:
    with Store.open(config.parent / "state.db") as store:
        return next(c.id for c in store.commitments.all(rep_email=rep_email))


def written(config: Path) -> tuple[int, int]:
    """How many commitments and follow-ups the state file holds."""
    with Store.open(config.parent / "state.db") as store:
        every = store.commitments.all()
        return len(every), sum(len(c.followups) for c in every)


class Client:
    """The app's lifespan and an httpx client connecting from ``address``, in one event loop."""

    def __init__(self, app, address: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = app
        self.lifespan = app.router.lifespan_context(app)
        self.loop.run_until_complete(self.lifespan.__aenter__())
        transport = httpx.ASGITransport(app=app, client=(address, 50123))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://leadprep.example.com")

    def request(self, method: str, url: str, **kw) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, url, **kw))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
        self.loop.close()


@contextmanager
def serving(config: Path, sign_in, address: str = PROXY) -> Iterator[tuple[Client, ReviewApp]]:
    cfg = load_config(config)
    review = ReviewApp(lambda: open_review(cfg, TODAY), TODAY, sign_in=sign_in, host="0.0.0.0")
    client = Client(create_app(review), address)
    try:
        yield client, review
    finally:
        client.close()


def proxy_policy(config: Path) -> ProxyHeader:
    settings = load_config(config).server.proxy
    assert settings is not None
    return ProxyHeader(settings)


def ask(client: Client, review: ReviewApp, route, slug: str, email: str, headers: dict):
    """Send ``route`` for ``slug`` as ``email`` would, with that person's own valid CSRF token
    (so that a refusal is the scope's, not the token's)."""
    method, path = route
    config = review.source.config
    rep_email = {"alex-morgan": "alex@example.com", "jo-chen": "jo@example.com"}[slug]
    url = path.format(slug=slug, commitment=commitment_of(config.source_path, rep_email))
    csrf = review.viewer(Identity(email, PROXY, headers.get("_session"))).csrf
    send = {k: v for k, v in headers.items() if not k.startswith("_")}
    if method == "GET":
        return client.request("GET", url, headers=send)
    form = {"csrf": csrf, "status": "kept", "note": "", "worked": "",
            "text": f"Ask the CFO for the budget on {slug} by Friday", "deal_id": "",
            "due": "", "success": "", "second": "keep"}  # fmt: skip
    return client.request("POST", url, data=form, headers=send)


CASES = [(role, route, slug) for role in ROLES for route in PER_REP for slug in (TEAM_A, TEAM_B)]


@pytest.mark.parametrize(
    ("role", "route", "slug"), CASES, ids=[f"{r}-{m} {p}-{s}" for r, (m, p), s in CASES]
)
def test_each_role_sees_and_records_only_for_its_own_teams_behind_the_proxy(org, role, route, slug):
    email, mine = ROLES[role]
    before = written(org)
    with serving(org, proxy_policy(org)) as (client, review):
        answer = ask(client, review, route, slug, email, {"X-Forwarded-Email": email})
    if slug in mine:
        assert answer.status_code == ROUTE_TABLE[route], answer.text[:500]
        if route[1].endswith(".pdf"):
            assert answer.content.startswith(b"%PDF")
        if route[1].endswith(".json"):
            assert answer.json()["packet"]["rep"]["email"] in ("alex@example.com", "jo@example.com")
        return
    assert answer.status_code == 403, answer.text[:500]
    assert written(org) == before  # nothing written
    assert "Nothing was written" in answer.text
    if mine:  # a manager asking for another team's rep: told it is not theirs, not that it exists
        assert "not on a team you manage" in answer.text
    else:
        assert "manages no team" in answer.text and f"Signed in as <b>{email}" in answer.text


@pytest.mark.parametrize("role", list(ROLES))
def test_the_index_and_the_rollup_show_each_person_only_their_teams(org, role):
    email, mine = ROLES[role]
    with serving(org, proxy_policy(org)) as (client, _):
        index = client.request("GET", "/", headers={"X-Forwarded-Email": email})
        rollup = client.request("GET", "/rollup", headers={"X-Forwarded-Email": email})
    if not mine:
        assert index.status_code == rollup.status_code == 403
        assert "Jo Chen" not in index.text + rollup.text
        return
    assert index.status_code == rollup.status_code == 200
    assert "Signed in as <b>" in index.text and email in index.text
    for slug, name, manager in (
        (TEAM_A, "Alex Morgan", "Dana Kim"),
        (TEAM_B, "Jo Chen", "Lee Park"),
    ):
        assert (f'href="/rep/{slug}"' in index.text) == (slug in mine)
        assert (name in rollup.text) == (slug in mine), (slug, rollup.text[:2000])
        assert (f"{manager}" in rollup.text) == (slug in mine)


def test_the_identity_header_is_believed_only_from_the_proxy_and_only_once(org):
    erin = {"X-Forwarded-Email": "erin@example.com"}
    before = written(org)
    with serving(org, proxy_policy(org), address=ELSEWHERE) as (client, _review):
        for method, path in ROUTE_TABLE:
            if path == "/health":
                assert client.request(method, path, headers=erin).status_code == 200
                continue
            url = path.format(slug=TEAM_A, commitment=1)
            answer = client.request(
                method, url, headers=erin, data={"csrf": "x"} if method == "POST" else None
            )
            assert answer.status_code == 403, (method, path)
            assert "through its sign-in proxy only" in answer.text
    with serving(org, proxy_policy(org)) as (client, _):
        assert client.request("GET", "/").status_code == 401  # from the proxy, no header
        twice = httpx.Headers([("X-Forwarded-Email", "lee@example.com"),
                               ("X-Forwarded-Email", "erin@example.com")])  # fmt: skip
        assert client.request("GET", "/", headers=twice).status_code == 403
        for forged in ("erin@example.com, lee@example.com", "Erin <erin@example.com>",
                       "erin@example.com\r\nX-Evil: 1", "x" * 400 + "@example.com", ""):  # fmt: skip
            answer = client.request("GET", "/", headers={"X-Forwarded-Email": forged})
            assert answer.status_code in (401, 403), forged
        # the address is case-insensitive, as mail is
        assert (
            client.request(
                "GET", "/", headers={"X-Forwarded-Email": "Erin@Example.COM"}
            ).status_code
            == 200
        )
    assert written(org) == before


def test_the_audit_names_the_signed_in_person_and_the_address_the_proxy_saw(org):
    with serving(org, proxy_policy(org)) as (client, review):
        headers = {"X-Forwarded-Email": "lee@example.com", "X-Forwarded-For": "203.0.113.7"}
        page = client.request("GET", f"/rep/{TEAM_B}", headers=headers)
        assert "Signed in as <b>Lee Park (lee@example.com)</b> · manager" in page.text
        csrf = review.viewer(Identity("lee@example.com", PROXY)).csrf
        form = {"csrf": csrf, "text": "Send Jo's champion the mutual plan by Thursday",
                "deal_id": "B-1", "due": "", "success": "", "second": "keep"}  # fmt: skip
        saved = client.request("POST", f"/rep/{TEAM_B}/commit", data=form, headers=headers)
        assert saved.status_code == 303
        shown = client.request("GET", saved.headers["location"], headers=headers).text
    assert "recorded by lee@example.com, review page, from 203.0.113.7" in shown
    listed = json.loads(cli("commitments", "-c", org, "--all", "--format", "json").stdout)
    mine = [c for c in listed if c["text"].startswith("Send Jo's champion")]
    assert mine and mine[0]["recorded_by"] == "lee@example.com, review page, from 203.0.113.7"


# --- access links --------------------------------------------------------------------------------


def link_for(config: Path, email: str) -> str:
    made = cli("access", "add", email, "-c", config)
    assert made.exit_code == 0, made.output
    link = made.stdout.strip()
    assert link.startswith("/access/") and len(link) > 40
    return link


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_signed_in_by_access_link_sees_only_its_teams(org, role):
    email, mine = ROLES[role]
    link = link_for(org, email)
    before = written(org)
    with serving(org, AccessLinkSignIn()) as (client, review):
        opened = client.request("GET", link)
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        cookie = opened.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
        assert link.rsplit("/", 1)[1] not in cookie  # the cookie is a sign-in, not the token
        session = client.http.cookies.get("leadprep_signin")
        for route in PER_REP:
            for slug in (TEAM_A, TEAM_B):
                if route[1].endswith(".pdf"):
                    continue  # laid out once per role behind the proxy above
                answer = ask(client, review, route, slug, email, {"_session": session})
                expected = ROUTE_TABLE[route] if slug in mine else 403
                assert answer.status_code == expected, (route, slug, answer.text[:300])
    if not mine:
        assert written(org) == before


def test_over_https_the_sign_in_cookie_is_secure_and_lasts_as_long_as_its_link(org):
    link = link_for(org, "dana@example.com")
    with serving(org, AccessLinkSignIn(secure=True)) as (client, _):
        cookie = client.request("GET", link).headers["set-cookie"]
    assert "Secure" in cookie
    max_age = int(cookie.lower().split("max-age=")[1].split(";")[0])
    assert 89 * 86400 < max_age <= 90 * 86400  # server.links.days, from now


def test_a_revoked_or_expired_link_and_a_signed_out_session_are_refused(org):
    link = link_for(org, "dana@example.com")
    with serving(org, AccessLinkSignIn()) as (client, _review):
        assert client.request("GET", "/").status_code == 401  # not signed in yet
        assert client.request("GET", link).status_code == 303
        assert client.request("GET", "/").status_code == 200
        revoked = cli("access", "revoke", "dana@example.com", "-c", org)
        assert revoked.exit_code == 0 and "Revoked" in revoked.stdout
        gone = client.request("GET", "/")
        assert gone.status_code == 401 and "revoked" in gone.text  # the sign-in ended with it
        again = client.request("GET", link)
        assert again.status_code == 403 and "was revoked on" in again.text
        with Store.open(org.parent / "state.db") as store:
            token, _ = store.access.add(
                "lee@example.com", 1, now=datetime.now(UTC) - timedelta(days=2)
            )
        expired = client.request("GET", f"/access/{token}")
        assert expired.status_code == 403 and "expired on" in expired.text
        wrong = client.request("GET", "/access/" + "A" * 43)
        assert wrong.status_code == 403 and "not one this server made" in wrong.text
        fresh = link_for(org, "lee@example.com")
        assert client.request("GET", fresh).status_code == 303
        csrf = client.request("GET", "/").text.split('name="csrf" value="', 1)[1].split('"')[0]
        out = client.request("POST", "/signout", data={"csrf": csrf})
        assert out.status_code == 200 and "signed out" in out.text
        client.http.cookies.set("leadprep_signin", out.request.headers["cookie"].split("=", 1)[1])
        assert client.request("GET", "/").status_code == 401  # the old cookie ends with it
    listed = json.loads(cli("access", "list", "-c", org, "--format", "json").stdout)
    states = {(row["email"], row["state"]) for row in listed}
    assert ("dana@example.com", "revoked") in states and ("lee@example.com", "expired") in states
    assert all("token" not in json.dumps(row).lower() for row in listed)


def test_access_add_refuses_what_is_not_one_email_and_warns_about_a_link_that_opens_nothing(org):
    for bad in ("dana", "a@b.com, c@d.com", "Dana <dana@example.com>", "x@y.com\nBcc: z@w.com"):
        refused = cli("access", "add", bad, "-c", org)
        assert refused.exit_code == 2 and "not one email address" in refused.stderr
    warned = cli("access", "add", "nobody@example.com", "-c", org)
    assert warned.exit_code == 0 and "will refuse them" in warned.stderr
    revoked = cli("access", "revoke", "never@example.com", "-c", org)
    assert revoked.exit_code == 2 and "no active access link" in revoked.stderr


def test_the_state_file_keeps_no_token_that_opens_the_server(org):
    link = link_for(org, "erin@example.com")
    token = link.rsplit("/", 1)[1]
    assert token.encode() not in (org.parent / "state.db").read_bytes()
    wal = org.parent / "state.db-wal"
    assert not wal.exists() or token.encode() not in wal.read_bytes()


# --- the single-user review, unchanged ------------------------------------------------------------


def test_the_loopback_review_needs_no_sign_in_and_shows_every_team(org):
    cfg = load_config(org)
    review = ReviewApp(lambda: open_review(cfg, TODAY), TODAY)
    client = Client(create_app(review), "127.0.0.1")
    try:
        client.http.base_url = httpx.URL("http://127.0.0.1:8765")
        index = client.request("GET", "/")
        assert index.status_code == 200 and "Signed in as" not in index.text
        assert f'href="/rep/{TEAM_A}"' in index.text and f'href="/rep/{TEAM_B}"' in index.text
        assert client.request("GET", f"/rep/{TEAM_B}/packet.json").status_code == 200
        assert "Lee Park" in client.request("GET", "/rollup").text
    finally:
        client.close()


def test_health_answers_without_a_sign_in_and_says_the_last_review(org):
    with serving(org, AccessLinkSignIn(), address=ELSEWHERE) as (client, _):
        answer = client.request("GET", "/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "review": TODAY.isoformat(), "writable": True}


@pytest.mark.parametrize(
    ("server", "warn", "says"),
    [
        ("server: {sign_in: proxy, proxy: {trusted: [10.0.0.2/32]}}", False,
         "X-Forwarded-Email header, believed from 10.0.0.2/32 only"),
        ("server: {sign_in: links}", True, "server.url is not set"),
        ("server: {url: http://leadprep.example.com}", True, "travels in clear"),
        ("server: {url: http://127.0.0.1:8765}", False, "access links at http://127.0.0.1:8765"),
        ("server: {url: https://leadprep.example.com}", False, "access links at https://"),
    ],
)  # fmt: skip
def test_doctor_says_how_serve_signs_people_in_and_warns_what_would_surprise(
    tmp_path, server, warn, says
):
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: demo}\nteams: [{manager: {name: Dana Kim, email: dana@example.com}}]\n"
        + server
        + "\n",
    )
    from leadprep.doctor import run_checks

    [check] = [c for c in run_checks(config) if c.name == "serve"]
    assert check.ok and check.warn is warn and says in check.detail


def test_a_proxy_trusting_everyone_or_no_one_is_refused_in_the_config(tmp_path):
    for trusted, why in (("[0.0.0.0/0]", "trusts every address"), ("[]", "list the proxy's"),
                         ("[not-an-address]", "not an address")):  # fmt: skip
        config = write_config(
            tmp_path / "leadprep.yaml",
            f"crm: {{kind: demo}}\nserver: {{sign_in: proxy, proxy: {{trusted: {trusted}}}}}\n",
        )
        result = cli("doctor", "-c", config)
        assert result.exit_code == 2 and why in result.output + result.stderr, trusted
    config = write_config(
        tmp_path / "leadprep.yaml", "crm: {kind: demo}\nserver: {sign_in: proxy}\n"
    )
    result = cli("doctor", "-c", config)
    assert "sign_in: proxy needs a proxy section" in result.output + result.stderr


def test_a_review_token_typed_on_the_command_line_is_warned_about_and_one_from_the_env_is_not(
    org, monkeypatch
):
    import socket

    with socket.socket() as busy:  # the review stops at the port, after what it says first
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        typed = cli("review", "-c", org, "--port", port, "--token", "t" * 24, "--no-browser")
        assert typed.exit_code == 2 and "shows in the process list" in typed.stderr
        monkeypatch.setenv("LEADPREP_REVIEW_TOKEN", "t" * 24)
        quiet = cli("review", "-c", org, "--port", port, "--no-browser")
        assert quiet.exit_code == 2 and "process list" not in quiet.stderr


def test_names_and_addresses_in_the_signed_in_bar_are_escaped(tmp_path):
    write_csv(tmp_path / "deals.csv", [csv_row()])
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        "teams: [{manager: {name: '<img src=x onerror=alert(1)>', email: dana@example.com},"
        " reps: [alex@example.com]}]\n"
        f"server: {{sign_in: proxy, proxy: {{trusted: [{PROXY}/32]}}}}\n",
    )
    made = cli(
        "prep", "-c", config, "-o", tmp_path / "out", "-f", "json", "--as-of", TODAY.isoformat()
    )
    assert made.exit_code == 0, made.output
    with serving(config, proxy_policy(config)) as (client, _):
        page = client.request("GET", "/", headers={"X-Forwarded-Email": "dana@example.com"}).text
        refused = client.request(
            "GET", "/", headers={"X-Forwarded-Email": "<script>alert(1)</script>@example.com"}
        )
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert refused.status_code == 403 and "<script>" not in refused.text


def test_a_manager_only_the_file_names_is_in_scope_for_their_reps(tmp_path):
    """No teams in the config: the export's manager_email makes the team, for the link's warning
    and for the pages alike."""
    write_csv(
        tmp_path / "deals.csv",
        [csv_row(), csv_row(deal_id="B-1", owner_email="jo@example.com", owner_name="Jo Chen",
                            manager_email="lee@example.com")],
    )  # fmt: skip
    config = write_config(
        tmp_path / "leadprep.yaml",
        "crm: {kind: file, file: {path: deals.csv}}\nstate: {path: state.db}\n"
        f"server: {{sign_in: proxy, proxy: {{trusted: [{PROXY}/32]}}}}\n",
    )
    made = cli(
        "prep", "-c", config, "-o", tmp_path / "out", "-f", "json", "--as-of", TODAY.isoformat()
    )
    assert made.exit_code == 0, made.output
    link = cli("access", "add", "dana@example.com", "-c", config)
    assert link.exit_code == 0 and "(manager)" in link.stderr and "refuse" not in link.stderr
    with serving(config, proxy_policy(config)) as (client, _):
        dana = {"X-Forwarded-Email": "dana@example.com"}
        assert client.request("GET", f"/rep/{TEAM_A}", headers=dana).status_code == 200
        assert client.request("GET", f"/rep/{TEAM_B}", headers=dana).status_code == 403
