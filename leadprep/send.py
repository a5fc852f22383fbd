"""The job behind ``leadprep send`` and ``schedule``: prepare this review, compose, deliver."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from leadprep.chat import KINDS, WebhookTransport, compose_chat, webhook_urls
from leadprep.config import ChatSettings, Config
from leadprep.errors import ConfigError
from leadprep.mail.compose import Outgoing, compose
from leadprep.mail.smtp import SMTPSender
from leadprep.outbox import Outcome, SendReport, Transport, deliver
from leadprep.packets import Packet
from leadprep.prep import PrepResult, open_review, run_prep
from leadprep.render import Renderer
from leadprep.store import Store

log = logging.getLogger(__name__)


def pdf_available() -> bool:
    """Whether WeasyPrint can be used here (then managers get PDFs attached, else HTML)."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


@dataclass
class SendResult:
    """The prep run behind the send, and what became of each message."""

    prep: PrepResult
    report: SendReport


def run_send(
    config: Config,
    state: Store,
    *,
    as_of: date,
    out_dir: Path,
    dry_run: bool = False,
    force: bool = False,
    progress: Callable[[Outcome], None] | None = None,
) -> SendResult:
    """Prepare this review's sheets and deliver them: email, and chat for the teams that have
    a webhook (the job behind ``send`` and ``schedule``)."""
    if config.email is None and not config.chat_configured:
        raise ConfigError(
            "The config has neither an email nor a chat section, so there is nobody to send to.",
            hint='Add email: {smtp: ..., from: ...} or chat: {slack: "${SLACK_WEBHOOK}"} '
            "(see config.example.yaml).",
        )
    if not dry_run:  # a dry run writes the outbox and sends nothing: it needs no secret
        if config.email is not None:
            config.require_env("email.")
        config.require_chat_env()
    formats = ["html"]
    if config.email is not None:
        formats = sorted({*config.output.formats, "html", *(["pdf"] if pdf_available() else [])})
    # The demo's own dated history lives in a throwaway store; what was sent lives in `state`.
    with open_review(config, as_of, store=state) as source:
        prep = run_prep(source, as_of=as_of, out_dir=out_dir, formats=formats)
        config = source.config
    report = SendReport()
    if config.email is not None:
        outgoing, notes = compose(config, prep.packets, as_of, Renderer(config), prep.files)
        report = send_email(
            config,
            state,
            outgoing,
            out_dir=out_dir,
            as_of=as_of,
            dry_run=dry_run,
            force=force,
            progress=progress,
        )
        report.notes = notes + report.notes
    if config.has_chat:
        chat = send_chat(
            config, state, prep.packets, out_dir=out_dir, as_of=as_of, dry_run=dry_run,
            force=force, progress=progress,
        )  # fmt: skip
        report.outcomes += chat.outcomes
        report.notes += chat.notes
    return SendResult(prep, report)


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


def send_email(
    config: Config,
    store: Store,
    outgoing: list[Outgoing],
    *,
    out_dir: Path,
    as_of: date,
    dry_run: bool = False,
    force: bool = False,
    transport: Callable[[], Transport] | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> SendReport:
    """The email part of a send: checks the SMTP settings, then the outbox delivers over SMTP."""
    settings = config.email
    if settings is None:
        raise ConfigError(
            "There is no email section in the config.", hint="See config.example.yaml, 'email'."
        )
    if not dry_run:
        config.require_env("email.")
    warning = settings.smtp.cleartext_warning()
    if warning and not dry_run:
        log.warning("%s", warning)
    report = deliver(
        store,
        outgoing,
        transport or (lambda: SMTPSender(settings)),
        out_dir=out_dir,
        as_of=as_of,
        dry_run=dry_run,
        force=force,
        progress=progress,
        kinds=("manager", "rep"),
    )
    if warning and not dry_run:
        report.notes.insert(0, warning)
    return report
