"""Risk signals: pure functions ``(Deal, Context) -> Flag | None``.

Every flag carries a severity and an evidence line written from the deal's own data, so a manager
can check it against the CRM. Thresholds come from ``signals.*`` in the config; docs/signals.md
explains each default. Missing data never raises and never produces a flag on its own (except
``no_close_date``, which *is* the missing data).
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from leadprep.config import SignalSettings
from leadprep.formatting import days_between, money, percent, plural, short_date
from leadprep.model import AMOUNT, CLOSE_DATE, STAGE, Deal

HIGH, MEDIUM, LOW = "high", "medium", "low"
SEVERITY_RANK = {HIGH: 3, MEDIUM: 2, LOW: 1}
_RAISE = {LOW: MEDIUM, MEDIUM: HIGH, HIGH: HIGH}

FLAG_CODES = (
    "single_threaded",
    "no_decision_maker",
    "close_date_slipped",
    "close_date_passed",
    "no_close_date",
    "stale",
    "stuck_in_stage",
    "no_next_step",
    "amount_decreased",
    "commit_without_evidence",
    "closing_soon_early_stage",
)

FLAG_TITLES = {
    "single_threaded": "Single-threaded",
    "no_decision_maker": "No decision maker",
    "close_date_slipped": "Close date slipped",
    "close_date_passed": "Close date passed",
    "no_close_date": "No close date",
    "stale": "Stale",
    "stuck_in_stage": "Stuck in stage",
    "no_next_step": "No next step",
    "amount_decreased": "Amount decreased",
    "commit_without_evidence": "Commit without evidence",
    "closing_soon_early_stage": "Closing soon, early stage",
}


@dataclass(frozen=True, slots=True)
class Flag:
    """One risk on one deal: what, how bad, and the evidence from the deal's data."""

    code: str
    severity: str
    evidence: str
    facts: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def title(self) -> str:
        return FLAG_TITLES.get(self.code, self.code)


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a signal may look at besides the deal itself. Built once per run, then per deal."""

    today: date
    settings: SignalSettings = field(default_factory=SignalSettings)
    previous: Deal | None = None  # the deal at the previous review
    close_dates_seen: tuple[date, ...] = ()  # close dates at earlier reviews, oldest first
    stage_medians: dict[str, float] = field(default_factory=dict)  # stage (lower) -> median days
    stage_orders: dict[str, int] = field(default_factory=dict)  # stage (lower) -> pipeline order


# --- helpers -------------------------------------------------------------------------------------


def _quarter(day: date, fiscal_start_month: int) -> tuple[int, int]:
    shifted = (day.month - fiscal_start_month) % 12
    year = day.year if day.month >= fiscal_start_month else day.year - 1
    return year, shifted // 3


def close_date_timeline(deal: Deal, seen: Iterable[date]) -> list[date]:
    """Every distinct close date the deal has had, oldest first, ending with the current one.

    CRM history is the backbone; close dates seen at earlier reviews are woven in only where the
    history does not already contain them, so one push seen both ways counts once.
    """
    backbone: list[date] = []
    for change in deal.history_of(CLOSE_DATE):
        for value in (change.old, change.new):
            if isinstance(value, date) and (not backbone or backbone[-1] != value):
                backbone.append(value)
    if deal.close_date is not None and (not backbone or backbone[-1] != deal.close_date):
        backbone.append(deal.close_date)
    merged = list(backbone)
    position = -1  # index in merged of the last observation matched
    pending: list[date] = []  # observations the history lacks, waiting for the next match
    observations = [*seen, deal.close_date] if deal.close_date is not None else list(seen)
    for value in observations:
        match = next((i for i in range(position + 1, len(merged)) if merged[i] == value), None)
        if match is None:
            repeated = pending[-1:] == [value] or (position >= 0 and merged[position] == value)
            if not repeated:
                pending.append(value)
            continue
        merged[match:match] = pending
        position, pending = match + len(pending), []
    merged.extend(pending)
    return [v for i, v in enumerate(merged) if i == 0 or merged[i - 1] != v]


def _chain(values: list[date], today: date, limit: int = 5) -> str:
    shown = [short_date(v, today) for v in values[-limit:]]
    return ("… → " if len(values) > limit else "") + " → ".join(shown)


def _contact_list(deal: Deal, limit: int = 4) -> str:
    labels = [c.label for c in deal.contacts[:limit]]
    more = len(deal.contacts) - limit
    return ", ".join(labels) + (f" and {more} more" if more > 0 else "")


def _stage_key(stage: str) -> str:
    return " ".join(stage.lower().split())


def _by_stage(limits: dict[str, int], stage: str) -> int | None:
    wanted = _stage_key(stage)
    for name, days in limits.items():
        if _stage_key(name) == wanted:
            return days
    return None


# --- the signals ---------------------------------------------------------------------------------


def single_threaded(deal: Deal, ctx: Context) -> Flag | None:
    """Fewer buyer contacts than ``min_contacts`` (high), or just short of ``healthy_contacts`` (low)."""
    cfg = ctx.settings.single_threaded
    if deal.amount is not None and deal.amount < cfg.min_amount:
        return None
    count = len(deal.contacts)
    facts = {"contacts": count}
    if count < cfg.min_contacts:
        evidence = (
            "no buyer contacts on the deal"
            if count == 0
            else f"{plural(count, 'contact')}: {_contact_list(deal)}"
        )
        return Flag("single_threaded", HIGH, evidence, facts)
    if count < cfg.healthy_contacts:
        return Flag(
            "single_threaded", LOW, f"thin: only {count} contacts: {_contact_list(deal)}", facts
        )
    return None


def _is_power(contact_role: str | None, title: str | None, ctx: Context) -> bool:
    cfg = ctx.settings.no_decision_maker
    role = (contact_role or "").lower()
    if role and any(r.lower() in role for r in cfg.roles):
        return True
    text = f"{title or ''} {contact_role or ''}".lower()
    return any(re.search(p, text, re.IGNORECASE) for p in cfg.title_patterns)


def _late_stage(deal: Deal, ctx: Context) -> bool:
    cfg = ctx.settings.no_decision_maker
    if cfg.from_stage:
        threshold = ctx.stage_orders.get(_stage_key(cfg.from_stage))
        if threshold is not None and deal.stage_order is not None:
            return deal.stage_order >= threshold
    return deal.probability is not None and deal.probability >= cfg.from_probability


def no_decision_maker(deal: Deal, ctx: Context) -> Flag | None:
    """From a late stage on, no contact whose role or title marks power to buy."""
    if not _late_stage(deal, ctx):
        return None
    if any(_is_power(c.role, c.title, ctx) for c in deal.contacts):
        return None
    where = f"in {deal.stage}" + (
        f" ({percent(deal.probability)})" if deal.probability is not None else ""
    )
    if not deal.contacts:
        evidence = f"{where} with no contacts on the deal"
    else:
        who = (
            "the only contact is not"
            if len(deal.contacts) == 1
            else f"none of the {len(deal.contacts)} contacts is"
        )
        evidence = (
            f"{where}; {who} an economic buyer, decision maker or executive: {_contact_list(deal)}"
        )
    severity = HIGH if (deal.probability or 0) >= 0.6 else MEDIUM
    return Flag("no_decision_maker", severity, evidence, {"contacts": len(deal.contacts)})


def close_date_slipped(deal: Deal, ctx: Context) -> Flag | None:
    """Pushes of the close date (a pull-in is not a push), from CRM history and earlier reviews."""
    cfg = ctx.settings.close_date_slipped
    timeline = close_date_timeline(deal, ctx.close_dates_seen)
    pushes = [(a, b) for a, b in itertools.pairwise(timeline) if b > a]
    if not pushes:
        return None
    count = len(pushes)
    days = sum((b - a).days for a, b in pushes)
    crossed = any(
        _quarter(a, cfg.fiscal_year_start_month) != _quarter(b, cfg.fiscal_year_start_month)
        for a, b in pushes
    )
    severity = HIGH if count >= cfg.unreliable_at else MEDIUM if count >= cfg.escalate_at else LOW
    if crossed:
        severity = _RAISE[severity]
    evidence = (
        f"close date pushed {count}×, {plural(days, 'day')} in total: {_chain(timeline, ctx.today)}"
    )
    if crossed:
        evidence += " (crossed a quarter end)"
    facts = {
        "pushes": count,
        "days": days,
        "crossed_quarter": crossed,
        "unreliable": count >= cfg.unreliable_at,
        "timeline": timeline,
    }
    return Flag("close_date_slipped", severity, evidence, facts)


def close_date_passed(deal: Deal, ctx: Context) -> Flag | None:
    """An open deal whose close date is already behind us."""
    if deal.close_date is None or deal.close_date >= ctx.today:
        return None
    days = (ctx.today - deal.close_date).days
    severity = HIGH if days > ctx.settings.close_date_passed.high_after_days else MEDIUM
    evidence = (
        f"close date {short_date(deal.close_date, ctx.today)} passed {plural(days, 'day')} ago; "
        f"still open in {deal.stage}"
    )
    return Flag("close_date_passed", severity, evidence, {"days": days})


def no_close_date(deal: Deal, ctx: Context) -> Flag | None:
    """An open deal with no close date at all: a hygiene gap."""
    if deal.close_date is not None:
        return None
    return Flag("no_close_date", MEDIUM, f"no close date in the CRM (stage {deal.stage})")


def stale(deal: Deal, ctx: Context) -> Flag | None:
    """No logged activity for ``days`` (per-stage overrides); unknown activity is not flagged."""
    cfg = ctx.settings.stale
    if deal.last_activity_at is None:
        return None
    limit = _by_stage(cfg.by_stage, deal.stage) or cfg.days
    days = days_between(deal.last_activity_at, ctx.today)
    if days < limit:
        return None
    severity = HIGH if days >= 2 * limit else MEDIUM
    evidence = (
        f"no activity for {plural(days, 'day')} "
        f"(last: {short_date(deal.last_activity_at, ctx.today)}; limit {limit})"
    )
    return Flag("stale", severity, evidence, {"days": days, "limit": limit})


def stuck_in_stage(deal: Deal, ctx: Context) -> Flag | None:
    """Longer in the current stage than its limit: configured, else a multiple of the median, else 30 days."""
    cfg = ctx.settings.stuck_in_stage
    if deal.stage_entered_at is None:
        return None
    days = days_between(deal.stage_entered_at, ctx.today)
    configured = _by_stage(cfg.by_stage, deal.stage)
    median = ctx.stage_medians.get(_stage_key(deal.stage))
    if configured is not None:
        limit, why = configured, f"limit {configured} days for this stage"
    elif median is not None:
        limit = round(median * cfg.median_multiple)
        why = f"{cfg.median_multiple:g}× the {round(median)}-day median for this stage"
    else:
        limit, why = cfg.days, f"limit {cfg.days} days"
    if days <= limit:
        return None
    severity = HIGH if days > 2 * limit else MEDIUM
    evidence = (
        f"in {deal.stage} for {plural(days, 'day')} since "
        f"{short_date(deal.stage_entered_at, ctx.today)} ({why})"
    )
    return Flag("stuck_in_stage", severity, evidence, {"days": days, "limit": limit})


def no_next_step(deal: Deal, ctx: Context) -> Flag | None:
    """No next step recorded, or one left unchanged for ``max_age_days`` (when the CRM tells)."""
    cfg = ctx.settings.no_next_step
    if not deal.next_step:
        return Flag("no_next_step", MEDIUM, "no next step recorded")
    if deal.next_step_updated_at is None:
        return None
    days = days_between(deal.next_step_updated_at, ctx.today)
    if days < cfg.max_age_days:
        return None
    evidence = f"next step unchanged for {plural(days, 'day')}: “{deal.next_step}”"
    return Flag("no_next_step", LOW, evidence, {"days": days})


def amount_decreased(deal: Deal, ctx: Context) -> Flag | None:
    """The amount went down since the last review, or within ``lookback_days`` of CRM history."""
    cfg = ctx.settings.amount_decreased
    current = deal.amount
    if current is None:
        return None
    before: Decimal | None = None
    since = ""
    if (
        ctx.previous is not None
        and ctx.previous.amount is not None
        and ctx.previous.amount > current
    ):
        before, since = ctx.previous.amount, "since the last review"
    for change in deal.history_of(AMOUNT):
        if change.at is None or days_between(change.at, ctx.today) > cfg.lookback_days:
            continue
        old, new = change.old, change.new
        if isinstance(old, Decimal) and isinstance(new, Decimal) and new < old:
            if before is None or old > before:
                before, since = old, f"on {short_date(change.at, ctx.today)}"
            break
    if before is None or before <= current or before == 0:
        return None
    drop = float((before - current) / before * 100)
    severity = HIGH if drop >= cfg.high_drop_percent else MEDIUM
    evidence = (
        f"amount cut from {money(before, deal.currency)} to {money(current, deal.currency)} "
        f"(−{drop:.0f}%) {since}"
    )
    return Flag("amount_decreased", severity, evidence, {"percent": round(drop)})


def closing_soon_early_stage(deal: Deal, ctx: Context) -> Flag | None:
    """Closes within ``within_days`` but the stage's probability is below ``max_probability``."""
    cfg = ctx.settings.closing_soon_early_stage
    if deal.close_date is None or deal.probability is None or deal.close_date < ctx.today:
        return None
    days = (deal.close_date - ctx.today).days
    if days > cfg.within_days or deal.probability >= cfg.max_probability:
        return None
    severity = HIGH if days <= cfg.within_days // 2 else MEDIUM
    evidence = (
        f"closes {short_date(deal.close_date, ctx.today)} (in {plural(days, 'day')}) "
        f"but is in {deal.stage} ({percent(deal.probability)})"
    )
    return Flag("closing_soon_early_stage", severity, evidence, {"days": days})


