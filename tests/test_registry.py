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
from leadprep.outbox import Delivered, Handover, deliver
from leadprep.registry import CHANNELS, SOURCES, channel, connector
from leadprep.settings import Section
from leadprep.store import Store
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
    assert set(CHANNELS.entries()) == {"email", "slack", "teams"}


def test_a_registered_channel_carries_outbox_messages(tmp_path: Path):
    @channel("pager", capabilities={"chat"})
    class PagerTransport:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def scope(self, delivery: Delivery) -> str:
            return "pager"

        def send(self, delivery: Delivery, payload: bytes) -> Handover:
            self.sent.append(payload.decode())
            return Delivered()

        def close(self) -> None:
            pass

    try:
        from leadprep.chat import ChatMessage

        pager = CHANNELS.get("pager").factory()
        with Store.open(tmp_path / "state.db") as store:
            report = deliver(
                store,
                [ChatMessage("pager", "dana@example.com", {"text": "3 deals need you"})],
                lambda: pager,
                out_dir=tmp_path,
                as_of=date(2026, 11, 30),
                kinds=["pager"],
            )
        assert [o.status for o in report.outcomes] == ["sent"]
        assert pager.sent == ['{"text": "3 deals need you"}']
    finally:
        CHANNELS.unregister("pager")
