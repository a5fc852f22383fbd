"""Risk signals: pure functions ``(Deal, Context) -> Flag | None``.

Every flag carries a severity and an evidence line written from the deal's own data, so a manager
can check it against the CRM. Thresholds come from ``signals.*`` in the config; docs/signals.md
explains each default. Missing data never raises and never produces a flag on its own (except
``no_close_date``, which *is* the missing data).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, create_model, model_validator

from leadprep.formatting import days_between, money, percent, plural, short_date, times
from leadprep.limits import DEFAULT, PINNED, LearnedLimits, Limit, shared_reasons, stage_key
from leadprep.model import AMOUNT, CLOSE_DATE, STAGE, Deal
from leadprep.needs import Need
from leadprep.settings import Section

HIGH, MEDIUM, LOW = "high", "medium", "low"
# How a flag is shown: on its deal's row; as one line under the flag it derives from (a rider);
# or, when it covers most of a rep's open deals, once in a pipeline-hygiene line.
DEAL, RIDER, HYGIENE = "deal", "rider", "hygiene"
SEVERITY_RANK = {HIGH: 3, MEDIUM: 2, LOW: 1}
_RAISE = {LOW: MEDIUM, MEDIUM: HIGH, HIGH: HIGH}
F = TypeVar("F", bound=Callable[..., "Flag | None"])

# --- the registry --------------------------------------------------------------------------------


class SignalSection(Section):
    """Settings every signal has: it can be switched off."""

    enabled: bool = True


S = TypeVar("S", bound=SignalSection)


@dataclass(frozen=True)
class Signal:
    """A registered risk signal: its flag code, the title on the sheet, its settings model, and
    the check (``reads_other_flags``: it runs last and sees the flags the others raised)."""

    code: str
    title: str
    settings: type[SignalSection]
    check: Callable[..., Flag | None]
    reads_other_flags: bool = False
    needs: tuple[Need, ...] = ()  # inputs a source may not carry at all (see FetchResult)

    def __call__(self, deal: Deal, ctx: Context, others: Iterable[Flag] = ()) -> Flag | None:
        cfg = ctx.settings.section(self.code)
        if self.reads_other_flags:
            return self.check(deal, ctx, cfg, list(others))
        return self.check(deal, ctx, cfg)


REGISTRY: dict[str, Signal] = {}


def signal(
    code: str,
    title: str,
    *,
    settings: type[SignalSection] = SignalSection,
    reads_other_flags: bool = False,
    needs: tuple[Need, ...] = (),
) -> Callable[[F], F]:
    """Register a check as the signal for ``code``: the one place a signal is declared. Its
    settings become ``signals.<code>`` in the config; tests check that the question bank and
    docs/signals.md cover it. ``needs`` names the inputs without which it says nothing true:
    when a source does not carry one at all, the check is off (never raised from missing data)."""

    def register(check: F) -> F:
        if code in REGISTRY:
            raise ValueError(f"signal {code!r} is registered twice")
        REGISTRY[code] = Signal(code, title, settings, check, reads_other_flags, needs)
        return check

    return register


class SignalSettingsBase(Section):
    def section(self, code: str) -> SignalSection:
        """The settings of the signal ``code``."""
        value = getattr(self, code)
        assert isinstance(value, SignalSection)
        return value

    def of(self, settings: type[S]) -> S:
        """The settings of the signal whose model is ``settings``, typed as such."""
        [code] = [c for c, s in REGISTRY.items() if s.settings is settings]
        value = getattr(self, code)
        assert isinstance(value, settings)
        return value


@dataclass(frozen=True, slots=True)
class Flag:
    """One risk on one deal: what, how bad, and the evidence from the deal's data."""

    code: str
    severity: str
    evidence: str
    facts: dict[str, Any] = field(default_factory=dict, compare=False)
    label: str | None = None  # a truer title than the signal's for this evidence
    shown: str = DEAL  # DEAL: on the deal's row; RIDER: one line under another flag; HYGIENE

    @property
    def title(self) -> str:
        return self.label or FLAG_TITLES.get(self.code, self.code)

    @property
    def news(self) -> bool:
        """Whether the flag reports a change since the last review (it ranks first)."""
        return bool(self.facts.get("news"))


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a signal may look at besides the deal itself. Built once per run, then per deal."""

    today: date
    settings: SignalSettingsBase = field(default_factory=lambda: SignalSettings())
    previous: Deal | None = None  # the deal at the previous review
    previous_review: date | None = None  # what changed after it is news
    close_dates_seen: tuple[date, ...] = ()  # close dates at earlier reviews, oldest first
    limits: LearnedLimits = field(default_factory=LearnedLimits)  # from the won deals
    stage_orders: dict[str, int] = field(default_factory=dict)  # stage (lower) -> pipeline order
    unsupported: frozenset[Need] = frozenset()  # inputs the source does not carry: checks off
    # inputs most open deals lack: a deal without one is not flagged for lacking it
    sparse: frozenset[str] = frozenset()


NEWS_WINDOW = 7  # days: without an earlier review, changes this recent are the news

# An input fewer than this share of the open deals carry is the data's gap, not each deal's:
# its absence is not flagged (four dated deals must not make the other thousands "no close date").
USUAL_SHARE = 0.5


# The inputs whose absence a check flags, how to tell a deal has one, and the check's words.
_ABSENCE_FLAGGED = {
    Need.CLOSE_DATE: (lambda d: d.close_date is not None, "a close date", "No close date"),
    Need.NEXT_STEP: (
        lambda d: bool(d.next_step) or d.next_activity_at is not None,
        "a next step or a scheduled activity",
        "No next step",
    ),
}


def input_coverage(open_deals: list[Deal], unsupported: frozenset[Need]) -> list[str]:
    """For the inputs whose absence is flagged and that most (not all) open deals carry: how many
    do, so the sheet says why some deals are flagged for lacking it ("Close date on 1,900 of
    2,089 open deals; the other 189 are flagged"). The rarer ones are :func:`sparse_inputs`'."""
    out = []
    for need, (has, what, title) in _ABSENCE_FLAGGED.items():
        if need in unsupported or not open_deals:
            continue
        carrying = sum(1 for d in open_deals if has(d))
        if USUAL_SHARE * len(open_deals) <= carrying < len(open_deals):
            out.append(
                f"{title}: {carrying:,} of {len(open_deals):,} open deals have {what}; "
                + (
                    "the other one is flagged"
                    if len(open_deals) - carrying == 1
                    else f"the other {len(open_deals) - carrying:,} are flagged"
                )
            )
    return out


def off_for_the_data(unsupported: Iterable[str], sparse: Iterable[str]) -> list[Signal]:
    """The signals the data switches off: an input they need is not carried at all, or (for
    "no close date") too few open deals carry it for its absence to mean anything."""
    missing, rare = set(unsupported), set(sparse)
    return [
        s
        for s in REGISTRY.values()
        if missing.intersection(s.needs) or (s.code == "no_close_date" and Need.CLOSE_DATE in rare)
    ]


def sparse_inputs(open_deals: list[Deal], unsupported: frozenset[Need]) -> dict[Need, str]:
    """The inputs fewer than USUAL_SHARE of the open deals carry (but some do), with the line the
    sheet says: a deal lacking one is then not flagged for it, the others are still checked."""
    out: dict[Need, str] = {}
    if not open_deals:
        return out
    for need, (has, what, title) in _ABSENCE_FLAGGED.items():
        if need in unsupported:
            continue
        carrying = sum(1 for d in open_deals if has(d))
        if 0 < carrying < USUAL_SHARE * len(open_deals):
            out[need] = (
                f"{title}: only {carrying:,} of {len(open_deals):,} open deals have {what}, so a "
                "deal without one is not flagged (the ones that have it are still checked)"
            )
    return out


# --- helpers -------------------------------------------------------------------------------------


def news_since(ctx: Context) -> date:
    """Changes on or after this day are news: since the last review, else the last week."""
    return ctx.previous_review or ctx.today - timedelta(days=NEWS_WINDOW)


def quarter_of(day: date, fiscal_start_month: int) -> tuple[int, int]:
    """The fiscal (year, quarter index) a day falls in."""
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


COMMITTED = frozenset({"commit", "best case"})  # forecast categories that put a deal in the number


def forecast_category_key(deal: Deal) -> str:
    return " ".join((deal.forecast_category or "").lower().replace("_", " ").split())


def _is_committed(deal: Deal) -> bool:
    return forecast_category_key(deal) in COMMITTED


def _chain(values: list[date], today: date, limit: int = 5) -> str:
    shown = [short_date(v, today) for v in values[-limit:]]
    return ("… → " if len(values) > limit else "") + " → ".join(shown)


def _contact_list(deal: Deal, limit: int = 4) -> str:
    labels = [c.label for c in deal.contacts[:limit]]
    more = len(deal.contacts) - limit
    return ", ".join(labels) + (f" and {more} more" if more > 0 else "")


def _by_stage(limits: dict[str, int], stage: str) -> int | None:
    wanted = stage_key(stage)
    for name, days in limits.items():
        if stage_key(name) == wanted:
            return days
    return None


# --- the signals ---------------------------------------------------------------------------------


class SingleThreadedSettings(SignalSection):
    min_contacts: int = Field(2, ge=1)
    healthy_contacts: int = Field(3, ge=1)
    min_amount: Decimal = Field(Decimal(20000), ge=0)


@signal(
    "single_threaded", "Single-threaded", settings=SingleThreadedSettings, needs=(Need.CONTACTS,)
)
def single_threaded(deal: Deal, ctx: Context, cfg: SingleThreadedSettings) -> Flag | None:
    """Fewer buyer contacts than ``min_contacts`` (high), or just short of ``healthy_contacts`` (low)."""
    if deal.amount is not None and deal.amount < cfg.min_amount:
        return None
    count = len(deal.contacts)
    facts = {"contacts": count, "brief": plural(count, "contact")}
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


def _is_power(contact_role: str | None, title: str | None, cfg: NoDecisionMakerSettings) -> bool:
    role = (contact_role or "").lower()
    if role and any(r.lower() in role for r in cfg.roles):
        return True
    text = f"{title or ''} {contact_role or ''}".lower()
    return any(re.search(p, text, re.IGNORECASE) for p in cfg.title_patterns)


def _late_stage(deal: Deal, ctx: Context, cfg: NoDecisionMakerSettings) -> bool:
    if cfg.from_stage:
        threshold = ctx.stage_orders.get(stage_key(cfg.from_stage))
        if threshold is not None and deal.stage_order is not None:
            return deal.stage_order >= threshold
    return deal.probability is not None and deal.probability >= cfg.from_probability


class NoDecisionMakerSettings(SignalSection):
    from_probability: float = Field(0.4, ge=0, le=1)
    from_stage: str | None = None
    roles: list[str] = [
        "economic buyer",
        "decision maker",
        "economic decision maker",
        "executive sponsor",
        "executive",
        "budget holder",
        "signer",
    ]
    title_patterns: list[str] = [
        r"\bc[efoirt]o\b",
        r"\bchief\b",
        r"\bpresident\b",
        r"\bvp\b",
        r"\bsvp\b",
        r"\bevp\b",
        r"vice[ -]president",
        r"\bhead of\b",
        r"\bfounder\b",
        r"\bowner\b",
        r"\bmanaging director\b",
    ]

    @model_validator(mode="after")
    def _patterns_compile(self) -> NoDecisionMakerSettings:
        for pattern in self.title_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"title pattern {pattern!r} is not a valid regex: {exc}") from exc
        return self


