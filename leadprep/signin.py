"""Who is asking: the ways a request to the review pages is signed in.

- :class:`ThisMachine`: ``leadprep review`` on loopback, one person's, no sign-in.
- :class:`SharedToken`: ``leadprep review --host … --token``, one token for whoever has it.
- :class:`ProxyHeader`: ``leadprep serve`` behind a proxy that authenticates (oauth2-proxy, any
  SSO proxy): one header carries the person's email, believed only from the proxy's addresses.
- :class:`AccessLinkSignIn`: ``leadprep serve`` without a proxy: a per-person access link
  (``leadprep access add``) opens a sign-in kept in an HttpOnly cookie.

Each answers a request with :class:`Identity` or with the response that refuses or redirects it;
:mod:`leadprep.review` then decides what that person may see (:mod:`leadprep.scope`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from leadprep.config import ProxySignIn
from leadprep.sanitize import UnsafeValue, email_address
from leadprep.store import Store

ACCESS_COOKIE = "leadprep_access"  # the shared token's cookie (``review --token``)
SIGN_IN_COOKIE = "leadprep_signin"  # an access link's sign-in (``serve``)
LINK_PATH = "/access/"  # an access link is <server>/access/<token>
MIN_TOKEN = 16  # characters a shared token needs; shorter ones are guessed


@dataclass(frozen=True)
class Identity:
    """Who a request comes from (``email`` None: this machine's user, or whoever holds the
    shared token) and from where (the address the audit records)."""

    email: str | None
    address: str
    session: str | None = None  # the sign-in cookie's value, for signing out


@dataclass(frozen=True)
class Refused:
    """A request turned away before any page: its status, why, and what to do about it."""

    status: int
    why: str
    hint: str | None = None


class SignInPolicy(Protocol):
    """How the server learns who is asking."""

    #: whether people sign out here (access links), or elsewhere (the proxy) or never
    signs_out: bool

    async def identify(self, request: Request, store: Store) -> Identity | Refused | Response:
        """The person behind ``request``, a refusal, or a response to send instead (a
        redirect that trades a token in the address bar for a cookie)."""
        ...


def client_address(request: Request) -> str:
    return request.client.host if request.client else "an unknown address"


def _redirect_with_cookie(
    request: Request, name: str, value: str, *, secure: bool, max_age: int | None = None
) -> Response:
    # 303 to the same path without its query: the token leaves the address bar for a cookie
    target = request.url.path if not request.url.path.startswith(LINK_PATH) else "/"
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    # Lax, not Strict: a link opened from webmail is a cross-site navigation, and the redirect
    # right after it must carry the cookie; posts are guarded by the CSRF token and Origin.
    response.set_cookie(
        name, value, httponly=True, samesite="lax", secure=secure, max_age=max_age, path="/"
    )
    return response


@dataclass
class ThisMachine:
    """The loopback review: whoever reaches 127.0.0.1 is this machine's user."""

    signs_out: bool = False

    async def identify(self, request: Request, store: Store) -> Identity | Refused | Response:
        return Identity(None, client_address(request))


@dataclass
class SharedToken:
    """``review --token``: every request carries the one token (cookie, bearer or a
    ``?token=`` link, which becomes the cookie), or the one-time code the CLI opens the browser
    with; each wrong try waits a little longer."""

    token: str
    # a one-time code the CLI opens the browser with, exchanged for the access cookie, so the
    # token itself is never on a command line (the browser's) or in the address bar
    launch_code: str | None = field(default_factory=lambda: secrets.token_urlsafe(24))
    signs_out: bool = False
    wrong_tries: int = 0

    async def identify(self, request: Request, store: Store) -> Identity | Refused | Response:
        code = request.query_params.get("code")
        if code and self.launch_code and hmac.compare_digest(code, self.launch_code):
            self.launch_code = None  # once
            return _redirect_with_cookie(request, ACCESS_COOKIE, self.token, secure=False)
        offered = [
            request.cookies.get(ACCESS_COOKIE, ""),
            request.query_params.get("token", ""),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        ]
        if not any(hmac.compare_digest(o, self.token) for o in offered if o):
            self.wrong_tries += 1
            await asyncio.sleep(min(0.2 * self.wrong_tries, 5.0))
            return Refused(403, "this review needs its access token")
        if request.query_params.get("token"):
            return _redirect_with_cookie(request, ACCESS_COOKIE, self.token, secure=False)
        return Identity(None, client_address(request))


@dataclass
class ProxyHeader:
    """The proxy in front signs people in and names them in one header. The header is
    believed only on a connection from one of the proxy's addresses: from anywhere else, with
    or without it, the request is refused (the Grafana and Datasette way)."""

    settings: ProxySignIn
    signs_out: bool = False
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(init=False)

    def __post_init__(self) -> None:
        self.networks = [ipaddress.ip_network(n) for n in self.settings.trusted]

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    async def identify(self, request: Request, store: Store) -> Identity | Refused | Response:
        peer = client_address(request)
        if not self.trusts(peer):
            return Refused(
                403,
                "this server is reached through its sign-in proxy only",
                hint="Open the address your company gave for leadprep, not the server's own.",
            )
        name = self.settings.header
        values = request.headers.getlist(name)
        if len(values) != 1:
            return Refused(
                403 if values else 401,
                f"the sign-in proxy sent {'no' if not values else 'more than one'} {name} header",
                hint="Whoever runs leadprep: make the proxy set that header (oauth2-proxy: "
                "--set-xauthrequest / --pass-user-headers) and overwrite any the browser sends.",
            )
        try:
            email = email_address(values[0].strip())
        except UnsafeValue:
            email = None
        if not email:
            return Refused(403, f"the sign-in proxy's {name} header is not an email address")
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
        return Identity(email.lower(), _address_or(forwarded, peer))


def _address_or(value: str, fallback: str) -> str:
    """The address the proxy says the person came from, if it is one; else the proxy's."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return fallback


@dataclass
class AccessLinkSignIn:
    """Per-person access links: ``/access/<token>`` opens a sign-in (HttpOnly cookie) and
    redirects to the index, so the token does not stay in the address bar."""

    secure: bool = False  # the server is reached over https: its cookie is Secure
    signs_out: bool = True
    wrong_tries: int = 0

    async def identify(self, request: Request, store: Store) -> Identity | Refused | Response:
        if request.url.path.startswith(LINK_PATH):
            token = request.url.path.removeprefix(LINK_PATH)
            opened = store.access.sign_in(token)
            if isinstance(opened, str):
                self.wrong_tries += 1
                await asyncio.sleep(min(0.2 * self.wrong_tries, 5.0))
                return Refused(403, opened, hint=ASK_FOR_A_LINK)
            seconds = int((opened.link.expires_at - datetime.now(UTC)).total_seconds())
            return _redirect_with_cookie(
                request, SIGN_IN_COOKIE, opened.session, secure=self.secure, max_age=seconds
            )
        session = request.cookies.get(SIGN_IN_COOKIE)
        link = store.access.signed_in(session) if session else None
        if link is None:
            return Refused(
                401,
                "you are not signed in"
                + (" (that sign-in ended or its link was revoked)" if session else ""),
                hint=ASK_FOR_A_LINK,
            )
        return Identity(link.email, client_address(request), session)


ASK_FOR_A_LINK = (
    "Open the access link you were sent. Without one (or if it expired), ask whoever runs "
    "leadprep for a new one (they run: leadprep access add <your email>)."
)
