"""Composing the emails: one per manager (overview, focus deals, each rep's sheet attached) and,
with ``email.to_reps``, a pre-read per rep. CRM text reaches headers only through
:func:`leadprep.sanitize.display_name` and :func:`leadprep.sanitize.email_address`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from leadprep.config import Config, EmailSettings, Person, format_subject
from leadprep.formatting import short_date
from leadprep.model import has_mailbox
from leadprep.packets import Packet
from leadprep.render import Renderer
from leadprep.sanitize import clean_line, display_name, email_address


@dataclass
class Outgoing:
    """A composed message and who it is for."""

    kind: str  # manager | rep
    recipient: str
    message: EmailMessage

    @property
    def payload(self) -> bytes:
        """What the outbox file holds: the message as it goes over SMTP."""
        return self.message.as_bytes(policy=policy.SMTP)

    suffix = ".eml"

    @property
    def content_hash(self) -> str:
        """A hash of what the message says (not of its Date or Message-ID)."""
        digest = hashlib.sha256()
        for part in self.message.walk():
            if part.is_multipart():
                continue
            digest.update((part.get_filename() or part.get_content_type()).encode())
            payload = part.get_payload(decode=True)
            digest.update(payload if isinstance(payload, bytes) else b"")
        digest.update(str(self.message["Subject"]).encode())
        return digest.hexdigest()


def _week_label(as_of: date) -> str:
    return f"week of {short_date(as_of)}"


def _inline(html: str) -> str:
    import css_inline

    return css_inline.inline(html)


def new_message(
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
        message = new_message(settings, manager, subject)
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
            if not has_mailbox(packet.rep.email):
                notes.append(
                    f"{packet.rep.name} has no email address in the data or the teams: "
                    "no pre-read for them"
                )
                continue
            if not packet.deals and not packet.deliver:
                notes.append(
                    f"{packet.rep.name} has no open deals and nothing to follow up: no pre-read "
                    "for them"
                )
                continue
            manager_name = packet.manager.name if packet.manager else "your manager"
            message = new_message(
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