@signal(
    "no_decision_maker",
    "No decision maker",
    settings=NoDecisionMakerSettings,
    needs=(Need.CONTACTS, Need.CONTACT_ROLES),
)
def no_decision_maker(deal: Deal, ctx: Context, cfg: NoDecisionMakerSettings) -> Flag | None:
    """From a late stage on, no contact whose role or title marks power to buy."""
    if not _late_stage(deal, ctx, cfg):
        return None
    if any(_is_power(c.role, c.title, cfg) for c in deal.contacts):
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


class CloseDateSlippedSettings(SignalSection):
    escalate_at: int = Field(2, ge=1)
    unreliable_at: int = Field(3, ge=1)
    fiscal_year_start_month: int = Field(1, ge=1, le=12)


@signal(
    "close_date_slipped",
    "Close date slipped",
    settings=CloseDateSlippedSettings,
    needs=(Need.CLOSE_DATE,),
)
def close_date_slipped(deal: Deal, ctx: Context, cfg: CloseDateSlippedSettings) -> Flag | None:
    """Pushes of the close date (a pull-in is not a push), from CRM history and earlier reviews."""
    timeline = close_date_timeline(deal, ctx.close_dates_seen)
    pushes = [(a, b) for a, b in itertools.pairwise(timeline) if b > a]
    if not pushes:
        return None
    count = len(pushes)
    days = sum((b - a).days for a, b in pushes)
    crossed = any(
        quarter_of(a, cfg.fiscal_year_start_month) != quarter_of(b, cfg.fiscal_year_start_month)
        for a, b in pushes
    )
    severity = HIGH if count >= cfg.unreliable_at else MEDIUM if count >= cfg.escalate_at else LOW
    if crossed:
        severity = _RAISE[severity]
    last_push = _last_push(deal, ctx)
    news = last_push is not None
    if news and _is_committed(deal) and crossed:
        severity = HIGH  # a committed deal pushed out of its quarter moves the forecast now
    evidence = (
        f"close date pushed {times(count)}, {plural(days, 'day')} in total: "
        f"{_chain(timeline, ctx.today)}"
    )
    if crossed:
        evidence += " (crossed a quarter end)"
    if news:
        evidence += f"; last pushed {last_push}"
        if _is_committed(deal):
            evidence += f", forecast {deal.forecast_category}"
    facts = {
        "news": news,
        "pushes": count,
        "days": days,
        "crossed_quarter": crossed,
        "unreliable": count >= cfg.unreliable_at,
        "timeline": timeline,
    }
    return Flag("close_date_slipped", severity, evidence, facts)


