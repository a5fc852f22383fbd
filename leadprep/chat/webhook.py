"""Posting stored chat messages to each team's webhook, with httpx through the neutral HTTP kit
(:mod:`leadprep.http`): 429 honours Retry-After, 5xx and timeouts back off. A service that
still does not answer is :class:`~leadprep.outbox.Unreachable` for the rest of the run; a
refusal (a 4xx) concerns that message only. Webhook URLs are secrets: only in memory, never in
what is said (a refusal repeats a bare error code at most)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

from leadprep.config import ChatSettings, RetrySettings
from leadprep.errors import ChannelUnavailableError, LeadprepError
from leadprep.http import Fail, Ok, Retry, Usage, Verdict, parse_retry_after, with_retries
from leadprep.model import Delivery
from leadprep.outbox import Delivered, Handover, Refused, Unreachable

_ERROR_CODE = re.compile(r"[a-z_]{1,40}")  # Slack's error answers: invalid_payload, no_service

MAX_WAIT = 60.0  # a Retry-After longer than this is cut short (the next run retries)


class WebhookTransport:
    """Posts stored chat messages to their team's webhook (``urls``: (kind, manager) -> URL)."""

    def __init__(
        self,
        urls: dict[tuple[str, str], str],
        *,
        policy: RetrySettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.urls = urls
        self.policy = policy or ChatSettings().retry
        self.sleep = sleep
        self.client = httpx.Client(timeout=self.policy.timeout, follow_redirects=False)
        self.usage = Usage("chat")

    def scope(self, delivery: Delivery) -> str:
        """A chat service: when Slack is down, the other Slack posts wait; Teams' still go."""
        return delivery.kind

    def send(self, delivery: Delivery, payload: bytes) -> Handover:
        service = "Slack" if delivery.kind == "slack" else "Microsoft Teams"
        url = self.urls.get((delivery.kind, delivery.recipient))
        if url is None:
            return Refused(
                f"no {service} webhook is configured for {delivery.recipient}'s team now"
            )

        def attempt(number: int) -> Verdict[None]:
            self.usage.count(delivery.kind)
            try:
                response = self.client.post(
                    url, content=payload, headers={"Content-Type": "application/json"}
                )
            except httpx.TimeoutException:
                return Retry(f"{service} did not answer in {self.policy.timeout:g}s")
            except httpx.TransportError as exc:  # the URL is never part of what is said
                return Retry(f"cannot reach {service} ({type(exc).__name__})")
            status = response.status_code
            if 200 <= status < 300:
                return Ok(None)
            if status == 429:
                after = parse_retry_after(response.headers.get("Retry-After"))
                return Retry(f"{service} asked to slow down (429)", min(after or 1.0, MAX_WAIT))
            if status >= 500:
                return Retry(f"{service} answered {status}")
            # Only a bare error code is repeated (Slack answers "invalid_payload"); any other
            # body may quote the webhook's own secret path, so it is neither shown nor stored.
            code = response.text.strip()
            reason = f" {code}" if _ERROR_CODE.fullmatch(code) else ""
            return Fail(LeadprepError(f"{service} refused the message ({status}{reason})"))

        def gave_up(problem: str, attempts: int) -> LeadprepError:
            return ChannelUnavailableError(f"{problem}, still after {attempts} attempts")

        try:
            with_retries(
                attempt, policy=self.policy, usage=self.usage, gave_up=gave_up, sleep=self.sleep
            )
        except ChannelUnavailableError as exc:
            return Unreachable(exc.message, self.scope(delivery))
        except LeadprepError as exc:
            return Refused(exc.message)
        return Delivered()

    def close(self) -> None:
        self.client.close()
