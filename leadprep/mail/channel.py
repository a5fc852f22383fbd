"""Email as a delivery channel: each manager's message (and, with ``to_reps``, each rep's
pre-read) composed and sent over SMTP through the outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable

from leadprep.config import Config, EmailSettings
from leadprep.errors import ConfigError
from leadprep.mail.compose import Outgoing, compose
from leadprep.mail.smtp import SMTPSender
from leadprep.outbox import Sending, SendReport, Transport, deliver_for
from leadprep.registry import channel
from leadprep.render import Renderer

log = logging.getLogger(__name__)


@channel("email", settings=EmailSettings, capabilities={"email"})
class EmailChannel:
    """Each manager's message, and each rep's pre-read with ``to_reps``, over SMTP."""

    def configured(self, config: Config) -> bool:
        return config.email is not None

    def check(self, config: Config) -> None:
        config.require_env("email.")

    def formats(self, config: Config, pdf: bool) -> set[str]:
        # managers get every format asked for, and PDFs attached wherever they can be made
        return {*config.output.formats, "html", *(["pdf"] if pdf else [])}

    def send(self, sending: Sending) -> SendReport:
        config = sending.config
        outgoing, notes = compose(
            config, sending.packets, sending.as_of, Renderer(config), sending.files
        )
        report = send_email(sending, outgoing)
        report.notes = notes + report.notes
        return report


def send_email(
    sending: Sending,
    outgoing: list[Outgoing],
    transport: Callable[[], Transport] | None = None,
) -> SendReport:
    """The email part of a send: checks the SMTP settings, then the outbox delivers over SMTP."""
    config, dry_run = sending.config, sending.dry_run
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
    report = deliver_for(
        sending, outgoing, transport or (lambda: SMTPSender(settings)), ("manager", "rep")
    )
    if warning and not dry_run:
        report.notes.insert(0, warning)
    return report