def _last_push(deal: Deal, ctx: Context) -> str | None:
    """How the sheet says the close date was pushed recently ("since the last review", "on Nov
    27"), or None when no push is news."""
    before = ctx.previous.close_date if ctx.previous is not None else None
    if before is not None and deal.close_date is not None and deal.close_date > before:
        return "since the last review"
    since = news_since(ctx)
    for change in reversed(deal.history_of(CLOSE_DATE)):
        old, new = change.old, change.new
        if change.at is None or change.at.date() < since:
            continue
        if isinstance(old, date) and isinstance(new, date) and new > old:
            return f"on {short_date(change.at.date(), ctx.today)}"
    return None


class CloseDatePassedSettings(SignalSection):
    high_after_days: int = Field(7, ge=0)


@signal(
    "close_date_passed",
    "Close date passed",
    settings=CloseDatePassedSettings,
    needs=(Need.CLOSE_DATE,),
)
def close_date_passed(deal: Deal, ctx: Context, cfg: CloseDatePassedSettings) -> Flag | None:
    """An open deal whose close date is already behind us."""
    if deal.close_date is None or deal.close_date >= ctx.today:
        return None
    days = (ctx.today - deal.close_date).days
    severity = HIGH if days > cfg.high_after_days else MEDIUM
    evidence = (
        f"close date {short_date(deal.close_date, ctx.today)} passed {plural(days, 'day')} ago; "
        f"still open in {deal.stage}"
    )
    return Flag("close_date_passed", severity, evidence, {"days": days})


