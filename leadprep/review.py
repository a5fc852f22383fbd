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

import hmac
import ipaddress
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from leadprep import commitments
from leadprep.config import Person
from leadprep.errors import UsageError
from leadprep.model import Commitment
from leadprep.packets import Packet, build_packets
from leadprep.prep import ReviewSource, remembered
from leadprep.render import Renderer

ACCESS_COOKIE = "leadprep_access"
MAX_FIELD = 2_000  # characters per form field; a commitment is a sentence, not an essay


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
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    source: ReviewSource | None = None
    renderer: Renderer | None = None
    review_date: date | None = None
    packets: list[Packet] = field(default_factory=list)

    # --- data -------------------------------------------------------------------------------------

    def start(self, source: ReviewSource) -> None:
        """Serve ``source``'s last review (called on the thread that opened its store)."""
        self.source = source
        self.renderer = Renderer(source.config, demo=source.demo)
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
            name, csrf=self.csrf, review_date=self.review_date, **context
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
            errors=errors or {},
            form=form or {},
            saved=saved,
            hint=hint,
        )


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on our own forms
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _forbidden(why: str) -> Response:
    return HTMLResponse(
        f"<!doctype html><title>Refused</title><p>Refused: {why}. Nothing was written.</p>",
        status_code=403,
        headers=_SECURITY_HEADERS,
    )


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def create_app(review: ReviewApp) -> Starlette:
    """The ASGI app; its lifespan opens the review source and loads the last review."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if review.source is not None:  # the CLI opened it already (and reported any error)
            yield
            return
        with review.open_source() as source:
            review.start(source)
            yield

    def allowed(request: Request) -> bool:
        """With an access token, every request carries it (cookie, bearer or ?token=)."""
        if review.access_token is None:
            return True
        offered = [
            request.cookies.get(ACCESS_COOKIE, ""),
            request.query_params.get("token", ""),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        ]
        return any(hmac.compare_digest(o, review.access_token) for o in offered if o)

    async def checked_post(request: Request) -> tuple[Any, Response | None]:
        """The form, or the 403 that refuses it: CSRF token and same origin first."""
        form = await request.form()
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin is not None and origin != own:
            return form, _forbidden("the form came from another site")
        token = form.get("csrf")
        if not isinstance(token, str) or not hmac.compare_digest(token, review.csrf):
            return form, _forbidden("the form carries no valid session token (reload the page)")
        return form, None

    async def access(request: Request, call_next: RequestResponseEndpoint) -> Response:
        """With an access token, every request (any path) carries it, or is refused here; a
        link that brings it as ``?token=`` leaves it behind as a cookie."""
        if not allowed(request):
            return _forbidden("this review needs its access token")
        response = await call_next(request)
        token = request.query_params.get("token")
        if review.access_token and token and hmac.compare_digest(token, review.access_token):
            response.set_cookie(ACCESS_COOKIE, token, httponly=True, samesite="strict")
        return response

    def rep_of(request: Request) -> tuple[Packet | None, Response | None]:
        """The rep a request is about, or the 404 when there is no such rep."""
        packet = review.packet(request.path_params["slug"])
        if packet is None:
            return None, HTMLResponse("No such rep in this review.", status_code=404)
        return packet, None

    async def index(request: Request) -> Response:
        return review.index()

    async def rep(request: Request) -> Response:
        packet, refusal = rep_of(request)
        if packet is None:
            return refusal or HTMLResponse(status_code=404)
        saved = None
        if request.query_params.get("saved", "").isdigit():
            saved = review.current(packet).get(int(request.query_params["saved"]))
        hint = commitments.vagueness_hint(saved.text, saved.due) if saved else None
        if hint:
            hint = hint.replace("--due", "the Due field")
        return review.rep_page(packet, saved=saved, hint=hint)

    async def commit(request: Request) -> Response:
        packet, refusal = rep_of(request)
        if packet is None:
            return refusal or HTMLResponse(status_code=404)
        form, refused = await checked_post(request)
        if refused is not None:
            return refused
        values = {k: _text(form, k) for k in ("text", "deal_id", "due", "success")}
        errors: dict[str, str] = {}
        assert review.source is not None and review.review_date is not None
        due = None
        try:
            due = commitments.parse_due(values["due"] or None)
        except UsageError as exc:
            errors["due"] = exc.message
        known = {d.deal.id for d in packet.deals}
        deal_id = values["deal_id"] or None
        if deal_id is not None and deal_id not in known:
            errors["deal_id"] = "Choose one of this rep's deals, or no specific deal."
        if not values["text"].strip():
            errors["text"] = "Write what the rep will do, with whom, by when."
        if not errors:
            try:
                prepared = commitments.prepare(
                    review.source.store,
                    deal_id,
                    values["text"],
                    due,
                    packet.rep.email,
                    review.review_date,
                    success=values["success"] or None,
                )
            except UsageError as exc:
                errors["text"] = exc.message
        if errors:
            return review.rep_page(packet, status=400, errors=errors, form=values)
        [new_id] = commitments.record(review.source.store, [prepared])
        review.load()  # the page shows what the store now holds
        return _redirect(request, f"/rep/{quote(packet.slug)}?saved={new_id}#agree-{packet.slug}")

    async def followup(request: Request) -> Response:
        packet, refusal = rep_of(request)
        if packet is None:
            return refusal or HTMLResponse(status_code=404)
        form, refused = await checked_post(request)
        if refused is not None:
            return refused
        assert review.source is not None and review.review_date is not None
        commitment_id = int(request.path_params["commitment"])
        if commitment_id not in review.current(packet):
            return HTMLResponse("No such commitment for this rep.", status_code=404)
        status = _text(form, "status")
        try:
            commitments.follow_up(
                review.source.store,
                commitment_id,
                status=status,
                note=_text(form, "note") or None,
                as_of=review.review_date,
            )
        except UsageError as exc:
            errors = {f"followup-{commitment_id}": exc.message}
            return review.rep_page(packet, status=400, errors=errors)
        review.load()  # the kept rate and Deliver reflect it
        return _redirect(request, f"/rep/{quote(packet.slug)}#c{commitment_id}")

    routes = [
        Route("/", index),
        Route("/rep/{slug}", rep),
        Route("/rep/{slug}/commit", commit, methods=["POST"]),
        Route("/rep/{slug}/followup/{commitment:int}", followup, methods=["POST"]),
    ]
    # Only this machine's names: a web page elsewhere cannot rebind its own domain to 127.0.0.1
    # and read the sheets. With an access token (off loopback) the token is what protects.
    hosts = ["*"] if review.access_token else ["127.0.0.1", "localhost", "[::1]", "::1"]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
            Middleware(BaseHTTPMiddleware, dispatch=access),
        ],
    )

    return app


def _redirect(request: Request, path: str) -> Response:
    # 303: the browser follows with a GET, so a reload never posts the form twice
    return RedirectResponse(path, status_code=303, headers=_SECURITY_HEADERS)
