"""Talking to web services, for connectors and channels alike: retries by classification,
cursor paging, request counting, batches. Nothing here knows which service it talks to.

A client built on it is a ``classify`` function that reads one answer as :class:`Ok`,
:class:`Retry` or :class:`Fail`; :func:`with_retries` does the waiting (the service's
``Retry-After``, else exponential backoff with jitter, so eight workers retrying at once do not
come back at once), the counting and the final "did not answer" error, which the caller names
for its role (a CRM that did not answer, a chat service that did not).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import Field

from leadprep.errors import LeadprepError, ServiceUnavailableError
from leadprep.settings import Section

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P")
H = TypeVar("H", bound=Hashable)


# --- where secrets may go -----------------------------------------------------------------------


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` is a literal loopback address (127.0.0.0/8 or ::1); names do not count,
    since a name can resolve anywhere."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_base_url(value: str, key: str, *, query: bool = False) -> str:
    """A base URL a secret may be sent to: https, or plain http only to a literal loopback
    address (a local test server); never with a user name or password inside it. A webhook's
    own URL may carry a query (``query``): Teams Workflows put their signature there."""
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{key} {value!r} is not a URL ({exc})") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError(f"{key} must not contain a user name or password ('user@host')")
    if (parts.query and not query) or parts.fragment:
        raise ValueError(f"{key} must not contain a query or fragment")
    if parts.scheme == "https" and host:
        return value.strip().rstrip("/")
    if parts.scheme == "http" and is_loopback_host(host):
        return value.strip().rstrip("/")
    raise ValueError(
        f"{key} must be an https:// URL (plain http only to a literal loopback address such as "
        "http://127.0.0.1:8080, for a local test server)"
    )


# --- retries -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ok(Generic[T]):
    """The answer is usable: ``value`` is what the call returns."""

    value: T


@dataclass(frozen=True)
class Retry:
    """Worth asking again: ``problem`` says why (for the final error), ``after`` how long the
    service asked to wait (None: exponential backoff)."""

    problem: str
    after: float | None = None


@dataclass(frozen=True)
class Fail:
    """Asking again will not help: ``error`` is raised as it is."""

    error: LeadprepError


Verdict = Ok[T] | Retry | Fail


class RetrySettings(Section):
    max_attempts: int = Field(6, ge=1, le=20)
    base_delay: float = Field(1.0, ge=0)  # first backoff after a 5xx or timeout, doubled each time
    window_wait: float = Field(10.0, ge=0)  # wait after a 429 that names no Retry-After
    timeout: float = Field(30.0, gt=0)  # seconds per request


class RetryPolicy(Protocol):
    max_attempts: int
    base_delay: float


def backoff_delay(
    attempt: int, base: float, cap: float = 30.0, jitter: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with "equal jitter": half of base, 2×base, 4×base … (capped) for sure,
    the other half at random (``jitter()`` in [0, 1)); attempt counts from 1."""
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return ceiling / 2 + jitter() * ceiling / 2


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds; fractional values accepted); None if absent or a date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def with_retries(
    attempt: Callable[[int], Verdict[T]],
    *,
    policy: RetryPolicy,
    usage: Usage,
    gave_up: Callable[[str, int], LeadprepError],
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Call ``attempt(n)`` until it answers :class:`Ok` (returned) or :class:`Fail` (raised), at
    most ``policy.max_attempts`` times; then ``gave_up(last problem, attempts)`` is raised."""
    problem = "no answer"
    for number in range(1, policy.max_attempts + 1):
        verdict = attempt(number)
        if isinstance(verdict, Ok):
            return verdict.value
        if isinstance(verdict, Fail):
            raise verdict.error
        problem = verdict.problem
        if number < policy.max_attempts:
            delay = verdict.after
            if delay is None:
                delay = backoff_delay(number, policy.base_delay, jitter=jitter)
            usage.retried()
            log.debug("%s: %s; retry %d in %.2fs", usage.service, problem, number, delay)
            sleep(delay)
    raise gave_up(problem, policy.max_attempts)


# --- cursors -------------------------------------------------------------------------------------


class CursorGuard:
    """Remembers the cursors of one walk and stops it when a service hands one out twice, which
    would otherwise page forever."""

    def __init__(
        self, what: str, unavailable: type[LeadprepError] = ServiceUnavailableError
    ) -> None:
        self.what = what
        self.unavailable = unavailable  # the error for the caller's role (a CRM, a channel)
        self._seen: set[Hashable] = set()

    def check(self, cursor: Hashable) -> None:
        if cursor in self._seen:
            raise self.unavailable(
                f"{self.what} returned the same page cursor twice; stopping to avoid a loop."
            )
        self._seen.add(cursor)


def walk_pages(
    fetch: Callable[[str | None], P],
    next_cursor: Callable[[P], str | None],
    what: str,
    unavailable: type[LeadprepError] = ServiceUnavailableError,
) -> Iterator[P]:
    """Every page of a cursor-paged list: ``fetch(None)``, then ``fetch(cursor)`` while the last
    page names a next one; a cursor handed out twice stops the walk with ``unavailable``."""
    guard = CursorGuard(what, unavailable)
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield page
        cursor = next_cursor(page)
        if not cursor:
            return
        guard.check(cursor)


def walk_batches(
    items: Sequence[H],
    size: int,
    fetch: Callable[[list[H]], P],
    more: Callable[[P], Iterable[H]],
    what: str,
    unavailable: type[LeadprepError] = ServiceUnavailableError,
) -> Iterator[P]:
    """Batched reads whose answers may ask for more of some items (a cursor per item): every
    batch of ``items`` (at most ``size``), then batches of what each answer names as ``more``,
    until none is left; an item named twice stops the walk with ``unavailable``."""
    guard = CursorGuard(what, unavailable)
    pending = list(items)
    while pending:
        batch, pending = pending[:size], pending[size:]
        page = fetch(batch)
        yield page
        for item in more(page):
            guard.check(item)
            pending.append(item)


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``, in order."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# --- counting ------------------------------------------------------------------------------------


@dataclass
class Usage:
    """Requests made in this run (by kind), retries, time waited for rate limits, and what the
    service says about its own budget; thread-safe."""

    service: str
    requests: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    throttled_seconds: float = 0.0
    tallies: dict[str, int] = field(default_factory=dict)  # things counted that are not requests
    budget: str | None = None  # the service's own words about the daily budget
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def count(self, kind: str, waited: float = 0.0) -> None:
        with self._lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            self.throttled_seconds += waited

    def tally(self, what: str) -> None:
        with self._lock:
            self.tallies[what] = self.tallies.get(what, 0) + 1

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def summary(self) -> str:
        kinds = [f"{k} {v}" for k, v in sorted(self.requests.items()) if k != "requests"]
        kinds += [f"{v} {k}" for k, v in sorted(self.tallies.items())]
        text = f"{self.service}: {self.total} requests"
        if kinds:
            text += f" ({', '.join(kinds)})"
        text += f"; {self.retries} retried"
        if self.throttled_seconds:
            text += f"; waited {self.throttled_seconds:.1f}s for rate limits"
        if self.budget:
            text += f"; {self.budget}"
        return text
