"""The bundled demo pipeline as a connector (the data and its history live in :mod:`leadprep.demo`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

from leadprep.connectors import Check, FetchResult
from leadprep.demo import current_deals, pipeline
from leadprep.registry import connector

if TYPE_CHECKING:
    from leadprep.config import Config


@connector("demo", capabilities={"demo"})
class DemoConnector:
    """Serves the demo pipeline for any review date."""

    source = "demo"

    @classmethod
    def from_config(cls, settings: None, config: Config) -> DemoConnector:
        return cls()

    def fetch(
        self, reps: set[str] | None, as_of: date, known_ids: frozenset[str] = frozenset()
    ) -> FetchResult:
        deals = current_deals(as_of)
        if reps is not None:
            deals = [d for d in deals if d.owner.email in reps]
        return FetchResult(source=self.source, deals=deals)

    def diagnose(self) -> Iterator[Check]:
        demo = pipeline()
        yield Check(
            "crm", True, f"demo pipeline ({len(demo.deals)} open deals, {len(demo.reps)} reps)"
        )
