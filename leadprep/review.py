"""``leadprep review``: the last recorded review in the browser, where the 1:1's Agree and
Deliver are written down while they happen.

A small Starlette app on the review's own store: the pages are rebuilt from the last recorded run
(no CRM call), rendered with the sheets' Jinja environment, and every write goes through
:mod:`leadprep.commitments`, as the CLI's do. Plain HTML forms, no script.

Safe by default: it binds to loopback; every POST carries this server's CSRF token and comes
from its own origin, or is refused with 403 and writes nothing; on any other host it refuses to
start without an access token, which every request must then carry.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import re
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from leadprep import commitments
from leadprep.config import Person
from leadprep.errors import LeadprepError, UsageError
from leadprep.model import Commitment
from leadprep.packets import Packet, build_packets
from leadprep.prep import ReviewSource, remembered
from leadprep.render import Renderer
from leadprep.writeback import write_back

log = logging.getLogger(__name__)

ACCESS_COOKIE = "leadprep_access"
MAX_FIELD = 2_000  # characters per form field; a commitment is a sentence, not an essay
MAX_BODY = 32 * 1024  # bytes a form post may carry (four fields of MAX_FIELD, encoded)
MIN_TOKEN = 16  # characters an access token needs; shorter ones are guessed
PAGE_LOCK_WAIT = 2.0  # seconds a save waits for another writer: the page must not hang
_ID = re.compile(r"[0-9]{1,9}")  # ids in paths and query strings, read without surprises


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the app on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ReviewApp:
    """What the pages are made of: the open review source and the review date they show."""

    open_source: Callable[[], AbstractContextManager[ReviewSource]]
    as_of: date
    access_token: str | None = None
    host: str = "127.0.0.1"
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # a one-time code the CLI opens the browser with, exchanged for the access cookie, so the
    # token itself is never on a command line (the browser's) or in the address bar
    launch_code: str | None = field(default_factory=lambda: secrets.token_urlsafe(24))
    notice: str | None = None  # said on every page: the state cannot be written
    wrong_tokens: int = 0
    source: ReviewSource | None = None
    renderer: Renderer | None = None
    review_date: date | None = None
    packets: list[Packet] = field(default_factory=list)

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

    def load(self) -> None:
        """Rebuild the packets of the last review on or before ``as_of`` from the store."""
        assert self.source is not None and self.renderer is not None
        store, config = self.source.store, self.source.config
        review = store.runs.latest(self.as_of)
        if review is None:
            raise UsageError(
                f"No review is recorded on or before {self.as_of.isoformat()}, so there is "
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
        self.review_date = review.as_of
        self.packets = build_packets(
            deals,
            memory,
            config,
            self.renderer.question_bank(),
            review.as_of,
            unsupported=review.unsupported,
        )

    def packet(self, slug: str) -> Packet | None:
        return next((p for p in self.packets if p.slug == slug), None)

    def current(self, packet: Packet) -> dict[int, Commitment]:
        """The rep's commitments as the store has them now (a follow-up made on the page shows)."""
        assert self.source is not None
        mine = self.source.store.commitments.all(rep_email=packet.rep.email)
        return {c.id: c for c in mine}

    # --- pages ------------------------------------------------------------------------------------

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        assert self.renderer is not None and self.source is not None
        html = self.renderer.render_text(
            name, csrf=self.csrf, review_date=self.review_date, notice=self.notice, **context
        )
        return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)

    def index(self) -> HTMLResponse:
        teams: dict[str, tuple[Person | None, list[Packet]]] = {}
        for packet in self.packets:
            key = packet.manager.email if packet.manager else ""
            teams.setdefault(key, (packet.manager, []))[1].append(packet)
        ordered = sorted(teams.values(), key=lambda t: (t[0] is None, t[0].name if t[0] else ""))
        return self.render("review_index.html.j2", teams=ordered, as_of=self.review_date)

    def rep_page(
        self,
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


def _allowed(review: ReviewApp, request: Request) -> bool:
    """With an access token, every request carries it (cookie, bearer or ?token=)."""
    if review.access_token is None:
        return True
    offered = [
        request.cookies.get(ACCESS_COOKIE, ""),
        request.query_params.get("token", ""),
        request.headers.get("authorization", "").removeprefix("Bearer "),
    ]
    return any(hmac.compare_digest(o, review.access_token) for o in offered if o)


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
    if not isinstance(token, str) or not hmac.compare_digest(token, _review(request).csrf):
        raise Refusal(403, "the form carries no valid session token (reload the page)")
    return form


class AccessMiddleware(BaseHTTPMiddleware):
    """With an access token, every request (any path) carries it, or is refused here (each wrong
    try waits a little longer). The browser the CLI opens brings a one-time code, and a shared
    link brings ``?token=``: either is exchanged for a cookie and dropped from the address bar by
    a redirect."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        review = _review(request)
        if review.access_token is None:
            return await call_next(request)
        code = request.query_params.get("code")
        if code and review.launch_code and hmac.compare_digest(code, review.launch_code):
            review.launch_code = None  # once
            return _with_cookie(_redirect(request, request.url.path), review.access_token)
        if not _allowed(review, request):
            review.wrong_tokens += 1
            await asyncio.sleep(min(0.2 * review.wrong_tokens, 5.0))
            return _refused(403, "this review needs its access token")
        if request.query_params.get("token"):
            return _with_cookie(_redirect(request, request.url.path), review.access_token)
        return await call_next(request)


def _rep_of(request: Request) -> Packet:
    """The rep a request is about, or the 404."""
    packet = _review(request).packet(request.path_params["slug"])
    if packet is None:
        raise Refusal(404, "No such rep in this review.")
    return packet


async def index_page(request: Request) -> Response:
    return _review(request).index()


async def rep_page(request: Request) -> Response:
    review, packet = _review(request), _rep_of(request)
    saved = None
    saved_id = parse_id(request.query_params.get("saved"))
    if saved_id is not None:
        saved = review.current(packet).get(saved_id)
    hint = commitments.vagueness_hint(saved.text, saved.due) if saved else None
    return review.rep_page(packet, saved=saved, hint=hint)


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


def _who(request: Request) -> str:
    """Who records on the page, and from where (a sign-in will name the person)."""
    client = request.client.host if request.client else "an unknown address"
    return f"review page, from {client}"


async def commit(request: Request) -> Response:
    review, packet = _review(request), _rep_of(request)
    form = await _checked_form(request)
    values = {k: _text(form, k) for k in ("text", "deal_id", "due", "success")}
    choice = _text(form, "second")  # replace | keep, once asked
    too_long = [k for k in ("text", "success") if len(form.get(k) or "") > MAX_FIELD]
    if too_long:  # refused whole, never cut short without a word
        long = {k: f"Keep it to {MAX_FIELD:,} characters: one sentence." for k in too_long}
        return review.rep_page(packet, status=400, errors=long, form=values)
    if review.notice:
        return review.rep_page(packet, status=503, errors={"text": review.notice}, form=values)
    prepared, errors = _prepared(review, packet, values)
    if prepared is None:
        return review.rep_page(packet, status=400, errors=errors, form=values)
    made_here = [c for c in review.current(packet).values() if c.made_on == review.review_date]
    first = made_here[-1] if made_here else None
    if first is not None and choice not in ("replace", "keep"):
        # one commitment per 1:1 is the rule: a second one is asked about, not slipped in
        return review.rep_page(packet, status=409, form=values, second_of=first)
    try:
        new_id = _save(review, prepared, first, choice, _who(request))
    except LeadprepError as exc:  # locked, read-only, full disk: the typed text stays
        errors = {"text": _store_problem(exc)}
        return review.rep_page(packet, status=503, errors=errors, form=values)
    review.load()  # the page shows what the store now holds
    _write_back_soon(review)
    return _redirect(request, f"/rep/{quote(packet.slug)}?saved={new_id}#agree-{packet.slug}")


async def followup(request: Request) -> Response:
    review, packet = _review(request), _rep_of(request)
    form = await _checked_form(request)
    assert review.source is not None and review.review_date is not None
    commitment_id = parse_id(request.path_params["commitment"])
    if commitment_id is None or commitment_id not in review.current(packet):
        raise Refusal(404, "No such commitment for this rep.")
    field_name = f"followup-{commitment_id}"
    if review.notice:
        return review.rep_page(packet, status=503, errors={field_name: review.notice})
    try:
        commitments.follow_up(
            review.source.store,
            commitment_id,
            status=_text(form, "status"),
            note=_text(form, "note") or None,
            as_of=review.review_date,
            worked={"yes": True, "no": False}.get(_text(form, "worked")),
            recorded_by=_who(request),
        )
    except UsageError as exc:
        return review.rep_page(packet, status=400, errors={field_name: _said(exc)})
    except LeadprepError as exc:
        return review.rep_page(packet, status=503, errors={field_name: _store_problem(exc)})
    review.load()  # the kept rate and Deliver reflect it
    _write_back_soon(review)
    return _redirect(request, f"/rep/{quote(packet.slug)}#c{commitment_id}")


async def _refusal_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return HTMLResponse(exc.detail, status_code=404)
    return _refused(exc.status_code, exc.detail)


ROUTES = [
    Route("/", index_page),
    Route("/rep/{slug}", rep_page),
    Route("/rep/{slug}/commit", commit, methods=["POST"]),
    Route("/rep/{slug}/followup/{commitment}", followup, methods=["POST"]),
]


def create_app(review: ReviewApp) -> Starlette:
    """The ASGI app serving ``review``; its lifespan opens the review source and loads the last
    review, unless the CLI opened it already (and reported any error before binding)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with review.opened():
            yield

    # Only this machine's names: a web page elsewhere cannot rebind its own domain to 127.0.0.1
    # and read the sheets. With an access token (off loopback) the token is what protects.
    own = {"127.0.0.1", "localhost", "[::1]", "::1", review.host, f"[{review.host}]"}
    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[
            Middleware(
                TrustedHostMiddleware, allowed_hosts=["*"] if review.access_token else sorted(own)
            ),
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


def _with_cookie(response: Response, token: str) -> Response:
    response.set_cookie(ACCESS_COOKIE, token, httponly=True, samesite="strict")
    return response


def _refused(status: int, why: str) -> Response:
    return HTMLResponse(
        f"<!doctype html><title>Refused</title><p>Refused: {why}. Nothing was written.</p>",
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
