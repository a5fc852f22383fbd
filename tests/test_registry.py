"""A new source or channel is one module plus its tests: registered with its decorator, it is a
``crm.kind`` (with its own settings section, checked like every other) and a working connector;
a channel answers the outbox like the built-in ones. Shown here with tiny in-test registrations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pydantic import Field

from leadprep.config import ConfigError, parse_config
from leadprep.connectors import Check, FetchResult, connector_for
from leadprep.model import Delivery
from leadprep.outbox import Delivered, Handover, Sending, SendReport, deliver
from leadprep.registry import CHANNELS, SOURCES, Registry, channel, connector
from leadprep.settings import Section
from tests.helpers import cli, make_deal, write_config


class SheetSettings(Section):
    sheet_id: str = Field(min_length=5)


@pytest.fixture
def sheet_source() -> Iterator[type]:
    @connector("sheet", settings=SheetSettings, capabilities={"api"})
    class SheetConnector:
        source = "sheet"

        def __init__(self, settings: SheetSettings) -> None:
            self.settings = settings

        @classmethod
        def from_config(cls, settings: SheetSettings, config: object) -> SheetConnector:
            return cls(settings)

        def fetch(self, reps, as_of, known_ids=frozenset()) -> FetchResult:
            return FetchResult(source=self.source, deals=[make_deal(name="From the sheet")])

        def diagnose(self) -> Iterator[Check]:
            yield Check("crm", True, f"sheet {self.settings.sheet_id} readable")

    yield SheetConnector
    SOURCES.unregister("sheet")


def test_a_registered_source_is_a_crm_kind_with_its_own_checked_settings(sheet_source, tmp_path):
    config = parse_config({"crm": {"kind": "sheet", "sheet": {"sheet_id": "abc123"}}})
    made = connector_for(config)
    assert isinstance(made, sheet_source) and made.settings.sheet_id == "abc123"
    assert [d.name for d in made.fetch(None, date(2026, 11, 30)).deals] == ["From the sheet"]
    with pytest.raises(ConfigError) as bad:
        parse_config({"crm": {"kind": "sheet", "sheet": {"sheet_id": "ab", "colour": 1}}})
    said = "\n".join(bad.value.problems)
    assert "crm.sheet.sheet_id" in said and "crm.sheet.colour: unknown key" in said
    with pytest.raises(
        ConfigError, match=re.escape("crm.kind is 'sheet' but there is no crm.sheet section")
    ):
        parse_config({"crm": {"kind": "sheet"}})
    # and end to end, through the CLI as a user runs it
    path = write_config(tmp_path / "l.yaml", "crm: {kind: sheet, sheet: {sheet_id: abc123}}\n")
    result = cli("prep", "-c", path, "-o", tmp_path / "out", "-f", "md", "--as-of", "2026-11-30")
    assert result.exit_code == 0, result.output
    assert "From the sheet" in (tmp_path / "out" / "alex-morgan.md").read_text()


def test_once_unregistered_the_kind_is_refused_again(sheet_source):
    SOURCES.unregister("sheet")
    with pytest.raises(ConfigError, match=re.escape("crm.kind: Input should be")):
        parse_config({"crm": {"kind": "sheet", "sheet": {"sheet_id": "abc123"}}})


def test_the_built_in_kinds_declare_themselves():
    kinds = SOURCES.entries()
    assert list(kinds) == ["hubspot", "salesforce", "file", "demo"]
    assert kinds["hubspot"].can("api") and kinds["salesforce"].can("api")
    assert kinds["demo"].settings is None and kinds["demo"].can("demo")
    assert list(CHANNELS.entries()) == ["email", "chat"]
    assert CHANNELS.get("chat").can("slack") and CHANNELS.get("chat").can("teams")


def test_a_registered_channel_delivers_the_sheets_through_send(tmp_path: Path):
    """A pager channel in a dozen lines: `leadprep send` prepares the review, and the channel's
    messages go through the outbox (once a week: a second send sends nothing)."""
    pages: list[str] = []

    class PagerTransport:
        def scope(self, delivery: Delivery) -> str:
            return "pager"

        def send(self, delivery: Delivery, payload: bytes) -> Handover:
            pages.append(payload.decode())
            return Delivered()

        def close(self) -> None:
            pass

    @channel("pager", capabilities={"chat"})
    class PagerChannel:
        def configured(self, config: object) -> bool:
            return True

        def check(self, config: object) -> None:
            pass

        def formats(self, config: object, pdf: bool) -> set[str]:
            return set()

        def send(self, sending: Sending) -> SendReport:
            from leadprep.chat import ChatMessage

            messages = [
                ChatMessage(
                    "pager", p.rep.email, {"text": f"{p.rep.name}: {len(p.flagged)} flagged"}
                )
                for p in sending.packets
            ]
            return deliver(
                sending.store,
                messages,
                PagerTransport,
                out_dir=sending.out_dir,
                as_of=sending.as_of,
                kinds=["pager"],
            )

    try:
        config = write_config(tmp_path / "l.yaml", "state: {path: s.db}\n")  # the demo pipeline
        first = cli("send", "-c", config, "-o", tmp_path / "out", "--as-of", "2026-11-30")
        assert first.exit_code == 0, first.output + first.stderr
        assert len(pages) == 4 and any("Priya Shah" in page for page in pages)
        again = cli("send", "-c", config, "-o", tmp_path / "out", "--as-of", "2026-11-30")
        assert again.exit_code == 0 and len(pages) == 4  # once a week
    finally:
        CHANNELS.unregister("pager")


FOUND = Registry("source", (), package="crm_plugins")  # a registry over a package of the test's


def test_a_new_module_in_the_package_is_found_without_being_listed(tmp_path, monkeypatch):

    package = tmp_path / "crm_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pipedrive.py").write_text(
        "from tests.test_registry import FOUND\n"
        "@FOUND.register('pipedrive', capabilities={'api'})\n"
        "class PipedriveConnector:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(FOUND.entries()) == ["pipedrive"]
    assert FOUND.get("pipedrive").can("api")
