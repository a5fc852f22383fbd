"""The job behind ``leadprep send`` and ``schedule``: prepare this review, compose, deliver."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from leadprep.config import Config
from leadprep.errors import ConfigError, LeadprepError
from leadprep.outbox import Channel, Outcome, Sending, SendReport
from leadprep.prep import PrepResult, open_review, run_prep
from leadprep.registry import CHANNELS
from leadprep.store import Store
from leadprep.writeback import said, write_back

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
    """Prepare this review's sheets and deliver them through every channel the config asks for
    (email; chat for the teams that have a webhook): the job behind ``send`` and ``schedule``."""
    channels: list[Channel] = [entry.factory() for entry in CHANNELS.entries().values()]
    active = [c for c in channels if c.configured(config)]
    if not active:
        raise ConfigError(
            "The config has neither an email nor a chat section, so there is nobody to send to.",
            hint='Add email: {smtp: ..., from: ...} or chat: {slack: "${SLACK_WEBHOOK}"} '
            "(see config.example.yaml).",
        )
    if not dry_run:  # a dry run writes the outbox and sends nothing: it needs no secret
        for channel in active:
            channel.check(config)
    pdf = pdf_available()
    formats = sorted({"html", *(f for c in active for f in c.formats(config, pdf))})
    # The demo's own dated history lives in a throwaway store; what was sent lives in `state`.
    with open_review(config, as_of, store=state) as source:
        prep = run_prep(source, as_of=as_of, out_dir=out_dir, formats=formats)
        config = source.config
    sending = Sending(
        config, state, prep.packets, prep.files, as_of, out_dir, dry_run, force, progress
    )
    report = SendReport()
    for channel in active:
        part = channel.send(sending)
        report.outcomes += part.outcomes
        report.notes += part.notes
    if not dry_run and not source.demo and state.path is not None:
        report.notes += _write_back(config, state)
    return SendResult(prep, report)


def _write_back(config: Config, state: Store) -> list[str]:
    """The commitments' tasks, brought up to date with the send (a scheduled send keeps them so
    as well); a CRM that does not answer only leaves a note: the tasks wait for the next sync."""
    try:
        done = write_back(config, state_path=state.path)
    except LeadprepError as exc:
        return [f"the CRM's tasks wait for the next sync: {exc.message}"]
    return said(*done) if done else []
