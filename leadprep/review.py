"""The review pages: ``leadprep review`` (one person's, on this machine) and ``leadprep serve``
(the org's, each person signed in and shown their own teams).

A small Starlette app on the review's own store: the pages are rebuilt from the last recorded run
(no CRM call), rendered with the sheets' Jinja environment, and every write goes through
:mod:`leadprep.commitments`, as the CLI's do. Plain HTML forms, no script.

Safe by default: ``review`` binds to loopback, and off loopback refuses to start without a shared
token; ``serve`` signs every request in (:mod:`leadprep.signin`) and shows each person only the
teams in their scope (:mod:`leadprep.scope`), on every page, form, PDF and JSON view. Every POST
carries the signed-in person's CSRF token and comes from this server's own origin, or is refused
with 403 and writes nothing.
"""

from __future__ import annotations

import copy
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from leadprep import commitments
from leadprep.commitments import coaching_record
from leadprep.config import Person
from leadprep.errors import LeadprepError, UsageError
from leadprep.history import rep_series, team_series
from leadprep.http import is_loopback_host
from leadprep.model import Commitment
from leadprep.packets import Packet, build_packets, packet_json
from leadprep.prep import ROLLUP_WEEKS, ReviewSource, earlier_reviews, remembered
from leadprep.render import Renderer
from leadprep.scope import EVERYONE, Scope, scope_of
from leadprep.signin import (
    SIGN_IN_COOKIE,
    Identity,
    Refused,
    SharedToken,
    SignInPolicy,
    ThisMachine,
)
from leadprep.writeback import write_back

log = logging.getLogger(__name__)

MAX_FIELD = 2_000  # characters per form field; a commitment is a sentence, not an essay
MAX_BODY = 32 * 1024  # bytes a form post may carry (four fields of MAX_FIELD, encoded)
PAGE_LOCK_WAIT = 2.0  # seconds a save waits for another writer: the page must not hang
_ID = re.compile(r"[0-9]{1,9}")  # ids in paths and query strings, read without surprises
OPEN_PATHS = frozenset({"/health"})  # answered without a sign-in (load balancers, containers)


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the app on this machine."""
    return host == "localhost" or is_loopback_host(host)


@dataclass(frozen=True)
class Viewer:
    """The person a request is from, what they may see, and the CSRF token of their forms."""

    identity: Identity
    scope: Scope
    csrf: str

    def sees(self, packet: Packet) -> bool:
        return self.scope.sees_team(packet.manager.email if packet.manager else None)

    @property
    def recorded_by(self) -> str:
        """The audit's words for a record made on the page: who, and from where."""
        where = f"review page, from {self.identity.address}"
        return f"{self.identity.email}, {where}" if self.identity.email else where