class NoCloseDateSettings(SignalSection):
    """Nothing to tune: on or off."""


@signal("no_close_date", "No close date", settings=NoCloseDateSettings, needs=(Need.CLOSE_DATE,))
def no_close_date(deal: Deal, ctx: Context, cfg: NoCloseDateSettings) -> Flag | None:
    """An open deal with no close date at all: a hygiene gap."""
    if deal.close_date is not None or "close_date" in ctx.sparse:
        return None
    return Flag("no_close_date", MEDIUM, f"no close date in the CRM (stage {deal.stage})")


class StaleSettings(SignalSection):
    days: int = Field(14, ge=1)
    by_stage: dict[str, int] = {}


@signal("stale", "Stale", settings=StaleSettings, needs=(Need.LAST_ACTIVITY,))
def stale(deal: Deal, ctx: Context, cfg: StaleSettings) -> Flag | None:
    """No logged activity for ``days`` (per-stage overrides); unknown activity is not flagged."""
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
    facts = {"days": days, "limit": limit, "brief": f"{plural(days, 'day')} quiet"}
    facts |= {"rule_why": f"limit {limit} days"}
    return Flag("stale", severity, evidence, facts)


class StuckInStageSettings(SignalSection):
    days: int = Field(30, ge=1)  # the default limit; written in the config, it pins every stage
    by_stage: dict[str, int] = {}  # pinned limits per stage
    learn: bool = True  # learn limits from the won deals in the data
    percentile: int = Field(90, ge=50, le=99)
    min_sample: int = Field(20, ge=5)  # won deals needed before a limit is learned

    @model_validator(mode="before")
    @classmethod
    def _no_median_multiple(cls, data: Any) -> Any:
        if isinstance(data, dict) and "median_multiple" in data:
            raise ValueError(
                "median_multiple was replaced in leadprep 0.2: limits are now learned from your "
                "won deals (percentile, min_sample); remove median_multiple, or pin limits with "
                "days / by_stage"
            )
        return data


