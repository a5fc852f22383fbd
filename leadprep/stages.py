"""Pipeline stages: their order, win probability and whether they are closed.

CRMs report this as metadata; for file imports it comes from ``crm.file.stages`` in the config, or
from the built-in catalogue of common stage names (HubSpot's and Salesforce's defaults among them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class StageInfo:
    """One stage as every connector reports it: ``name`` is the label people see, ``order`` its
    place in its pipeline; ``key`` is the CRM's own id for it and ``pipeline`` the pipeline's id,
    where the CRM has them."""

    name: str
    order: int
    probability: float | None
    closed: bool = False
    won: bool = False
    key: str | None = None
    pipeline: str | None = None


# (name, probability, closed, won), earliest first
_DEFAULT_STAGES: tuple[tuple[str, float, bool, bool], ...] = (
    ("Prospecting", 0.05, False, False),
    ("Appointment Scheduled", 0.2, False, False),
    ("Discovery", 0.1, False, False),
    ("Qualification", 0.2, False, False),
    ("Qualified To Buy", 0.4, False, False),
    ("Needs Analysis", 0.2, False, False),
    ("Solution", 0.4, False, False),
    ("Demo", 0.4, False, False),
    ("Value Proposition", 0.5, False, False),
    ("Presentation Scheduled", 0.6, False, False),
    ("Id. Decision Makers", 0.6, False, False),
    ("Perception Analysis", 0.7, False, False),
    ("Proposal", 0.6, False, False),
    ("Proposal/Price Quote", 0.75, False, False),
    ("Decision Maker Bought-In", 0.8, False, False),
    ("Negotiation", 0.8, False, False),
    ("Negotiation/Review", 0.9, False, False),
    ("Contract Sent", 0.9, False, False),
    # Pipedrive's default pipeline
    ("Qualified", 0.1, False, False),
    ("Contact Made", 0.2, False, False),
    ("Demo Scheduled", 0.4, False, False),
    ("Proposal Made", 0.6, False, False),
    ("Negotiations Started", 0.8, False, False),
    ("Closed Won", 1.0, True, True),
    ("Closed Lost", 0.0, True, False),
    ("Won", 1.0, True, True),
    ("Lost", 0.0, True, False),
)


def _key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


class StageCatalog:
    """Looks up a stage by name, case- and spacing-insensitively."""

    def __init__(self, stages: Iterable[StageInfo]) -> None:
        self._by_key = {_key(s.name): s for s in stages}

    @classmethod
    def default(cls) -> StageCatalog:
        # Order follows probability so that mixed vocabularies still sort sensibly.
        ranked = sorted(_DEFAULT_STAGES, key=lambda s: (s[2], s[1]))
        return cls(
            StageInfo(name, i, prob, closed, won)
            for i, (name, prob, closed, won) in enumerate(ranked)
        )

    @classmethod
    def from_list(cls, stages: Iterable[tuple[str, float | None, bool, bool]]) -> StageCatalog:
        """A catalogue from configured stages, listed earliest first."""
        return cls(
            StageInfo(name, i, prob, closed, won)
            for i, (name, prob, closed, won) in enumerate(stages)
        )

    def get(self, name: str | None) -> StageInfo | None:
        return self._by_key.get(_key(name)) if name else None

    def __len__(self) -> int:
        return len(self._by_key)
