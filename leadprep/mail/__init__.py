"""Email delivery: composing the messages (:mod:`~leadprep.mail.compose`: HTML with CSS inlined,
plain text, attachments) and the SMTP transport (:mod:`~leadprep.mail.smtp`). The outbox both
email and chat go through is :mod:`leadprep.outbox`; the job behind ``send`` and ``schedule``
is :mod:`leadprep.send`."""

from leadprep.mail.channel import EmailChannel, send_email
from leadprep.mail.compose import Outgoing, compose
from leadprep.mail.smtp import SMTPSender

__all__ = ["EmailChannel", "Outgoing", "SMTPSender", "compose", "send_email"]
