"""The outbox: nothing lost, nothing doubled, whatever carries the message.

Every message is written to ``<out>/outbox/<week>/`` and recorded in the deliveries table before
any sending; it goes out once per review week, recipient and kind (``force`` resends); one that
fails stays queued and goes out on the next run. Overlapping runs claim each message before
sending it. A transport (SMTP, a chat webhook) only carries one stored message to one recipient
and says what became of it: :class:`Delivered`, :class:`Refused` (this message only: the next
run tries it again) or :class:`Unreachable` (the service itself: the rest of its messages wait
for the next run without being tried, so an outage costs one round of retries, not one per
message).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol

from leadprep.config import Config
from leadprep.model import Delivery, review_week
from leadprep.packets import Packet
from leadprep.render import atomic_write
from leadprep.store import Store


class Message(Protocol):
    """Something to deliver: who it is for, and the bytes the outbox keeps."""

    kind: str
    recipient: str
    suffix: str

    @property
    def payload(self) -> bytes: ...

    @property
    def content_hash(self) -> str: ...


@dataclass(frozen=True)
class Delivered:
    """The service took the message."""


@dataclass(frozen=True)
class Refused:
    """The service refused this message (a recipient, a payload): the others still go."""

    reason: str


@dataclass(frozen=True)
class Unreachable:
    """The service could not be reached or refused us: nothing more goes to ``scope`` in this
    run (the SMTP server; a chat service), and every message for it stays queued."""

    reason: str
    scope: str


Handover = Delivered | Refused | Unreachable


class Transport(Protocol):
    """Carries stored messages, one at a time; ``scope`` names the service a delivery goes
    through (what an :class:`Unreachable` puts out of reach)."""

    def send(self, delivery: Delivery, payload: bytes) -> Handover: ...

    def scope(self, delivery: Delivery) -> str: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Sending:
    """One review's delivery, as every channel gets it: the prepared sheets and how to send."""

    config: Config
    store: Store
    packets: list[Packet]
    files: list[Path]  # what prep wrote (sheets to attach)
    as_of: date
    out_dir: Path
    dry_run: bool = False
    force: bool = False
    progress: Callable[[Outcome], None] | None = None


class Channel(Protocol):
    """A way of delivering the sheets (email, chat), registered with ``@channel``: ``send``
    composes its messages and delivers them through :func:`deliver`."""

    def configured(self, config: Config) -> bool:
        """Whether the config asks for this channel (even if a secret is not set yet)."""
        ...

    def check(self, config: Config) -> None:
        """Before anything is prepared: raise ConfigError for what sending would lack."""
        ...

    def formats(self, config: Config, pdf: bool) -> set[str]:
        """The files this channel needs prep to write (``pdf``: PDFs can be made here)."""
        ...

    def send(self, sending: Sending) -> SendReport: ...


@dataclass
class Outcome:
    """What became of one message in this run."""

    recipient: str
    kind: str
    status: str  # sent | failed | skipped | queued
    detail: str = ""


@dataclass
class SendReport:
    """Every message's outcome, and notes for the person running the send."""

    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]


MAX_NAME = 60  # characters of the recipient kept readable in a file name


def outbox_path(out_dir: Path, week: str, item: Message) -> Path:
    """``<out>/outbox/<week>/<kind>-<recipient>-<hash>.<suffix>``: the recipient made file-safe
    and cut to MAX_NAME characters for reading, and a hash of the exact address so that two
    recipients never share a file (``lee+west@`` and ``lee_west@`` once did, and each manager
    received the other team's sheets). Well under any file system's 255-byte limit."""
    readable = "".join(
        ch if (ch.isascii() and ch.isalnum()) or ch in "@.-" else "_" for ch in item.recipient
    )
    digest = hashlib.sha256(item.recipient.encode("utf-8")).hexdigest()[:12]
    return out_dir / "outbox" / week / f"{item.kind}-{readable[:MAX_NAME]}-{digest}{item.suffix}"


def deliver(
    store: Store,
    outgoing: Sequence[Message],
    transport: Callable[[], Transport],
    *,
    out_dir: Path,
    as_of: date,
    dry_run: bool = False,
    force: bool = False,
    progress: Callable[[Outcome], None] | None = None,
    kinds: Iterable[str] | None = None,
) -> SendReport:
    """Write every message to the outbox, then send what has not gone out yet (this week's and
    earlier failures) through the transport ``transport()`` opens (only when there is something
    to send)."""
    week = review_week(as_of)
    report = SendReport()
    for item in outgoing:
        path = outbox_path(out_dir, week, item)
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
        atomic_write(path, item.payload)
        queued = store.deliveries.queue(
            week, item.recipient, item.kind, item.content_hash, str(path)
        )
        if force and queued.status == "sent":
            store.deliveries.force_resend(queued.id)
    pending = store.deliveries.pending(kinds)  # only what this transport carries
    if dry_run:
        report.outcomes += [Outcome(d.recipient, d.kind, "queued", d.eml_path) for d in pending]
        return report
    if not pending:
        return report
    sender = transport()
    down: dict[str, str] = {}  # scope -> why it is out of reach: its messages wait, untried
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
            scope = sender.scope(delivery)
            error = down.get(scope)
            if error is None:
                handed = _send_one(delivery, sender)
                if isinstance(handed, Unreachable):
                    down[handed.scope] = handed.reason
                error = None if isinstance(handed, Delivered) else handed.reason
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


def deliver_for(
    sending: Sending,
    outgoing: Sequence[Message],
    transport: Callable[[], Transport],
    kinds: Iterable[str],
) -> SendReport:
    """:func:`deliver` for one channel's messages in a send (its own delivery ``kinds``)."""
    return deliver(
        sending.store,
        outgoing,
        transport,
        out_dir=sending.out_dir,
        as_of=sending.as_of,
        dry_run=sending.dry_run,
        force=sending.force,
        progress=sending.progress,
        kinds=kinds,
    )


def _send_one(delivery: Delivery, transport: Transport) -> Handover:
    path = Path(delivery.eml_path)
    try:
        payload = path.read_bytes()
    except OSError as exc:
        return Refused(f"outbox file {path} cannot be read ({exc.strerror})")
    return transport.send(delivery, payload)
