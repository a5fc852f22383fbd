"""Keeps secret values out of logs, errors and output: every secret read from the environment is
registered here and masked wherever text leaves the process through logging or error messages."""

from __future__ import annotations

import logging
import threading

MASK = "****"
_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so :func:`redact` masks it from now on."""
    if value and len(value) >= 4:  # shorter values would mask ordinary words
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``****``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks registered secrets in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