def commit_without_evidence(deal: Deal, ctx: Context, others: list[Flag]) -> Flag | None:
    """Forecast says Commit / Best Case while a high-severity risk stands."""
    categories = {
        c.lower().replace("_", " ") for c in ctx.settings.commit_without_evidence.categories
    }
    category = (deal.forecast_category or "").lower().replace("_", " ").strip()
    if category not in categories:
        return None
    high = [f for f in others if f.severity == HIGH]
    if not high:
        return None
    severity = HIGH if category == "commit" else MEDIUM
    risks = ", ".join(f.title.lower() for f in high)
    evidence = f"forecast {deal.forecast_category} while high-severity flags stand: {risks}"
    return Flag("commit_without_evidence", severity, evidence, {"category": deal.forecast_category})


SIGNALS: tuple[tuple[str, Callable[[Deal, Context], Flag | None]], ...] = (
    ("single_threaded", single_threaded),
    ("no_decision_maker", no_decision_maker),
    ("close_date_slipped", close_date_slipped),
    ("close_date_passed", close_date_passed),
    ("no_close_date", no_close_date),
    ("stale", stale),
    ("stuck_in_stage", stuck_in_stage),
    ("no_next_step", no_next_step),
    ("amount_decreased", amount_decreased),
    ("closing_soon_early_stage", closing_soon_early_stage),
)


