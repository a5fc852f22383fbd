"""Delivering prep sheets, split by job so other channels reuse the outbox:

- :mod:`~leadprep.mail.compose`: the messages (HTML with CSS inlined, plain text, attachments);
- :mod:`~leadprep.mail.outbox`: the outbox folder and the deliveries table (exactly once per
  week and recipient, failures kept and retried), for any :class:`~leadprep.mail.outbox.Transport`;
- :mod:`~leadprep.mail.smtp`: the SMTP transport;
- :mod:`~leadprep.mail.job`: ``run_send``, the job behind ``send`` and ``schedule``.
"""

from leadprep.mail.compose import Outgoing, compose
from leadprep.mail.job import SendResult, pdf_available, run_send, send_email
from leadprep.mail.outbox import Outcome, SendReport, deliver
from leadprep.mail.smtp import SMTPSender

__all__ = [
    "Outcome",
    "Outgoing",
    "SMTPSender",
    "SendReport",
    "SendResult",
    "compose",
    "deliver",
    "pdf_available",
    "run_send",
    "send_email",
]
