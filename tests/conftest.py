"""Fixtures only; shared helpers live in tests/helpers.py (import them from there)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from leadprep.model import Deal
from tests.helpers import make_deal

# CI runs the same examples every time (a red CI must mean a change broke something); a
# developer's run explores new ones, and what fails is kept in .hypothesis/ to be replayed.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def smtp() -> Iterator[object]:
    """A real SMTP server on loopback for one test (tests/fakes/smtp_server.py)."""
    from tests.fakes.smtp_server import SMTPServer

    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's config or writes their state."""
    monkeypatch.setenv("LEADPREP_STATE", str(tmp_path / "state.db"))
    monkeypatch.delenv("LEADPREP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def deal() -> Callable[..., Deal]:
    return make_deal
