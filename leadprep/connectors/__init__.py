"""Connectors turn a CRM (or an export of one) into canonical :class:`~leadprep.model.Deal` objects.

Every connector implements :class:`Connector`; nothing downstream knows about HTTP, SDKs or field
names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, NamedTuple, Protocol

from leadprep.model import Deal
from leadprep.needs import Need

if TYPE_CHECKING:
    from leadprep.config import Config


@dataclass(frozen=True)
class RowProblem:
    """One input record that could not be used, and why."""

    where: str  # "line 12" / "record 3"
    reason: str
    deal_id: str | None = None

    def __str__(self) -> str:
        deal = f" (deal {self.deal_id})" if self.deal_id else ""
        return f"{self.where}{deal}: {self.reason}"


@dataclass
class FetchResult:
    """What a connector pulled: every deal it found (open and closed) and the records it skipped."""

    source: str
    deals: list[Deal]
    problems: list[RowProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # inputs the source does not carry at all (a signal's ``needs``) -> why; their checks are off
    unsupported: dict[Need, str] = field(default_factory=dict)
    # open deals found but owned by no one the teams list (no sheet): owner name -> deals
    unassigned: dict[str, int] = field(default_factory=dict)


class Check(NamedTuple):
    """One line of ``leadprep doctor``: what was checked, whether it passed, and the detail."""

    name: str
    ok: bool
    detail: str
    warn: bool = False  # ok to run, but likely not what was meant: marked, exit 0


class Connector(Protocol):
    """Pulls deals from one CRM."""

    source: str

    def fetch(
        self, reps: set[str] | None, as_of: date, known_ids: frozenset[str] = frozenset()
    ) -> FetchResult:
        """Deals owned by ``reps`` (emails, lower case), or by everyone when ``reps`` is None.

        ``known_ids`` are deals open at the last review (or carrying commitments): a connector that
        pulls only open deals also reads these, so the sheet can say they were won or lost.
        """
        ...

    def diagnose(self) -> Iterator[Check]:
        """``leadprep doctor``: can this source be read (credentials, access, shape)? One check
        per line, without writing anything."""
        ...


def connector_for(config: Config) -> Connector:
    """The connector ``crm.kind`` names, from the sources registered (:mod:`leadprep.registry`)."""
    from leadprep.errors import ConfigError
    from leadprep.registry import SOURCES

    kind = config.crm.kind
    entry = SOURCES.get(kind)
    if entry is None:
        raise ConfigError(
            f"crm.kind '{kind}' is not available in this version of leadprep yet.",
            hint="Export your deals to CSV and use crm.kind: file (see README, 'Import format').",
        )
    connector: Connector = entry.factory.from_config(getattr(config.crm, kind, None), config)
    return connector
