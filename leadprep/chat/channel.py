"""Slack and Microsoft Teams as a delivery channel: one compact message per manager and service,
posted to the team's webhook through the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from leadprep.chat.messages import KINDS, compose_chat, webhook_urls
from leadprep.chat.webhook import WebhookTransport
from leadprep.config import ChatSettings, Config
from leadprep.outbox import Outcome, Sending, SendReport, Transport, deliver
from leadprep.packets import Packet
from leadprep.registry import channel
from leadprep.store import Store


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
        return send_chat(
            sending.config,
            sending.store,
            sending.packets,
            out_dir=sending.out_dir,
            as_of=sending.as_of,
            dry_run=sending.dry_run,
            force=sending.force,
            progress=sending.progress,
        )


def send_chat(
    config: Config,
    store: Store,
    packets: list[Packet],
    *,
    out_dir: Path,
    as_of: date,
    dry_run: bool = False,
    force: bool = False,
    transport: Callable[[], Transport] | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> SendReport:
    """The chat part of a send: one message per manager and service, through the outbox."""
    messages, notes = compose_chat(config, packets, as_of)
    managers = sorted(
        {t.manager.email for t in config.teams} | {p.manager.email for p in packets if p.manager}
    )
    report = deliver(
        store,
        messages,
        transport
        or (
            lambda: WebhookTransport(
                webhook_urls(config, managers), policy=(config.chat or ChatSettings()).retry
            )
        ),
        out_dir=out_dir,
        as_of=as_of,
        dry_run=dry_run,
        force=force,
        progress=progress,
        kinds=KINDS,
    )
    report.notes = notes + report.notes
    return report
