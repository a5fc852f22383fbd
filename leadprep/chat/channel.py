"""Slack and Microsoft Teams as a delivery channel: one compact message per manager and service,
posted to the team's webhook through the outbox."""

from __future__ import annotations

from collections.abc import Callable

from leadprep.chat.messages import KINDS, compose_chat, webhook_urls
from leadprep.chat.webhook import WebhookTransport
from leadprep.config import ChatSettings, Config
from leadprep.outbox import Sending, SendReport, Transport, deliver_for
from leadprep.registry import channel


@channel("chat", settings=ChatSettings, capabilities={"slack", "teams"})
class ChatChannel:
    """Slack and Teams, for every team (or the default) with a webhook."""

    def configured(self, config: Config) -> bool:
        return config.chat_configured

    def check(self, config: Config) -> None:
        config.require_chat_env()

    def formats(self, config: Config, pdf: bool) -> set[str]:
        return {"html"}  # the messages link to the sheets (output.base_url)

    def send(self, sending: Sending) -> SendReport:
        if not sending.config.has_chat:
            return SendReport()
        return send_chat(sending)


def send_chat(sending: Sending, transport: Callable[[], Transport] | None = None) -> SendReport:
    """The chat part of a send: one message per manager and service, through the outbox."""
    config, packets = sending.config, sending.packets
    messages, notes = compose_chat(config, packets, sending.as_of)
    managers = sorted(
        {t.manager.email for t in config.teams} | {p.manager.email for p in packets if p.manager}
    )

    def webhooks() -> Transport:
        policy = (config.chat or ChatSettings()).retry
        return WebhookTransport(webhook_urls(config, managers), policy=policy)

    report = deliver_for(sending, messages, transport or webhooks, KINDS)
    report.notes = notes + report.notes
    return report
