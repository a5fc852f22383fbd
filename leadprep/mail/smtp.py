"""SMTP, the email transport: one connection per batch, the envelope always the recorded recipient."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from leadprep.config import EmailSettings
from leadprep.model import Delivery
from leadprep.outbox import Delivered, Handover, Refused, Unreachable


class SMTPSender:
    """One SMTP connection for a batch of messages; opened on first use."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self.smtp_settings = settings.smtp
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

    def send_message(self, message: EmailMessage, recipient: str) -> None:
        """Send to exactly ``recipient``: the envelope never comes from the headers."""
        if self._smtp is None:
            self._smtp = self._connect()
        self._smtp.send_message(message, to_addrs=[recipient])

    def send(self, delivery: Delivery, payload: bytes) -> Handover:
        """Send one outbox message to its recorded recipient."""
        message = BytesParser(policy=policy.default).parsebytes(payload)
        try:
            self.send_message(message, delivery.recipient)
        except (
            smtplib.SMTPRecipientsRefused,
            smtplib.SMTPDataError,
            smtplib.SMTPSenderRefused,
        ) as exc:
            return Refused(_describe(exc, self.settings))
        except _CONNECTION_ERRORS as exc:
            self.close()
            return Unreachable(_describe(exc, self.settings), self.scope(delivery))
        return Delivered()

    def scope(self, delivery: Delivery) -> str:
        """Every message goes through the one SMTP server."""
        return "smtp"

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