def stuck_limit(stage: str, ctx: Context, cfg: StuckInStageSettings) -> Limit:
    """The limit for ``stage`` and where it came from: pinned in the config, else learned from
    the won deals, else the default."""
    configured = _by_stage(cfg.by_stage, stage)
    if configured is not None:
        return Limit(configured, PINNED, f"limit {configured} days for {stage}, set in the config")
    if "days" in cfg.model_fields_set:
        return Limit(cfg.days, PINNED, f"limit {cfg.days} days, set in the config")
    learned = ctx.limits.learned(stage) if cfg.learn else None
    if learned is not None:
        return learned
    return Limit(cfg.days, DEFAULT, f"default limit {cfg.days} days")


def limits_in_use(ctx: Context, open_deals: Iterable[Deal], most: int = 8) -> list[str]:
    """The stuck-in-stage limit of each stage the open deals are in, with where it came from
    (for the index and ``doctor``); empty when the check is off."""
    cfg = ctx.settings.of(StuckInStageSettings)
    if not cfg.enabled or Need.STAGE_ENTERED in ctx.unsupported:
        return []
    stages: dict[str, str] = {}
    for deal in open_deals:
        if deal.stage_entered_at is not None:
            stages.setdefault(stage_key(deal.stage), deal.stage)
    lines = shared_reasons((stage, stuck_limit(stage, ctx, cfg).why) for stage in stages.values())
    return lines[:most] + ([f"and {len(lines) - most} more"] if len(lines) > most else [])


@signal(
    "stuck_in_stage", "Stuck in stage", settings=StuckInStageSettings, needs=(Need.STAGE_ENTERED,)
)
def stuck_in_stage(deal: Deal, ctx: Context, cfg: StuckInStageSettings) -> Flag | None:
    """Longer in the current stage than its limit: pinned, else learned from won deals, else 30 days."""
    if deal.stage_entered_at is None:
        return None
    days = days_between(deal.stage_entered_at, ctx.today)
    limit = stuck_limit(deal.stage, ctx, cfg)
    if days <= limit.days:
        return None
    severity = HIGH if days > 2 * limit.days else MEDIUM
    evidence = (
        f"in {deal.stage} for {plural(days, 'day')} since "
        f"{short_date(deal.stage_entered_at, ctx.today)}; {limit.why}"
    )
    facts = {
        "days": days,
        "limit": limit.days,
        "limit_source": limit.source,
        "rule": f"{deal.stage}: {limit.why}",
        "rule_scope": deal.stage,
        "rule_why": limit.why,
        "brief": f"{plural(days, 'day')} in stage",
        "excess": days / limit.days,
    }
    return Flag("stuck_in_stage", severity, evidence, facts)


class NoNextStepSettings(SignalSection):
    max_age_days: int = Field(14, ge=1)


@signal("no_next_step", "No next step", settings=NoNextStepSettings, needs=(Need.NEXT_STEP,))
def no_next_step(deal: Deal, ctx: Context, cfg: NoNextStepSettings) -> Flag | None:
    """No next step recorded (a next activity scheduled for today or later counts as one), or
    one left unchanged for ``max_age_days`` (when the CRM tells)."""
    if not deal.next_step:
        planned = deal.next_activity_at
        if planned is not None and planned.date() >= ctx.today:
            return None
        if planned is None and "next_step" in ctx.sparse:
            return None
        evidence = "no next step recorded"
        if planned is not None:
            evidence += (
                f"; the last scheduled activity was due {short_date(planned.date(), ctx.today)}"
            )
        return Flag("no_next_step", MEDIUM, evidence)
    if deal.next_step_updated_at is None:
        return None
    days = days_between(deal.next_step_updated_at, ctx.today)
    if days < cfg.max_age_days:
        return None
    evidence = f"next step unchanged for {plural(days, 'day')}: “{deal.next_step}”"
    return Flag("no_next_step", LOW, evidence, {"days": days}, label="Next step unchanged")


