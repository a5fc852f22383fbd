"""Keeps secret values out of logs, errors and output: every secret read from the environment is
registered here and masked wherever text leaves the process through logging (the formatter
masks the whole record, traceback included) or error messages."""

from __future__ import annotations

import logging
import threading
from typing import Any

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


class RedactingFormatter(logging.Formatter):
    """Masks registered secrets in the whole formatted record: message, exception text and
    traceback (an SDK error may echo a token in its body), and makes control characters
    visible so logged CRM text cannot steer the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        from leadprep.sanitize import terminal_text

        return terminal_text(redact(super().format(record)))

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))
