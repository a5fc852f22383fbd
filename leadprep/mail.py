"""Emailing prep sheets: compose, write to the outbox, send over SMTP, remember what went out.

Nothing lost, nothing doubled: every message is written to ``<out>/outbox/<week>/`` and recorded
in the deliveries table before any sending; a message goes out once per review week and
recipient (``force`` resends); one that fails stays queued and goes out on the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from leadprep.config import Config, EmailSettings, Person, format_subject
from leadprep.errors import ConfigError
from leadprep.formatting import short_date
from leadprep.model import Delivery, review_week
from leadprep.packets import Packet
from leadprep.render import Renderer, atomic_write
from leadprep.sanitize import clean_line, display_name, email_address
from leadprep.store import Store

log = logging.getLogger(__name__)


@dataclass
class Outgoing:
    """A composed message and who it is for."""

    kind: str  # manager | rep
    recipient: str
    message: EmailMessage

    @property
    def content_hash(self) -> str:
        """A hash of what the message says (not of its Date or Message-ID)."""
        digest = hashlib.sha256()
        for part in self.message.walk():
            if part.is_multipart():
                continue
            digest.update((part.get_filename() or part.get_content_type()).encode())
            digest.update(part.get_payload(decode=True) or b"")
        digest.update(str(self.message["Subject"]).encode())
        return digest.hexdigest()


@dataclass
class Outcome:
    recipient: str
    kind: str
    status: str  # sent | failed | skipped | queued
    detail: str = ""


@dataclass
class SendReport:
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def _week_label(as_of: date) -> str:
    return f"week of {short_date(as_of)}"


def _inline(html: str) -> str:
    import css_inline

    return css_inline.inline(html)


def _new_message(
    settings: EmailSettings, to: Person | tuple[str, str], subject: str
) -> EmailMessage:
    name, address = (to.name, to.email) if isinstance(to, Person) else to
    message = EmailMessage()
    message["Subject"] = clean_line(subject) or ""
    message["From"] = settings.from_
    # One recipient per message, validated again here: a header is no place for CRM surprises.
    # An Address object, not formataddr: the policy then encodes a non-ASCII name with specials
    # as one encoded word, where a quoted string would be re-folded into an unparsable header.
    message["To"] = Address(display_name=display_name(name), addr_spec=email_address(address) or "")
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=parseaddr(settings.from_)[1].split("@")[-1])
    return message


def compose(
    config: Config,
    packets: list[Packet],
    as_of: date,
    renderer: Renderer,
    rendered: list[Path] | None = None,
) -> tuple[list[Outgoing], list[str]]:
    """One message per manager (overview, focus deals, each rep's packet attached) and, with
    ``email.to_reps``, a pre-read per rep. Returns the messages and notes about who gets none.

    A PDF is attached only when this run rendered it (``rendered``); otherwise the packet is
    rendered to HTML on the spot, never taken from whatever lies in the output folder."""
    pdfs = {p.name: p for p in rendered or [] if p.suffix == ".pdf"}
    settings = config.email
    assert settings is not None
    notes: list[str] = []
    by_manager: dict[str, list[Packet]] = {}
    managers: dict[str, Person] = {}
    for packet in packets:
        if packet.manager is None:
            notes.append(
                f"{packet.rep.name} has no manager in the config or the CRM data: no email for their sheet"
            )
            continue
        by_manager.setdefault(packet.manager.email, []).append(packet)
        managers[packet.manager.email] = packet.manager
    outgoing = []
    week = _week_label(as_of)
    for email, team in sorted(by_manager.items()):
        manager = managers[email]
        subject = format_subject(
            settings.subject, week=week, reps=len(team), date=as_of.isoformat()
        )
        message = _new_message(settings, manager, subject)
        context = {"manager": manager, "packets": team, "as_of": as_of, "week": week}
        message.set_content(renderer.render_text("email.txt.j2", **context))
        message.add_alternative(
            _inline(renderer.render_text("email.html.j2", **context)), subtype="html"
        )
        for packet in team:
            pdf = pdfs.get(f"{packet.slug}.pdf")
            if pdf is not None:
                message.add_attachment(
                    pdf.read_bytes(), maintype="application", subtype="pdf", filename=pdf.name
                )
            else:
                html = renderer.packet_html(packet).encode("utf-8")
                message.add_attachment(
                    html, maintype="text", subtype="html", filename=f"{packet.slug}.html"
                )
        outgoing.append(Outgoing("manager", email, message))
    if settings.to_reps:
        for packet in packets:
            if not packet.rep.email:
                continue
            manager_name = packet.manager.name if packet.manager else "your manager"
            message = _new_message(
                settings,
                (packet.rep.name, packet.rep.email),
                f"Your pipeline review pre-read · {week}",
            )
            context = {"packet": packet, "manager_name": manager_name, "as_of": as_of, "week": week}
            message.set_content(renderer.render_text("rep_email.txt.j2", **context))
            message.add_alternative(
                _inline(renderer.render_text("rep_email.html.j2", **context)), subtype="html"
            )
            outgoing.append(Outgoing("rep", packet.rep.email, message))
    return outgoing, notes


def _outbox_path(out_dir: Path, week: str, item: Outgoing) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "@.-_" else "_" for ch in item.recipient)
    return out_dir / "outbox" / week / f"{item.kind}-{safe}.eml"


class SMTPSender:
    """One SMTP connection for a batch of messages; opened on first use."""

    def __init__(self, config: Config) -> None:
        assert config.email is not None
        self.smtp_settings = config.email.smtp
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.smtp_settings
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            if s.security == "starttls":
                smtp.starttls(context=context)
        if s.username:
            smtp.login(s.username, s.password.get_secret_value() if s.password else "")
        return smtp

    def send(self, message: EmailMessage, recipient: str) -> None:
        """Send to exactly ``recipient``: the envelope never comes from the headers."""
        if self._smtp is None:
            self._smtp = self._connect()
        self._smtp.send_message(message, to_addrs=[recipient])

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


_CONNECTION_ERRORS = (
    smtplib.SMTPConnectError,
    smtplib.SMTPServerDisconnected,
    smtplib.SMTPAuthenticationError,
    OSError,
)


def _describe(exc: BaseException, settings: EmailSettings) -> str:
    s = settings.smtp
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"the SMTP server refused the login for {s.username!r} ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = ", ".join(
            f"{addr}: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for addr, (code, msg) in exc.recipients.items()
        )
        return f"recipient refused ({codes})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the SMTP server answered {exc.smtp_code}: {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {s.host}:{s.port} (connection refused)"
    if isinstance(exc, TimeoutError):
        return f"{s.host}:{s.port} did not answer within {s.timeout:g}s"
    return f"{type(exc).__name__}: {exc}"


def deliver(
    config: Config,
    store: Store,
    outgoing: list[Outgoing],
    *,
    out_dir: Path,
    as_of: date,
    dry_run: bool = False,
    force: bool = False,
    sender: SMTPSender | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> SendReport:
    """Write every message to the outbox, then send what has not gone out yet (this week's and
    earlier failures)."""
    settings = config.email
    if settings is None:
        raise ConfigError(
            "There is no email section in the config.", hint="See config.example.yaml, 'email'."
        )
    config.require_env("email.")
    week = review_week(as_of)
    report = SendReport()
    warning = settings.smtp.cleartext_warning()
    if warning and not dry_run:
        log.warning("%s", warning)
        report.notes.append(warning)
    for item in outgoing:
        path = _outbox_path(out_dir, week, item)
        path.parent.mkdir(parents=True, exist_ok=True)
        existing = store.deliveries.get(week, item.recipient, item.kind)
        if existing is not None and existing.status == "sent" and not force:
            report.outcomes.append(
                Outcome(
                    item.recipient,
                    item.kind,
                    "skipped",
                    f"already sent this week ({existing.sent_at})",
                )
            )
            continue
        atomic_write(path, item.message.as_bytes(policy=policy.SMTP))
        queued = store.deliveries.queue(
            week, item.recipient, item.kind, item.content_hash, str(path)
        )
        if force and queued.status == "sent":
            store.deliveries.force_resend(queued.id)
    pending = store.deliveries.pending()
    if dry_run:
        report.outcomes += [Outcome(d.recipient, d.kind, "queued", d.eml_path) for d in pending]
        return report
    sender = sender or SMTPSender(config)
    broken: str | None = None  # set when the server is down or refused us: keep the rest queued
    try:
        for delivery in pending:
            # Claimed one at a time in its own write transaction: runs that overlap (cron plus a
            # manual run) each send a message only if they took it first.
            if not store.deliveries.claim(delivery.id):
                report.outcomes.append(
                    Outcome(
                        delivery.recipient,
                        delivery.kind,
                        "skipped",
                        "sent (or being sent) by another leadprep run",
                    )
                )
                continue
            error = broken
            if error is None:
                error, connection_lost = _try_send(delivery, sender, settings)
                if connection_lost:
                    broken = error
            store.deliveries.mark(delivery.id, sent=error is None, error=error)
            outcome = Outcome(
                delivery.recipient,
                delivery.kind,
                "sent" if error is None else "failed",
                delivery.review_week if error is None else error,
            )
            report.outcomes.append(outcome)
            if progress:
                progress(outcome)
    finally:
        sender.close()
    return report


def _try_send(
    delivery: Delivery, sender: SMTPSender, settings: EmailSettings
) -> tuple[str | None, bool]:
    """Send one outbox message: (error or None, whether the connection itself failed)."""
    path = Path(delivery.eml_path)
    try:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    except OSError as exc:
        return f"outbox file {path} cannot be read ({exc.strerror})", False
    try:
        sender.send(message, delivery.recipient)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
        return _describe(exc, settings), False
    except _CONNECTION_ERRORS as exc:
        sender.close()
        return _describe(exc, settings), True
    return None, False


def pdf_available() -> bool:
    """Whether WeasyPrint can be used here (then managers get PDFs attached, else HTML)."""
    try:
        import weasyprint  # type: ignore[import-untyped]  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


@dataclass
class SendResult:
    prep: object  # PrepResult
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
    """Prepare this review's sheets and email them (the job behind ``send`` and ``schedule``)."""
    from leadprep.prep import open_review, run_prep

    if config.email is None:
        raise ConfigError(
            "The config has no email section, so there is nobody to send to.",
            hint="Add email: {smtp: ..., from: ...} (see config.example.yaml).",
        )
    config.require_env("email.")
    formats = sorted({*config.output.formats, "html", *(["pdf"] if pdf_available() else [])})
    # The demo's own dated history lives in a throwaway store; what was sent lives in `state`.
    with open_review(config, as_of, store=state) as source:
        prep = run_prep(source, as_of=as_of, out_dir=out_dir, formats=formats)
        config = source.config
    outgoing, notes = compose(config, prep.packets, as_of, Renderer(config), prep.files)
    report = deliver(
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
    return SendResult(prep, report)