class AmountDecreasedSettings(SignalSection):
    lookback_days: int = Field(30, ge=1)
    high_drop_percent: float = Field(25, gt=0, le=100)


@signal(
    "amount_decreased", "Amount decreased", settings=AmountDecreasedSettings, needs=(Need.AMOUNT,)
)
def amount_decreased(deal: Deal, ctx: Context, cfg: AmountDecreasedSettings) -> Flag | None:
    """The amount went down since the last review, or within ``lookback_days`` of CRM history."""
    current = deal.amount
    if current is None:
        return None
    before: Decimal | None = None
    since, news = "", False
    if (
        ctx.previous is not None
        and ctx.previous.amount is not None
        and ctx.previous.amount > current
    ):
        before, since, news = ctx.previous.amount, "since the last review", True
    for change in deal.history_of(AMOUNT):
        if change.at is None or days_between(change.at, ctx.today) > cfg.lookback_days:
            continue
        old, new = change.old, change.new
        if isinstance(old, Decimal) and isinstance(new, Decimal) and new < old:
            if before is None or old > before:
                before, since = old, f"on {short_date(change.at, ctx.today)}"
                news = news or change.at.date() >= news_since(ctx)
            break
    if before is None or before <= current or before == 0:
        return None
    drop = float((before - current) / before * 100)
    severity = HIGH if drop >= cfg.high_drop_percent else MEDIUM
    if news and _is_committed(deal):
        severity = HIGH  # a committed deal cut this week changes the number now
    evidence = (
        f"amount cut from {money(before, deal.currency)} to {money(current, deal.currency)} "
        f"(−{drop:.0f}%) {since}"
    )
    if _is_committed(deal):
        evidence += f" on a {deal.forecast_category} deal"
    return Flag("amount_decreased", severity, evidence, {"percent": round(drop), "news": news})


class StageMovedBackSettings(SignalSection):
    lookback_days: int = Field(30, ge=1)


@signal("stage_moved_back", "Stage moved back", settings=StageMovedBackSettings)
def stage_moved_back(deal: Deal, ctx: Context, cfg: StageMovedBackSettings) -> Flag | None:
    """The deal went back to an earlier stage since the last review, or within ``lookback_days``
    of CRM history (only where the pipeline's stage order is known)."""

    def order(stage: object) -> int | None:
        return ctx.stage_orders.get(stage_key(stage)) if isinstance(stage, str) else None

    now = deal.stage_order if deal.stage_order is not None else order(deal.stage)
    if now is None:
        return None
    moved: tuple[str, str] | None = None
    news = False
    before = ctx.previous
    if before is not None and stage_key(before.stage) != stage_key(deal.stage):
        was = before.stage_order if before.stage_order is not None else order(before.stage)
        if was is not None and was > now:
            moved, news = (before.stage, "since the last review"), True
    if moved is None:
        for change in reversed(deal.history_of(STAGE)):
            if change.at is None or days_between(change.at, ctx.today) > cfg.lookback_days:
                continue
            old, new = order(change.old), order(change.new)
            if old is not None and new is not None and new < old:
                moved = (str(change.old), f"on {short_date(change.at, ctx.today)}")
                news = change.at.date() >= news_since(ctx)
                break
    if moved is None:
        return None
    severity = HIGH if _is_committed(deal) else MEDIUM
    evidence = f"moved back from {moved[0]} to {deal.stage} {moved[1]}"
    if _is_committed(deal):
        evidence += f" while forecast {deal.forecast_category}"
    return Flag("stage_moved_back", severity, evidence, {"from": moved[0], "news": news})


class CommitWithoutEvidenceSettings(SignalSection):
    categories: list[str] = ["commit", "best case", "best_case"]


