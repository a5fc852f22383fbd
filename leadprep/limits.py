"""Limits learned from the team's own won deals, so "stuck" means what it means for this team.

A built-in 30 days calls almost every deal stuck in a team whose deals take three months, and
almost none in a team that closes in a week. Where the data holds enough won deals, the limit of
a stage is the time in which most of them (a documented percentile) left that stage, from the
CRM's stage history; else the time in which most of them closed after they were created. Every
limit says where it came from, and the evidence quotes it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from leadprep.formatting import plural
from leadprep.model import STAGE, Deal

PINNED, STAGE_HISTORY, CYCLE, DEFAULT = "pinned", "stage history", "won deals' cycle", "default"


def stage_key(stage: str) -> str:
    """Stage names compare without case or repeated spaces."""
    return " ".join(stage.lower().split())


def share_words(percentile: int) -> str:
    """``90`` → ``9 in 10``; ``75`` → ``75%``: how the sheet says a percentile."""
    return f"{percentile // 10} in 10" if percentile % 10 == 0 else f"{percentile}%"


def nearest_rank(values: list[int], percentile: int) -> int:
    """The nearest-rank percentile: the smallest value at least ``percentile``% of values reach."""
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Limit:
    """How many days is too long, where that number came from, and the words that say so."""

    days: int
    source: str  # PINNED | STAGE_HISTORY | CYCLE | DEFAULT
    why: str  # "9 in 10 of your 4,238 won deals closed within 106 days of being created"
    sample: int = 0  # won deals it was learned from


@dataclass(frozen=True, slots=True)
class LearnedLimits:
    """What the won deals in the data say: per stage (from stage history) and for the whole
    cycle (created to closed); ``won`` counts the won deals seen, learned from or not."""

    percentile: int = 90
    by_stage: dict[str, Limit] = field(default_factory=dict)
    cycle: Limit | None = None
    won: int = 0

    def learned(self, stage: str) -> Limit | None:
        """The limit learned for ``stage``: its own, else the whole cycle's, else None."""
        return self.by_stage.get(stage_key(stage)) or self.cycle


def learn(deals: Iterable[Deal], percentile: int, min_sample: int) -> LearnedLimits:
    """The limits the won deals support: a stage needs ``min_sample`` won deals with a dated stay
    in it; the cycle needs ``min_sample`` won deals with a created and a close date."""
    stays: dict[str, list[int]] = {}
    names: dict[str, str] = {}
    cycles: list[int] = []
    won = 0
    for deal in deals:
        if not (deal.is_closed and deal.is_won):
            continue
        won += 1
        entries = [(c.at, c.new) for c in deal.history_of(STAGE) if c.at is not None]
        for (entered, stage), (left, _) in itertools.pairwise(entries):
            if isinstance(stage, str) and left >= entered:
                stays.setdefault(stage_key(stage), []).append((left - entered).days)
                names.setdefault(stage_key(stage), stage)
        if deal.created_at is not None and deal.close_date is not None:
            days = (deal.close_date - deal.created_at.date()).days
            if days >= 0:
                cycles.append(days)
    share = share_words(percentile)
    by_stage = {
        key: Limit(
            days=max(1, nearest_rank(values, percentile)),
            source=STAGE_HISTORY,
            why=(
                f"{share} of your {len(values):,} won deals that passed through {names[key]} "
                f"left it within {plural(nearest_rank(values, percentile), 'day')}"
            ),
            sample=len(values),
        )
        for key, values in stays.items()
        if len(values) >= min_sample
    }
    cycle = None
    if len(cycles) >= min_sample:
        days = nearest_rank(cycles, percentile)
        cycle = Limit(
            days=max(1, days),
            source=CYCLE,
            why=(
                f"{share} of your {len(cycles):,} won deals closed within "
                f"{plural(days, 'day')} of being created"
            ),
            sample=len(cycles),
        )
    return LearnedLimits(percentile, by_stage, cycle, won)


def shared_reasons(pairs: Iterable[tuple[str | None, str]]) -> list[str]:
    """One line per distinct reason, naming the scopes (stages) that share it, in first-seen
    order: ``[("Discovery", "default limit 30 days"), ("Proposal", "default limit 30 days")]``
    → ``["Discovery and Proposal: default limit 30 days"]``; a reason with no scope stands
    alone."""
    scopes: dict[str, list[str]] = {}
    for scope, reason in pairs:
        named = scopes.setdefault(reason, [])
        if scope is not None and scope not in named:
            named.append(scope)
    out = []
    for reason, named in scopes.items():
        if not named:
            out.append(reason)
            continue
        head = ", ".join(named[:-1]) + f" and {named[-1]}" if len(named) > 1 else named[0]
        out.append(f"{head}: {reason}")
    return out
