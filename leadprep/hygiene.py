"""Pipeline hygiene: a gap most deals share is one line, not the same flag on every deal.

When 180 of a rep's 194 deals are "stuck in stage", printing the flag 180 times hides the six
deals with something else to say; the manager needs the gap stated once, with its count, and the
deals told apart by what distinguishes them. The flags are kept (``packets.json`` still lists
them, marked as shown in a hygiene line); only how the sheet shows them changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from leadprep.limits import shared_reasons
from leadprep.signals import DEAL, FLAG_TITLES, HIGH, HYGIENE, RIDER, Flag

if TYPE_CHECKING:
    from leadprep.packets import DealView

SHARE = 0.5  # a flag on at least this share of the open deals is the pipeline's, not each deal's
MIN_DEALS = 6  # below this many deals, every flag is worth its own row
MAX_RULES = 3  # limits quoted in one line (per stage); the rest counted


@dataclass(frozen=True, slots=True)
class HygieneLine:
    """One gap most open deals share: how many, how many of them high, and the rules in use."""

    code: str
    count: int
    total: int
    high: int = 0
    rules: tuple[str, ...] = ()
    more_rules: int = 0

    @property
    def title(self) -> str:
        return FLAG_TITLES.get(self.code, self.code)

    @property
    def text(self) -> str:
        """``Stuck in stage on 180 of 194 open deals (150 high). Engaging: 9 in 10 …``"""
        text = f"{self.title} on {self.count:,} of {self.total:,} open deals"
        if self.high:
            text += f" ({self.high:,} high)"
        if self.rules:
            text += ". " + "; ".join(r[:1].upper() + r[1:] for r in self.rules)
            if self.more_rules:
                text += f"; and {self.more_rules} more"
        return text


def counts(views: Iterable[DealView]) -> dict[str, int]:
    """Deals carrying each flag code (a rider counts for nothing: it restates another flag)."""
    out: dict[str, int] = {}
    for view in views:
        for code in {f.code for f in view.flags if f.shown != RIDER}:
            out[code] = out.get(code, 0) + 1
    return out


def widespread(count: int, total: int) -> bool:
    """Whether a flag on ``count`` of ``total`` open deals is the pipeline's gap."""
    return count >= MIN_DEALS and count >= SHARE * total


def gather(views: Sequence[DealView], codes: Iterable[str]) -> list[HygieneLine]:
    """Mark the flags of ``codes`` as shown in a hygiene line, and return those lines (most
    deals first)."""
    wanted = set(codes)
    lines = []
    for code in wanted:
        carrying = [f for v in views for f in v.flags if f.code == code and f.shown == DEAL]
        if not carrying:
            continue
        rules = grouped_rules(carrying)
        lines.append(
            HygieneLine(
                code=code,
                count=sum(1 for v in views if any(f.code == code for f in v.flags)),
                total=len(views),
                high=sum(1 for f in carrying if f.severity == HIGH),
                rules=tuple(rules[:MAX_RULES]),
                more_rules=max(0, len(rules) - MAX_RULES),
            )
        )
    for view in views:
        view.flags = [_as_hygiene(f) if f.code in wanted else f for f in view.flags]
    return sorted(lines, key=lambda line: (-line.count, line.code))


def grouped_rules(flags: Iterable[Flag]) -> list[str]:
    """The rules the flags were raised by, one per distinct limit, naming the stages that share
    it: "Qualification, Solution Demo and Proposal: default limit 30 days"."""
    pairs: list[tuple[str | None, str]] = []
    for flag in flags:
        why, scope, rule = (flag.facts.get(k) for k in ("rule_why", "rule_scope", "rule"))
        if isinstance(why, str):
            pairs.append((scope if isinstance(scope, str) else None, why))
        elif isinstance(rule, str):
            pairs.append((None, rule))
    return shared_reasons(pairs)


def _as_hygiene(flag: Flag) -> Flag:
    return replace(flag, shown=HYGIENE) if flag.shown == DEAL else flag


def team_lines(per_rep: Iterable[Sequence[DealView]]) -> list[HygieneLine]:
    """The gaps most of the whole team's open deals share (for the index), without marking."""
    totals: dict[str, int] = {}
    high: dict[str, int] = {}
    raised: dict[str, list[Flag]] = {}
    deals = 0
    for views in per_rep:
        deals += len(views)
        for code, count in counts(views).items():
            totals[code] = totals.get(code, 0) + count
        for view in views:
            for flag in (f for f in view.flags if f.shown != RIDER):
                raised.setdefault(flag.code, []).append(flag)
            for code in {f.code for f in view.flags if f.severity == HIGH and f.shown != RIDER}:
                high[code] = high.get(code, 0) + 1
    lines = []
    for code, count in totals.items():
        if widespread(count, deals):
            rules = grouped_rules(raised.get(code, []))
            lines.append(
                HygieneLine(
                    code,
                    count,
                    deals,
                    high.get(code, 0),
                    tuple(rules[:MAX_RULES]),
                    max(0, len(rules) - MAX_RULES),
                )
            )
    return sorted(lines, key=lambda line: (-line.count, line.code))