@signal(
    "commit_without_evidence",
    "Forecast ahead of evidence",
    settings=CommitWithoutEvidenceSettings,
    needs=(Need.FORECAST,),
    reads_other_flags=True,
)
def commit_without_evidence(
    deal: Deal, ctx: Context, cfg: CommitWithoutEvidenceSettings, others: list[Flag]
) -> Flag | None:
    """Forecast says Commit / Best Case while a high-severity risk stands. It derives from those
    flags, so the sheet shows it as one line under them, not as a risk of its own."""
    categories = {" ".join(c.lower().replace("_", " ").split()) for c in cfg.categories}
    category = forecast_category_key(deal)
    if category not in categories:
        return None
    high = [f for f in others if f.severity == HIGH]
    if not high:
        return None
    severity = HIGH if category == "commit" else MEDIUM
    risks = ", ".join(f.title.lower() for f in high)
    evidence = f"forecast {deal.forecast_category} while these stand: {risks}"
    return Flag(
        "commit_without_evidence",
        severity,
        evidence,
        {"category": deal.forecast_category},
        label=f"Forecast ahead of evidence ({deal.forecast_category})",
    )


class ClosingSoonEarlyStageSettings(SignalSection):
    within_days: int = Field(30, ge=1)
    max_probability: float = Field(0.4, ge=0, le=1)


@signal(
    "closing_soon_early_stage",
    "Closing soon, early stage",
    settings=ClosingSoonEarlyStageSettings,
    needs=(Need.CLOSE_DATE,),
)
def closing_soon_early_stage(
    deal: Deal, ctx: Context, cfg: ClosingSoonEarlyStageSettings
) -> Flag | None:
    """Closes within ``within_days`` but the stage's probability is below ``max_probability``."""
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


# --- the registry's views ------------------------------------------------------------------------

FLAG_CODES: tuple[str, ...] = tuple(REGISTRY)  # in order of definition: ties sort this way
FLAG_TITLES: dict[str, str] = {code: s.title for code, s in REGISTRY.items()}
SIGNALS: dict[str, Signal] = dict(REGISTRY)

if TYPE_CHECKING:
    SignalSettings = SignalSettingsBase
else:
    SignalSettings = create_model(
        "SignalSettings",
        __base__=SignalSettingsBase,
        **{code: (s.settings, Field(default_factory=s.settings)) for code, s in REGISTRY.items()},
    )
    SignalSettings.__doc__ = "The ``signals:`` section: one entry per registered signal."


def evaluate(deal: Deal, ctx: Context) -> list[Flag]:
    """Every enabled flag that fires on an open deal, most severe first (news first among
    equals); flags that only restate another's root cause are marked as its riders."""
    if deal.is_closed:
        return []
    enabled = [
        s
        for s in REGISTRY.values()
        if ctx.settings.section(s.code).enabled and not ctx.unsupported.intersection(s.needs)
    ]
    flags = [f for s in enabled if not s.reads_other_flags and (f := s(deal, ctx)) is not None]
    for late in (s for s in enabled if s.reads_other_flags):
        flag = late(deal, ctx, flags)
        if flag is not None:
            flags.append(flag)
    return sorted(one_per_root_cause(flags), key=flag_order)


def flag_order(flag: Flag) -> tuple[int, int, int]:
    return (-SEVERITY_RANK[flag.severity], 0 if flag.news else 1, FLAG_CODES.index(flag.code))


def one_per_root_cause(flags: list[Flag]) -> list[Flag]:
    """The forecast judgement derives from the high flags it names, and "no decision maker" on a
    deal with at most one contact restates "single-threaded": both ride on those flags."""
    codes = {f.code: f for f in flags}
    thread = codes.get("single_threaded")
    out = []
    for flag in flags:
        derived = flag.code == "commit_without_evidence" or (
            flag.code == "no_decision_maker"
            and thread is not None
            and thread.severity == HIGH
            and flag.facts.get("contacts", 0) <= 1
        )
        out.append(replace(flag, shown=RIDER) if derived else flag)
    return out


def stage_orders(deals: Iterable[Deal]) -> dict[str, int]:
    """Stage name (lower) -> pipeline order, as the deals' source reported it."""
    return {stage_key(d.stage): d.stage_order for d in deals if d.stage_order is not None}