@dataclass
class ReviewApp:
    """What the pages are made of: the open review source, the review date they show (None:
    today's, following each new run), and how people sign in."""

    open_source: Callable[[], AbstractContextManager[ReviewSource]]
    as_of: date | None
    host: str = "127.0.0.1"
    sign_in: SignInPolicy = field(default_factory=ThisMachine)
    timezone: str | None = None  # whose "today" the server follows (the schedule's), else local
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))  # CSRF tokens' key
    notice: str | None = None  # said on every page: the state cannot be written
    source: ReviewSource | None = None
    renderer: Renderer | None = None
    review_date: date | None = None
    run_id: int | None = None
    packets: list[Packet] = field(default_factory=list)
    sheets: list[tuple[str, str | None]] = field(default_factory=list)  # (rep, manager)

    @property
    def launch_code(self) -> str | None:
        return self.sign_in.launch_code if isinstance(self.sign_in, SharedToken) else None

    # --- data -------------------------------------------------------------------------------------

    @contextmanager
    def opened(self) -> Iterator[ReviewSource]:
        """Open the review's source and serve its last review, until the block ends: the one way
        the source is opened (the CLI does it before it binds, so a bad config or an empty store
        is said before any browser opens; the app's lifespan otherwise)."""
        if self.source is not None:
            yield self.source
            return
        with self.open_source() as source:
            self.start(source)
            try:
                yield source
            finally:
                self.source = None

    def start(self, source: ReviewSource) -> None:
        """Serve ``source``'s last review (called on the thread that opened its store)."""
        self.source = source
        self.renderer = Renderer(source.config, demo=source.demo)
        source.store.set_lock_wait(PAGE_LOCK_WAIT)
        self.notice = _unwritable(source)
        self.load()

    @property
    def day(self) -> date:
        """The review date asked for: the one given, else today (in the schedule's zone, so a
        run the schedule records for Monday shows on Monday there)."""
        if self.as_of is not None:
            return self.as_of
        return datetime.now(ZoneInfo(self.timezone)).date() if self.timezone else date.today()

    def refresh(self) -> None:
        """Serve the newest review once another run recorded it (a scheduled prep, a CLI run)."""
        assert self.source is not None
        latest = self.source.store.runs.latest(self.day)
        if latest is not None and latest.run_id != self.run_id:
            self.load()

    def load(self) -> None:
        """Rebuild the packets of the last review on or before the review date from the store."""
        assert self.source is not None and self.renderer is not None
        store, config = self.source.store, self.source.config
        review = store.runs.latest(self.day)
        if review is None:
            if self.as_of is None:  # the org server waits for its first run
                return
            raise UsageError(
                f"No review is recorded on or before {self.day.isoformat()}, so there is "
                "nothing to show.",
                hint="Run `leadprep prep` first (it records the review), then `leadprep review`.",
            )
        deals = list(store.runs.snapshot(review.run_id).values())
        memory = remembered(store, review.as_of)
        # Deliver keeps showing what was followed up in this review, with what was recorded.
        followed_here = [
            c
            for c in store.commitments.all(made_before=review.as_of)
            if c.status != "open" and c.followed_up_on == review.as_of
        ]
        memory = replace(
            memory,
            open_commitments=sorted(
                [*memory.open_commitments, *followed_here], key=lambda c: (c.made_on, c.id)
            ),
        )
        self.review_date, self.run_id = review.as_of, review.run_id
        self.packets = build_packets(
            deals,
            memory,
            config,
            self.renderer.question_bank(),
            review.as_of,
            unsupported=review.unsupported,
        )
        self.sheets = [(p.rep.email, p.manager.email if p.manager else None) for p in self.packets]

    def recount(self, packet: Packet) -> None:
        """After a follow-up: the rep's kept rate and streak as the store now has them. (Only
        this rep's record changes; rebuilding every sheet would hold every other page for as
        long as the whole org takes to build.)"""
        assert self.source is not None and self.review_date is not None
        store, email = self.source.store, packet.rep.email
        packet.coaching = coaching_record(
            store.commitments.all(rep_email=email, made_before=self.review_date),
            earlier_reviews(store, self.review_date),
            self.review_date,
        )

    def packet(self, slug: str) -> Packet | None:
        return next((p for p in self.packets if p.slug == slug), None)

    def current(self, packet: Packet) -> dict[int, Commitment]:
        """The rep's commitments as the store has them now (a follow-up made on the page shows)."""
        assert self.source is not None
        mine = self.source.store.commitments.all(rep_email=packet.rep.email)
        return {c.id: c for c in mine}

    def viewer(self, identity: Identity) -> Viewer:
        """What ``identity`` may see here, with the CSRF token of their forms (tied to the
        person and their sign-in, so one person's token is worth nothing in another's forms)."""
        assert self.source is not None
        if identity.email is None:
            scope = EVERYONE
        else:
            scope = scope_of(identity.email, self.source.config, self.sheets)
        key = f"{identity.email or ''}\n{identity.session or ''}".encode()
        csrf = hmac.new(self.secret.encode(), key, "sha256").hexdigest()
        return Viewer(identity, scope, csrf)

    # --- pages ------------------------------------------------------------------------------------

    def render(self, name: str, viewer: Viewer, status: int = 200, **context: Any) -> HTMLResponse:
        assert self.renderer is not None and self.source is not None
        html = self.renderer.render_text(
            name,
            csrf=viewer.csrf,
            review_date=self.review_date,
            notice=self.notice,
            signed_in=viewer.scope if viewer.identity.email else None,
            signs_out=self.sign_in.signs_out,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)

    def index(self, viewer: Viewer) -> HTMLResponse:
        teams: dict[str, tuple[Person | None, list[Packet]]] = {}
        for packet in self.packets:
            if not viewer.sees(packet):
                continue
            key = packet.manager.email if packet.manager else ""
            teams.setdefault(key, (packet.manager, []))[1].append(packet)
        ordered = sorted(teams.values(), key=lambda t: (t[0] is None, t[0].name if t[0] else ""))
        return self.render(
            "review_index.html.j2",
            viewer,
            teams=ordered,
            as_of=self.review_date,
        )

    def rep_page(
        self,
        viewer: Viewer,
        packet: Packet,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        saved: Commitment | None = None,
        hint: str | None = None,
        second_of: Commitment | None = None,
    ) -> HTMLResponse:
        current = self.current(packet)
        agreed = [c for c in current.values() if c.made_on == self.review_date]
        focus_first = [v.deal for v in packet.focus] + [v.deal for v in packet.others]
        return self.render(
            "review_rep.html.j2",
            viewer,
            status=status,
            packet=packet,
            packets=[packet],
            standalone=True,
            current=current,
            agreed=agreed,
            deals=focus_first,
            focus_count=len(packet.focus),
            errors=errors or {},
            form=form or {},
            saved=saved,
            hint=hint,
            second_of=second_of,
        )

    def rollup(self, viewer: Viewer) -> HTMLResponse:
        """The rollup of the teams in ``viewer``'s scope, over the last reviews."""
        assert self.source is not None and self.renderer is not None
        assert self.review_date is not None
        config = self.source.config
        reps = rep_series(self.source.store, self.review_date, ROLLUP_WEEKS)
        names = {
            t.manager.email: t.manager.name
            for t in config.teams
            if viewer.scope.sees_team(t.manager.email)
        }
        shown = [s for s in reps if viewer.scope.sees_team(s.manager_email)]
        html = self.renderer.rollup_html(
            team_series(shown, names),
            self.review_date,
            config.crm.kind,
            csrf=viewer.csrf,
            signed_in=viewer.scope if viewer.identity.email else None,
            signs_out=self.sign_in.signs_out,
        )
        return HTMLResponse(html, headers=_SECURITY_HEADERS)

    def refusal(self, refused: Refused, viewer: Viewer | None = None) -> HTMLResponse:
        """The page that says why a request was turned away, to whom, and what to do."""
        if self.renderer is None:  # before the review opened: no templates yet
            return _bare_refusal(refused.status, refused.why)
        signed_in = viewer.scope if viewer and viewer.identity.email else None
        html = self.renderer.render_text(
            "refused.html.j2",
            refused=refused,
            signed_in=signed_in,
            signs_out=self.sign_in.signs_out and signed_in is not None,
            csrf=viewer.csrf if viewer else "",
        )
        return HTMLResponse(html, status_code=refused.status, headers=_SECURITY_HEADERS)


