"""Keeps secret values out of logs, errors and output: every secret read from the environment is
registered here and masked wherever text leaves the process through logging (the formatter
masks the whole record, traceback included) or error messages."""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlsplit

MASK = "****"
PART = 8  # any run of this many characters of a secret is masked too, wherever it appears
LONG = 16  # ... of a long secret (tokens, webhook paths): a short password's pieces are words
_lock = threading.Lock()
_secrets: set[str] = set()
_parts: set[str] = set()  # every PART-long piece of the secret-bearing part of each secret


def register_secret(value: str | None) -> None:
    """Remember a secret value so :func:`redact` masks it from now on, and any piece of it of
    PART characters or more (a service's error may quote part of a token or webhook path)."""
    if value and len(value) >= 4:  # shorter values would mask ordinary words
        bearing = _secret_bearing(value)
        with _lock:
            _secrets.add(value)
            if len(bearing) >= LONG:
                _parts.update(bearing[i : i + PART] for i in range(len(bearing) - PART + 1))


def _secret_bearing(value: str) -> str:
    """The part of a secret that is secret: a URL's path and query (its host is public, and is
    named in hints), else all of it."""
    parts = urlsplit(value) if "://" in value else None
    if parts and parts.scheme in ("http", "https") and parts.netloc:
        return value[len(f"{parts.scheme}://{parts.netloc}") :]
    return value


def redact(text: str) -> str:
    """``text`` with every registered secret, and every piece of one PART characters long or
    longer, replaced by ``****``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
        parts = frozenset(_parts)
    for secret in secrets:
        text = text.replace(secret, MASK)
    if not parts or len(text) < PART:
        return text
    hidden = [False] * len(text)
    for i in range(len(text) - PART + 1):
        if text[i : i + PART] in parts:
            hidden[i : i + PART] = [True] * PART
    if not any(hidden):
        return text
    out, masking = [], False
    for ch, hide in zip(text, hidden, strict=True):
        if hide and not masking:
            out.append(MASK)
        elif not hide:
            out.append(ch)
        masking = hide
    return "".join(out)


class RedactingFormatter(logging.Formatter):
    """Masks registered secrets in the whole formatted record: message, exception text and
    traceback (an SDK error may echo a token in its body), and makes control characters
    visible so logged CRM text cannot steer the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        from leadprep.sanitize import terminal_text

        return terminal_text(redact(super().format(record)))

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))