def evaluate(deal: Deal, ctx: Context) -> list[Flag]:
    """Every enabled flag that fires on an open deal, most severe first."""
    if deal.is_closed:
        return []
    settings = ctx.settings
    flags = [
        flag
        for code, signal in SIGNALS
        if getattr(settings, code).enabled and (flag := signal(deal, ctx)) is not None
    ]
    if settings.commit_without_evidence.enabled:
        extra = commit_without_evidence(deal, ctx, flags)
        if extra is not None:
            flags.append(extra)
    return sorted(flags, key=lambda f: (-SEVERITY_RANK[f.severity], FLAG_CODES.index(f.code)))


def stage_medians(deals: Iterable[Deal], min_sample: int) -> dict[str, float]:
    """Median days deals spent in each stage, from dated stage history; stages with too few stays omitted."""
    stays: dict[str, list[int]] = {}
    for deal in deals:
        entries = [c for c in deal.history_of(STAGE) if c.at is not None]
        for this, nxt in itertools.pairwise(entries):
            if isinstance(this.new, str):
                stays.setdefault(_stage_key(this.new), []).append((nxt.at - this.at).days)
    return {stage: statistics.median(d) for stage, d in stays.items() if len(d) >= min_sample}


def stage_orders(deals: Iterable[Deal]) -> dict[str, int]:
    """Stage name (lower) -> pipeline order, as the deals' source reported it."""
    return {_stage_key(d.stage): d.stage_order for d in deals if d.stage_order is not None}