def _unwritable(source: ReviewSource) -> str | None:
    """Why nothing recorded on the page can be saved, if so (a read-only state file)."""
    path = source.store.path
    if path is None or (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return None
    return (
        f"The state file {path} is read-only for this server: nothing recorded here can be "
        "saved. Write the commitments on paper, and ask whoever runs leadprep to fix the file's "
        "permissions."
    )


def parse_id(value: str | None) -> int | None:
    """A positive id from a path or query string, or None for anything else (``²``, 5,000
    digits, ``-1``): never an exception."""
    return int(value) if value and _ID.fullmatch(value) else None


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on our own forms
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


class Refusal(HTTPException):
    """A request refused before anything is written (``detail``: why, said on the page)."""


def _review(request: Request) -> ReviewApp:
    review: ReviewApp = request.app.state.review
    return review


def _viewer(request: Request) -> Viewer:
    viewer: Viewer = request.state.viewer
    return viewer


async def _checked_form(request: Request) -> dict[str, str]:
    """The posted form, or a :class:`Refusal`. Origin, type and size are checked before the body
    is read (a cross-site upload is never spooled); then the CSRF token inside it."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Refusal(403, "the form came from another site")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refusal(415, "this page takes plain forms only")
    length = request.headers.get("content-length", "")
    if length and (not length.isdigit() or int(length) > MAX_BODY):
        raise Refusal(413, "the form is larger than a commitment can be")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Refusal(413, "the form is larger than a commitment can be")
    pairs = parse_qs(bytes(body).decode("utf-8", "replace"), keep_blank_values=True)
    form = {name: values[0] for name, values in pairs.items()}
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(token, _viewer(request).csrf):
        raise Refusal(403, "the form carries no valid session token (reload the page)")
    return form


class AccessMiddleware(BaseHTTPMiddleware):
    """Every request but the health check is signed in by the app's :class:`SignInPolicy`, and
    refused here when it is not, or when its person has no team in scope. The refusal page
    says why and what to do; nothing is written."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        review = _review(request)
        started = time.monotonic()
        if request.url.path in OPEN_PATHS:
            return await call_next(request)
        assert review.source is not None
        review.refresh()
        outcome = await review.sign_in.identify(request, review.source.store)
        viewer = None
        if isinstance(outcome, Identity):
            viewer = review.viewer(outcome)
            request.state.viewer = viewer
            if not viewer.scope.sees_anything and request.url.path != "/signout":
                outcome = Refused(
                    403,
                    f"{outcome.email} manages no team in this review and is not a director",
                    hint="Ask whoever runs leadprep to add you to the config's teams (as a "
                    "manager) or directors.",
                )
        if isinstance(outcome, Refused):
            response: Response = review.refusal(outcome, viewer)
        elif isinstance(outcome, Response):
            response = outcome
        else:
            response = await call_next(request)
        _log_request(request, response, viewer, started)
        return response


def _log_request(
    request: Request, response: Response, viewer: Viewer | None, started: float
) -> None:
    """One line per request, without what could open the server: no query string (a
    ``?token=``), and an access link's path shortened to ``/access/…``."""
    path = request.url.path
    if path.startswith("/access/"):
        path = "/access/…"
    who = viewer.identity.email if viewer and viewer.identity.email else "-"
    client = request.client.host if request.client else "-"
    log.info(
        "%s %s %s %d %s %.0f ms",
        client,
        request.method,
        path[:200],
        response.status_code,
        who,
        1000 * (time.monotonic() - started),
    )


def _rep_of(request: Request) -> Packet:
    """The rep a request is about, if the signed-in person's scope has them; else 404 for whom
    sees everything and 403 for the rest (which cannot tell "not yours" from "no such rep")."""
    viewer = _viewer(request)
    packet = _review(request).packet(request.path_params["slug"])
    if packet is not None and viewer.sees(packet):
        return packet
    if viewer.scope.sees_all:
        raise Refusal(404, "No such rep in this review.")
    raise Refusal(403, "this rep is not on a team you manage")


async def index_page(request: Request) -> Response:
    return _review(request).index(_viewer(request))


async def rep_page(request: Request) -> Response:
    review, packet = _review(request), _rep_of(request)
    saved = None
    saved_id = parse_id(request.query_params.get("saved"))
    if saved_id is not None:
        saved = review.current(packet).get(saved_id)
    hint = commitments.vagueness_hint(saved.text, saved.due) if saved else None
    return review.rep_page(_viewer(request), packet, saved=saved, hint=hint)


async def rep_pdf(request: Request) -> Response:
    """The rep's printed sheet, laid out as ``prep`` lays it out (needs ``leadprep[pdf]``)."""
    review, packet = _review(request), _rep_of(request)
    assert review.renderer is not None and review.source is not None
    renderer, laid_out = review.renderer, copy.deepcopy(packet)  # fitting changes the packet
    try:
        pdf = await run_in_threadpool(renderer.packet_pdf, laid_out)
    except LeadprepError as exc:
        raise Refusal(501, exc.message) from None
    headers = {
        **_SECURITY_HEADERS,
        "Content-Disposition": f'inline; filename="{packet.slug}.pdf"',
    }
    return Response(pdf, media_type="application/pdf", headers=headers)


async def rep_json(request: Request) -> Response:
    """The rep's packet as ``packets.json`` carries it."""
    review, packet = _review(request), _rep_of(request)
    assert review.review_date is not None
    document = {"as_of": review.review_date.isoformat(), "packet": packet_json(packet)}
    body = json.dumps(document, ensure_ascii=False).encode()
    return Response(body, media_type="application/json", headers=_SECURITY_HEADERS)


async def rollup_page(request: Request) -> Response:
    review = _review(request)
    if review.review_date is None:
        raise Refusal(404, "No review is recorded yet, so there is no rollup.")
    return review.rollup(_viewer(request))


async def health(request: Request) -> Response:
    """For a load balancer or a container: the server answers and its state file reads."""
    review = _review(request)
    body: dict[str, Any]
    try:
        if review.source is None:  # before the store opened, or after it closed
            raise LeadprepError("no state file open")
        latest = review.source.store.runs.latest(review.day)
    except LeadprepError:
        body, status = {"status": "failing", "why": "the state file cannot be read"}, 503
    else:
        last = latest.as_of.isoformat() if latest else None
        body, status = {"status": "ok", "review": last, "writable": review.notice is None}, 200
    return Response(json.dumps(body), status, media_type="application/json")


async def sign_out(request: Request) -> Response:
    review, viewer = _review(request), _viewer(request)
    await _checked_form(request)
    assert review.source is not None
    if viewer.identity.session:
        review.source.store.access.sign_out(viewer.identity.session)
    response = review.refusal(
        Refused(200, "you are signed out", hint="Open your access link to sign in again.")
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
    return response


def _prepared(
    review: ReviewApp, packet: Packet, values: dict[str, str]
) -> tuple[commitments.Prepared | None, dict[str, str]]:
    """The commitment the form describes, checked as the CLI checks one, or the errors by field."""
    assert review.source is not None and review.review_date is not None
    errors: dict[str, str] = {}
    due = None
    try:
        due = commitments.parse_due(values["due"] or None)
    except UsageError as exc:
        errors["due"] = _said(exc)
    deal_id = values["deal_id"] or None
    if deal_id is not None and deal_id not in {d.deal.id for d in packet.deals}:
        errors["deal_id"] = "Choose one of this rep's deals, or no specific deal."
    if not values["text"].strip():
        errors["text"] = "Write what the rep will do, with whom, by when."
    if errors:
        return None, errors
    try:
        return commitments.prepare(
            review.source.store,
            deal_id,
            values["text"],
            due,
            packet.rep.email,
            review.review_date,
            success=values["success"] or None,
        ), {}
    except UsageError as exc:
        return None, {"text": _said(exc)}


def _save(
    review: ReviewApp,
    prepared: commitments.Prepared,
    first: Commitment | None,
    choice: str,
    who: str,
) -> int:
    """Record it: alone, in place of this 1:1's first commitment, or kept beside it."""
    assert review.source is not None
    store = review.source.store
    made = replace(prepared.commitment, recorded_by=who)
    if first is not None and choice == "replace":
        return store.commitments.replace(first.id, made)
    if first is not None:
        [new_id] = store.commitments.add([replace(made, kept_beside=first.id)])
        return new_id
    [new_id] = store.commitments.add([made])
    return new_id


async def commit(request: Request) -> Response:
    review, packet, viewer = _review(request), _rep_of(request), _viewer(request)
    form = await _checked_form(request)
    values = {k: _text(form, k) for k in ("text", "deal_id", "due", "success")}
    choice = _text(form, "second")  # replace | keep, once asked
    too_long = [k for k in ("text", "success") if len(form.get(k) or "") > MAX_FIELD]
    if too_long:  # refused whole, never cut short without a word
        long = {k: f"Keep it to {MAX_FIELD:,} characters: one sentence." for k in too_long}
        return review.rep_page(viewer, packet, status=400, errors=long, form=values)
    if review.notice:
        errors = {"text": review.notice}
        return review.rep_page(viewer, packet, status=503, errors=errors, form=values)
    prepared, errors = _prepared(review, packet, values)
    if prepared is None:
        return review.rep_page(viewer, packet, status=400, errors=errors, form=values)
    made_here = [c for c in review.current(packet).values() if c.made_on == review.review_date]
    first = made_here[-1] if made_here else None
    if first is not None and choice not in ("replace", "keep"):
        # one commitment per 1:1 is the rule: a second one is asked about, not slipped in
        return review.rep_page(viewer, packet, status=409, form=values, second_of=first)
    try:
        new_id = _save(review, prepared, first, choice, viewer.recorded_by)
    except LeadprepError as exc:  # locked, read-only, full disk: the typed text stays
        errors = {"text": _store_problem(exc)}
        return review.rep_page(viewer, packet, status=503, errors=errors, form=values)
    # the sheet itself is unchanged: Agree's records are read from the store for each page
    _write_back_soon(review)
    return _redirect(request, f"/rep/{quote(packet.slug)}?saved={new_id}#agree-{packet.slug}")


async def followup(request: Request) -> Response:
    review, packet, viewer = _review(request), _rep_of(request), _viewer(request)
    form = await _checked_form(request)
    assert review.source is not None and review.review_date is not None
    commitment_id = parse_id(request.path_params["commitment"])
    if commitment_id is None or commitment_id not in review.current(packet):
        raise Refusal(404, "No such commitment for this rep.")
    field_name = f"followup-{commitment_id}"
    if review.notice:
        return review.rep_page(viewer, packet, status=503, errors={field_name: review.notice})
    try:
        commitments.follow_up(
            review.source.store,
            commitment_id,
            status=_text(form, "status"),
            note=_text(form, "note") or None,
            as_of=review.review_date,
            worked={"yes": True, "no": False}.get(_text(form, "worked")),
            recorded_by=viewer.recorded_by,
        )
    except UsageError as exc:
        return review.rep_page(viewer, packet, status=400, errors={field_name: _said(exc)})
    except LeadprepError as exc:
        errors = {field_name: _store_problem(exc)}
        return review.rep_page(viewer, packet, status=503, errors=errors)
    review.recount(packet)  # the kept rate reflects it; Deliver reads the store for each page
    _write_back_soon(review)
    return _redirect(request, f"/rep/{quote(packet.slug)}#c{commitment_id}")


async def _refusal_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    viewer = getattr(request.state, "viewer", None)
    return _review(request).refusal(Refused(exc.status_code, exc.detail), viewer)


ROUTES = [
    Route("/", index_page),
    Route("/rep/{slug}", rep_page),
    Route("/rep/{slug}/sheet.pdf", rep_pdf),
    Route("/rep/{slug}/packet.json", rep_json),
    Route("/rep/{slug}/commit", commit, methods=["POST"]),
    Route("/rep/{slug}/followup/{commitment}", followup, methods=["POST"]),
    Route("/rollup", rollup_page),
    Route("/signout", sign_out, methods=["POST"]),
    Route("/health", health),
]


def create_app(review: ReviewApp) -> Starlette:
    """The ASGI app serving ``review``; its lifespan opens the review source and loads the last
    review, unless the CLI opened it already (and reported any error before binding)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with review.opened():
            yield

    # The loopback review answers only this machine's names: a web page elsewhere cannot rebind
    # its own domain to 127.0.0.1 and read the sheets. Where people sign in (a shared token,
    # access links, the proxy), the sign-in is what protects.
    own = {"127.0.0.1", "localhost", "[::1]", "::1", review.host, f"[{review.host}]"}
    signed = not isinstance(review.sign_in, ThisMachine)
    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=["*"] if signed else sorted(own)),
            Middleware(AccessMiddleware),
        ],
        exception_handlers={HTTPException: _refusal_page},
    )
    app.state.review = review
    return app


def _write_back_soon(review: ReviewApp) -> None:
    """One quick try to write what was just recorded to the CRM, in the background (the page
    never waits on the CRM; what does not go now goes with the next prep or sync)."""
    source = review.source
    if source is None or source.demo or source.store.path is None:
        return
    config, path = source.config, source.store.path

    def write() -> None:
        try:
            write_back(config, quick=True, state_path=path)
        except LeadprepError as exc:
            log.info("the tasks wait for the next sync: %s", exc.message)

    threading.Thread(target=write, name="leadprep-write-back", daemon=True).start()


def _redirect(request: Request, path: str) -> Response:
    # 303: the browser follows with a GET, so a reload never posts the form twice
    return RedirectResponse(path, status_code=303, headers=_SECURITY_HEADERS)


def _bare_refusal(status: int, why: str) -> HTMLResponse:
    from html import escape

    return HTMLResponse(
        f"<!doctype html><title>Refused</title><p>Refused: {escape(why)}. Nothing was written.</p>",
        status_code=status,
        headers=_SECURITY_HEADERS,
    )


# How the page names the inputs an error asks for (the CLI says its flags).
PAGE_TERMS = {
    "rep": "the rep",
    "worked": "whether it worked (yes or no)",
    "as_of": "the review date",
}


def _said(exc: LeadprepError) -> str:
    """An error's message as the page says it: its inputs named as the page's fields."""
    return exc.in_terms(PAGE_TERMS).message


def _store_problem(exc: LeadprepError) -> str:
    """What a save that the state file refused tells the person at the page."""
    text = exc.message
    if "locked" in text:
        return (
            "Not saved: another leadprep run is writing the state file right now. "
            "Your text is still here: save again in a moment."
        )
    return f"Not saved: {text} Your text is still here; write it down if this persists."
