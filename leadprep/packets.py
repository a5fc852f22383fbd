"""One packet per rep: ranked deals with flags, changes and questions, departed deals, and the
commitments to follow up. The packet is the single context every output format renders."""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from leadprep.changes import DealChange, Departure, departures, diff_deal
from leadprep.commitments import CoachingRecord, coaching_record, reviews_missed, vagueness_hint
from leadprep.config import Config, Person
from leadprep.formatting import short_date
from leadprep.hygiene import MIN_DEALS, HygieneLine, counts, gather, team_lines, widespread
from leadprep.limits import learn
from leadprep.model import Commitment, Deal, Rep, name_from_email
from leadprep.money import Movement, movement
from leadprep.needs import Need
from leadprep.questions import QuestionBank, QuestionPicker
from leadprep.signals import (
    DEAL,
    HIGH,
    HYGIENE,
    REGISTRY,
    RIDER,
    SEVERITY_RANK,
    CloseDateSlippedSettings,
    Context,
    Flag,
    StuckInStageSettings,
    evaluate,
    input_coverage,
    limits_in_use,
    off_for_the_data,
    sparse_inputs,
    stage_orders,
)

SEVERITY_POINTS = {"high": 3, "medium": 2, "low": 1}
# A news flag's evidence already says this change since the last review: not printed twice.
CHANGE_TOLD_BY = {
    "amount_decreased": "amount",
    "close_date_slipped": "close_date",
    "stage_moved_back": "stage",
}
NEWS_WEIGHT = 2  # a change since the last review outranks a standing condition of the same size
PRINTED_OTHER_DEALS = 30  # rows of other deals printed at most (the PDF may print fewer to fit)
PRINTED_DEPARTED = 8
PRINT_STEP = 4  # rows taken off at a time while a sheet does not fit two pages
MINUTES = {"listen": 3, "explore": 3, "agree": 2}


@dataclass(slots=True)
class DealView:
    """A deal as the sheet shows it."""

    deal: Deal
    flags: list[Flag]
    changes: list[DealChange]
    is_new: bool
    risk_score: float
    focus: bool = False
    questions: dict[str, list[str]] = field(default_factory=dict)
    deep: bool = False  # the one focus deal talked through in depth; the others are "if time"

    @property
    def top_severity(self) -> str | None:
        """The most severe of the deal's flags, however they are shown."""
        return self.flags[0].severity if self.flags else None

    @property
    def listed(self) -> list[Flag]:
        """The flags shown on the deal's own row: not riders, not in a hygiene line."""
        return [f for f in self.flags if f.shown == DEAL]

    @property
    def riders(self) -> list[Flag]:
        """Flags that restate another's root cause: one line under the deal's flags."""
        return [f for f in self.flags if f.shown == RIDER]

    @property
    def in_hygiene(self) -> list[Flag]:
        """Flags most deals share: stated once for the pipeline, and on a focus deal."""
        return [f for f in self.flags if f.shown == HYGIENE]

    @property
    def evidence(self) -> list[Flag]:
        """What a focus deal shows: its own flags, then the pipeline-wide ones with its numbers."""
        return self.listed + self.in_hygiene

    @property
    def news(self) -> list[Flag]:
        return [f for f in self.listed if f.news]

    @property
    def changes_not_in_flags(self) -> list[DealChange]:
        """The changes a flag's evidence does not already say (evidence is printed once)."""
        told = {CHANGE_TOLD_BY[f.code] for f in self.flags if f.news and f.code in CHANGE_TOLD_BY}
        return [c for c in self.changes if c.field not in told]

    @property
    def close_date_timeline(self) -> list[date]:
        """Every close date the deal has had, oldest first, when it has slipped more than once
        (one push is said in full by the flag's evidence: the chart would only repeat it)."""
        slipped = next((f for f in self.flags if f.code == "close_date_slipped"), None)
        if slipped is None or slipped.facts.get("pushes", 0) < 2:
            return []
        return list(slipped.facts.get("timeline", []))


@dataclass
class DeliverItem:
    """A commitment from an earlier review, to open this 1:1 with."""

    commitment: Commitment
    deal: Deal | None  # the deal now, when the source still has it
    outcome: str | None  # won | lost | None while the deal is open
    overdue: bool
    opening: str  # "Last week you committed to … How did it go?"
    prompts: dict[str, list[str]]  # kept: what was learned; missed: what got in the way
    reviews_missed: int = 0  # reviews that went by without a follow-up
    hint: str | None = None  # how to make a vague commitment specific
    since: str | None = None  # what the CRM shows about the deal since the commitment was made


@dataclass
class Packet:
    """Everything one rep's sheet says."""

    rep: Rep
    manager: Person | None
    as_of: date
    previous_review: date | None
    slug: str
    deals: list[DealView]
    departed: list[Departure]
    deliver: list[DeliverItem]
    listen: list[str]
    cues: list[str]
    coaching: CoachingRecord
    agree: list[str] = field(default_factory=list)  # the one commitment question, then its check
    minutes: dict[str, int] = field(default_factory=lambda: dict(MINUTES))
    checks_off: list[str] = field(default_factory=list)  # checks the data cannot support, and why
    off_titles: list[str] = field(default_factory=list)  # the same checks, by title only
    hygiene: list[HygieneLine] = field(default_factory=list)  # gaps most of the deals share
    limits: list[str] = field(default_factory=list)  # stuck-in-stage limits and their source
    coverage: list[str] = field(default_factory=list)  # inputs most, not all, deals carry
    asked: dict[str, list[str]] = field(default_factory=dict)  # deal id -> question keys asked
    money: dict[str, Movement] = field(default_factory=dict)  # since the last review, by currency
    focus_next: dict[str, int] = field(default_factory=dict)  # last review's focus deals, now
    printed_others: int | None = None  # rows of other deals that fit the printed page
    printed_departed: int | None = None  # departed deals that fit the printed page
    # how much the printed front page must give up to hold Agree: 1 no chart and fewer cues;
    # 2 also no hints, note lines or riders and one follow-up question (several commitments)
    compact: int = 0
    # the last weeks, oldest first: (review date, flagged deals, kept rate or None)
    trend: list[tuple[date, int | None, float | None]] = field(default_factory=list)

    @property
    def amounts_known(self) -> bool:
        """False when the rep has open deals and not one of them has an amount: the pipeline's
        value is then unknown, not zero."""
        return not self.deals or any(v.deal.amount is not None for v in self.deals)

    @property
    def shared_prompts(self) -> dict[str, list[str]] | None:
        """Deliver's branch prompts when they read the same for every commitment (printed once,
        under them all), else None (printed under each)."""
        if not self.deliver:
            return None
        first = self.deliver[0].prompts
        return first if all(item.prompts == first for item in self.deliver) else None

    @property
    def focus(self) -> list[DealView]:
        """The focus deals, the deep one first."""
        return sorted((d for d in self.deals if d.focus), key=lambda d: not d.deep)

    @property
    def deep(self) -> DealView | None:
        return next((d for d in self.deals if d.deep), None)

    @property
    def if_time(self) -> list[DealView]:
        return [d for d in self.focus if not d.deep]

    @property
    def others(self) -> list[DealView]:
        return [d for d in self.deals if not d.focus]

    def fewer_printed(self) -> bool:
        """Print fewer rows of other and departed deals (the sheet ran past two pages); False
        when there is nothing left to take off."""
        others = len(self.others) if self.printed_others is None else self.printed_others
        departed = len(self.departed) if self.printed_departed is None else self.printed_departed
        if others == 0 and departed == 0:
            return False
        self.printed_others = max(0, min(others, len(self.others)) - PRINT_STEP)
        self.printed_departed = max(0, min(departed, len(self.departed)) - PRINT_STEP // 2)
        return True

    @property
    def departed_not_printed(self) -> int:
        if self.printed_departed is None:
            return 0
        return max(0, len(self.departed) - self.printed_departed)

    @property
    def others_not_printed(self) -> int:
        """Other deals the printed sheet leaves to the HTML sheet and packets.json."""
        if self.printed_others is None:
            return 0
        return max(0, len(self.others) - self.printed_others)

    @property
    def flagged(self) -> list[DealView]:
        return [d for d in self.deals if d.flags]

    @property
    def new_deals(self) -> list[DealView]:
        return [d for d in self.deals if d.is_new]

    @property
    def changed(self) -> list[DealView]:
        return [d for d in self.deals if d.changes]

    @property
    def open_totals(self) -> dict[str, Decimal]:
        """Open pipeline per currency: amounts in different currencies are never added
        together (no exchange rates are guessed)."""
        return currency_totals(d.deal for d in self.deals)

    @property
    def flag_total(self) -> int:
        """Flags on the open deals, however shown; riders restate another flag and count nothing
        (the definition ``prep``, ``history``, the index and the rollup share)."""
        return sum(1 for v in self.deals for f in v.flags if f.shown != RIDER)

    @property
    def high_flags(self) -> int:
        """High-severity flags, counted as :attr:`flag_total` counts them."""
        return sum(
            1 for v in self.deals for f in v.flags if f.shown != RIDER and f.severity == "high"
        )

    @property
    def flag_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for view in self.deals:
            for flag in view.flags:
                counts[flag.code] = counts.get(flag.code, 0) + 1
        return counts


def currency_totals(deals: Iterable[Deal]) -> dict[str, Decimal]:
    """The sum of the deals' amounts per currency, the currency with the most deals first (sizes
    are not comparable across currencies), then by code; deals with no amount count nothing."""
    totals: dict[str, Decimal] = {}
    counts: dict[str, int] = {}
    for deal in deals:
        if deal.amount is not None:
            totals[deal.currency] = totals.get(deal.currency, Decimal(0)) + deal.amount
            counts[deal.currency] = counts.get(deal.currency, 0) + 1
    return dict(sorted(totals.items(), key=lambda item: (-counts[item[0]], item[0])))


def risk_score(flags: list[Flag], deal: Deal, median_amount: Decimal | None, today: date) -> float:
    """Severity points (doubled for news) × size weight × urgency weight (docs/signals.md,
    "Ranking"); flags shown only as riders or in a hygiene line score nothing."""
    listed = [f for f in flags if f.shown == DEAL]
    if not listed:
        return 0.0
    points = sum(SEVERITY_POINTS[f.severity] * (NEWS_WEIGHT if f.news else 1) for f in listed)
    size = 1.0
    if deal.amount is not None and median_amount:
        size = min(max(float(deal.amount / median_amount), 0.5), 2.0)
    urgency = 1.0
    if deal.close_date is not None:
        days = (deal.close_date - today).days
        urgency = 1.5 if days <= 30 else 1.25 if days <= 60 else 1.0
    return round(points * size * urgency, 1)


_LATEST = datetime.max.replace(tzinfo=UTC)


def _rank_key(view: DealView) -> tuple[Any, ...]:
    """Most in need of coaching first, what changed badly since the last review before all; on a tie (thin data scores alike), the deal furthest past
    a pipeline-wide limit, then bigger, older and closer-dated deals, and the name last."""
    deal = view.deal
    listed = view.listed
    return (
        not any(f.severity == HIGH for f in view.news),  # high-severity news first
        -view.risk_score,
        -(SEVERITY_RANK[listed[0].severity] if listed else 0),
        -max((f.facts.get("excess", 0) for f in view.in_hygiene), default=0),
        -(SEVERITY_RANK.get(view.top_severity or "", 0)),
        -(deal.amount or 0),
        deal.created_at or _LATEST,
        deal.close_date or date.max,
        deal.name.lower(),
        deal.id,
    )


def checks_off(unsupported: dict[Need, str]) -> list[str]:
    """One line per reason the data gives for switching checks off, naming the checks:
    "No decision maker: this export has no contact roles or job titles"."""
    by_reason: dict[str, list[str]] = {}
    for signal in REGISTRY.values():
        reasons = [unsupported[need] for need in signal.needs if need in unsupported]
        if reasons:
            by_reason.setdefault(reasons[0], []).append(signal.title)
    return [f"{', '.join(titles)}: {reason}" for reason, titles in by_reason.items()]


# Files the tool writes itself: a rep named "Index" or "Packets" must never get one of these.
RESERVED_NAMES = frozenset({"index", "packets", "rollup", "outbox", "review", "history", "state"})
MAX_SLUG = 60  # file names stay far below every file system's 255-byte limit


def slugify(text: str, limit: int = MAX_SLUG) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].strip("-") or "rep"


def rep_slugs(reps: list[Rep]) -> dict[str, str]:
    """A file name stem per rep email, stable from week to week: the name alone when it is
    unique and not one the tool writes itself, else the name plus the email's local part (and a
    short hash of the email if even that is shared). It depends on the set of reps, not on the
    order a file lists them in."""
    base = {r.email: slugify(r.name) for r in reps}
    counts: dict[str, int] = {}
    for slug in base.values():
        counts[slug] = counts.get(slug, 0) + 1
    slugs = {}
    for email, slug in base.items():
        if counts[slug] > 1 or slug in RESERVED_NAMES:
            slug = f"{slug}-{slugify(email.split('@')[0], 30)}"
        slugs[email] = slug
    seen: dict[str, int] = {}
    for slug in slugs.values():
        seen[slug] = seen.get(slug, 0) + 1
    for email, slug in slugs.items():
        if seen[slug] > 1 or slug in RESERVED_NAMES:
            digest = hashlib.sha256(email.encode()).hexdigest()[:6]
            slugs[email] = f"{slug}-{digest}"
    return slugs


def _first_name(rep: Rep) -> str:
    return rep.name.split()[0] if rep.name.strip() else rep.email.split("@")[0]


@dataclass
class Memory:
    """What the state store remembers, as of this review."""

    previous_review: date | None = None
    previous: dict[str, Deal] = field(default_factory=dict)
    close_dates_seen: dict[str, list[tuple[date, date | None]]] = field(default_factory=dict)
    open_commitments: list[Commitment] = field(default_factory=list)
    commitment_history: list[Commitment] = field(default_factory=list)  # every status
    review_dates: list[date] = field(default_factory=list)  # earlier reviews, newest first
    asked_last: dict[str, set[str]] = field(default_factory=dict)  # deal id -> question keys
    at_commitment: dict[int, Deal] = field(default_factory=dict)  # commitment id -> deal then


def build_packets(
    deals: Iterable[Deal],
    memory: Memory,
    config: Config,
    bank: QuestionBank,
    as_of: date,
    only_reps: set[str] | None = None,
    unsupported: dict[Need, str] | None = None,
) -> list[Packet]:
    """One packet per rep: every rep with open deals, plus team reps with none. Checks whose
    input the source does not carry (``unsupported``) are off, and each packet says so."""
    deals = list(deals)
    current = {d.id: d for d in deals}
    open_deals = [d for d in deals if d.is_open]
    reps = _reps(open_deals, config, only_reps)

    base, sparse = signal_context(deals, config, as_of, memory.previous_review, unsupported)
    off = checks_off(unsupported or {}) + list(sparse.values())
    off_titles = [s.title for s in off_for_the_data(unsupported or {}, sparse)]
    coverage = input_coverage(open_deals, frozenset(unsupported or {}))
    limits = limits_in_use(base, open_deals)
    picker = QuestionPicker(bank, as_of, memory.asked_last)
    slugs = rep_slugs(list(reps.values()))
    ordered = sorted(reps.items(), key=lambda item: item[1].name.lower())
    by_owner: dict[str, list[Deal]] = {}  # open and closed: the money moved counts both
    for deal in deals:
        by_owner.setdefault(deal.owner.email, []).append(deal)
    flagged = {
        email: _flagged(memory, base, [d for d in by_owner.get(email, []) if d.is_open])
        for email, _ in ordered
    }
    team_codes = {line.code for line in team_lines(flagged.values())}
    packets = []
    for email, rep in ordered:
        mine = [v.deal for v in flagged[email]]
        views = flagged[email]
        hygiene = _rank(views, team_codes, as_of)
        first_name = _first_name(rep)
        _plan_focus(views, picker, memory, email, first_name, config.review.focus_deals)
        at_risk = [v.deal for v in views if v.top_severity == HIGH]
        moved = movement(
            memory.previous,
            by_owner.get(email, []),
            as_of,
            config.signals.of(CloseDateSlippedSettings).fiscal_year_start_month,
            at_risk,
        )
        packets.append(
            Packet(
                rep=rep,
                manager=_manager(config, rep, mine),
                as_of=as_of,
                previous_review=memory.previous_review,
                slug=slugs[email],
                deals=views,
                departed=departures(memory.previous, current, email),
                deliver=_deliver(memory, email, current, picker, as_of),
                listen=picker.opening(email),
                cues=picker.cues(email),
                agree=picker.agree(email, first_name),
                coaching=coaching_record(
                    [c for c in memory.commitment_history if c.rep_email == email],
                    memory.review_dates,
                    as_of,
                ),
                checks_off=off,
                off_titles=off_titles,
                hygiene=hygiene,
                printed_others=PRINTED_OTHER_DEALS,
                printed_departed=PRINTED_DEPARTED,
                limits=limits,
                coverage=coverage,
                asked=dict(picker.asked),
                money=moved,
                focus_next=focus_outcomes(memory, current, email),
            )
        )
    return packets


def _rank(views: list[DealView], team_codes: set[str], as_of: date) -> list[HygieneLine]:
    """Fold the flags most of the rep's deals (or the team's) share into hygiene lines, score
    every deal and sort them, most in need of coaching first; returns the lines."""
    shared = {
        code
        for code, count in counts(views).items()
        if widespread(count, len(views)) or (code in team_codes and count >= MIN_DEALS)
    }
    hygiene = gather(views, shared)
    medians = _median_amounts([v.deal for v in views])
    for view in views:
        view.risk_score = risk_score(view.flags, view.deal, medians.get(view.deal.currency), as_of)
    views.sort(key=_rank_key)
    return hygiene


def _reps(open_deals: list[Deal], config: Config, only_reps: set[str] | None) -> dict[str, Rep]:
    """Who gets a sheet: every owner of an open deal, plus team reps with none; with teams, only
    their reps (and the direct reports of managers listed without reps)."""
    team = config.team_reps()
    reps: dict[str, Rep] = {}
    for deal in open_deals:
        reps.setdefault(deal.owner.email, deal.owner)
    names = config.rep_names()
    for email in sorted(team):
        reps.setdefault(email, Rep(email, names.get(email) or name_from_email(email), email))
    if config.teams:
        whole = config.whole_teams()
        managed = {d.owner.email for d in open_deals if d.manager_email in whole}
        reps = {e: r for e, r in reps.items() if e in team or e in managed}
    if only_reps:
        reps = {e: r for e, r in reps.items() if e in only_reps}
    return reps


def _plan_focus(
    views: list[DealView],
    picker: QuestionPicker,
    memory: Memory,
    email: str,
    first_name: str,
    focus_deals: int,
) -> None:
    """Mark the focus deals (the deep one first) and give each its questions."""
    # a habit commitment's topic is Deliver's (a deal's: that deal is not in focus)
    habits = [c.text for c in memory.open_commitments if c.rep_email == email and not c.deal_id]
    picker.start_sheet(habits)
    # Deliver already opens on a deal with an open commitment: Explore talks about others
    committed = {c.deal_id for c in memory.open_commitments if c.rep_email == email}
    focus = _focus([v for v in views if v.deal.id not in committed], focus_deals)
    deep = focus[0] if focus else None
    for view in sorted(focus, key=lambda v: v is not deep):
        view.focus = True
        view.deep = view is deep
        flags = view.news + [f for f in view.evidence if not f.news]
        ask = picker.deep if view.deep else picker.backup
        view.questions = ask(view.deal, flags, first_name)


def questions_asked(packets: Iterable[Packet]) -> dict[str, list[str]]:
    """Deal id -> the keys of the questions the sheets asked, for the state store."""
    return {deal: keys for p in packets for deal, keys in p.asked.items()}


def signal_context(
    deals: list[Deal],
    config: Config,
    as_of: date,
    previous_review: date | None = None,
    unsupported: dict[Need, str] | None = None,
) -> tuple[Context, dict[Need, str]]:
    """What every signal sees of this review (limits learned from the won deals, stage order,
    the checks off), and the inputs too few open deals carry to flag their absence."""
    open_deals = [d for d in deals if d.is_open]
    sparse = sparse_inputs(open_deals, frozenset(unsupported or {}))
    stuck = config.signals.of(StuckInStageSettings)
    context = Context(
        today=as_of,
        settings=config.signals,
        previous_review=previous_review,
        limits=learn(deals, stuck.percentile, stuck.min_sample),
        stage_orders=stage_orders(deals),
        unsupported=frozenset(unsupported or {}),
        sparse=frozenset(sparse),
    )
    return context, sparse


def _flagged(memory: Memory, base: Context, mine: list[Deal]) -> list[DealView]:
    """The rep's open deals with their flags and changes (scored and ranked later, once it is
    known which flags the whole pipeline shares)."""
    views = []
    for deal in mine:
        before = memory.previous.get(deal.id)
        seen = tuple(c for _, c in memory.close_dates_seen.get(deal.id, []) if c is not None)
        ctx = replace(base, previous=before, close_dates_seen=seen)
        views.append(
            DealView(
                deal=deal,
                flags=evaluate(deal, ctx),
                changes=diff_deal(before, deal, base.today) if before else [],
                is_new=memory.previous_review is not None and before is None,
                risk_score=0.0,
            )
        )
    return views


def _median_amounts(deals: list[Deal]) -> dict[str, Decimal]:
    by_currency: dict[str, list[Decimal]] = {}
    for deal in deals:
        if deal.amount:
            by_currency.setdefault(deal.currency, []).append(deal.amount)
    return {c: statistics.median(amounts) for c, amounts in by_currency.items()}


def _focus(ranked: list[DealView], count: int) -> list[DealView]:
    """The deals to talk through: those with a flag of their own first; when fewer, the deals
    furthest past a pipeline-wide limit (each with its own numbers); when no deal is flagged,
    still one, the first by the ranking (biggest, oldest, closest-dated): the conversation
    needs a deal to walk through."""
    own = [v for v in ranked if v.listed]
    shared = [v for v in ranked if not v.listed and v.in_hygiene]
    return (own + shared)[:count] or ranked[:1]


def _manager(config: Config, rep: Rep, deals: list[Deal]) -> Person | None:
    manager = config.manager_of(rep.email)
    if manager is not None:
        return manager
    email = next((d.manager_email for d in deals if d.manager_email), None)
    if email is None:
        return None
    return config.manager_named(email) or Person(name=name_from_email(email), email=email)


def _deliver(
    memory: Memory,
    rep_email: str,
    current: dict[str, Deal],
    picker: QuestionPicker,
    as_of: date,
) -> list[DeliverItem]:
    items = []
    for commitment in memory.open_commitments:
        if commitment.rep_email != rep_email:
            continue
        deal = current.get(commitment.deal_id) if commitment.deal_id else None
        outcome = None
        if deal is not None and deal.is_closed:
            outcome = "won" if deal.is_won else "lost"
        missed = reviews_missed(commitment, memory.review_dates, as_of)
        last = memory.review_dates[0] if memory.review_dates else None
        recent = commitment.made_on == last and (as_of - commitment.made_on).days <= 9
        when = "Last week" if recent else f"On {short_date(commitment.made_on, as_of)}"
        opening, prompts = picker.deliver_prompts(commitment, when, skipped=missed > 0)
        items.append(
            DeliverItem(
                commitment=commitment,
                deal=deal,
                outcome=outcome,
                overdue=commitment.overdue(as_of),
                opening=opening,
                prompts=prompts,
                reviews_missed=missed,
                hint=vagueness_hint(commitment.text, commitment.due),
                since=_since(memory.at_commitment.get(commitment.id), deal, as_of),
            )
        )
    return items


FOCUS_OUTCOMES = ("moved_forward", "gained_contact", "won", "lost", "pushed", "still")


def focus_outcomes(memory: Memory, current: dict[str, Deal], rep_email: str) -> dict[str, int]:
    """What became of the deals that were in focus on this rep's last sheet (the deals its
    questions were about): moved a stage forward, gained a contact, won, lost, had the close
    date pushed, or sat still (none of those). A deal may count in several; empty when there
    was no last review."""
    out = dict.fromkeys(FOCUS_OUTCOMES, 0)
    seen = False
    for deal_id in memory.asked_last:
        before = memory.previous.get(deal_id)
        if before is None or before.owner.email != rep_email:
            continue
        seen = True
        now = current.get(deal_id)
        if now is None:
            continue
        if now.is_closed:
            out["won" if now.is_won else "lost"] += 1
            continue
        moved = {
            "moved_forward": before.stage_order is not None
            and now.stage_order is not None
            and now.stage_order > before.stage_order,
            "gained_contact": len(now.contacts) > len(before.contacts),
            "pushed": before.close_date is not None
            and now.close_date is not None
            and now.close_date > before.close_date,
        }
        for outcome, happened in moved.items():
            out[outcome] += happened
        out["still"] += not any(moved.values())
    return out if seen else {}


def _since(then: Deal | None, now: Deal | None, as_of: date) -> str | None:
    """What the CRM shows about a commitment's deal since it was made, said neutrally: what
    changed, and the number of contacts when that did not."""
    if then is None or now is None or now.is_closed:
        return None
    changes = [c.text for c in diff_deal(then, now, as_of)]
    if len(then.contacts) == len(now.contacts):
        count = len(now.contacts)
        changes.append(f"still {count} contact{'' if count == 1 else 's'} on the deal")
    return "; ".join(changes) if changes else None


# --- JSON (the packets.json contract) ------------------------------------------------------------


def _flag_json(flag: Flag) -> dict[str, Any]:
    return {
        "code": flag.code,
        "title": flag.title,
        "severity": flag.severity,
        "evidence": flag.evidence,
        "news": flag.news,
        "shown": flag.shown,
    }


def deal_json(view: DealView) -> dict[str, Any]:
    deal = view.deal
    return {
        "id": deal.id,
        "name": deal.name,
        "account": deal.account,
        "amount": f"{deal.amount:.2f}" if deal.amount is not None else None,
        "currency": deal.currency,
        "stage": deal.stage,
        "close_date": deal.close_date.isoformat() if deal.close_date else None,
        "url": deal.url,
        "focus": view.focus,
        "deep": view.deep,
        "risk_score": view.risk_score,
        "new": view.is_new,
        "flags": [_flag_json(f) for f in view.flags],
        "changes": [c.as_json() for c in view.changes],
        "questions": {step: view.questions.get(step, []) for step in ("listen", "explore")},
        "facts": {
            "probability": deal.probability,
            "forecast_category": deal.forecast_category,
            "last_activity_at": deal.last_activity_at.isoformat()
            if deal.last_activity_at
            else None,
            "next_step": deal.next_step,
            "contacts": [
                {"name": c.name, "email": c.email, "role": c.role, "title": c.title}
                for c in deal.contacts
            ],
        },
    }


def packet_json(packet: Packet) -> dict[str, Any]:
    return {
        "rep": {"id": packet.rep.id, "name": packet.rep.name, "email": packet.rep.email},
        "manager": (
            {"name": packet.manager.name, "email": packet.manager.email} if packet.manager else None
        ),
        "previous_review": packet.previous_review.isoformat() if packet.previous_review else None,
        "coaching": {
            "kept_last_4": packet.coaching.kept_4,
            "followed_up_last_4": packet.coaching.decided_4,
            "kept_last_12": packet.coaching.kept_12,
            "followed_up_last_12": packet.coaching.decided_12,
            "streak": packet.coaching.streak,
            "not_followed_up": packet.coaching.not_followed_up,
            "summary": packet.coaching.summary,
        },
        "checks_off": packet.checks_off,
        "coverage": packet.coverage,
        "money_since_last_review": {c: m.as_json() for c, m in packet.money.items()},
        "last_focus_deals_now": packet.focus_next,
        "hygiene": [
            {"code": h.code, "deals": h.count, "of": h.total, "high": h.high, "text": h.text}
            for h in packet.hygiene
        ],
        "pipeline_value_known": packet.amounts_known,
        "listen": packet.listen,
        "agree": {"prompts": packet.agree},
        "deliver": [
            {
                **item.commitment.to_json(packet.as_of),
                "opening": item.opening,
                "deal_outcome": item.outcome,
                "prompts": item.prompts,
                "reviews_missed": item.reviews_missed,
                "hint": item.hint,
                "since": item.since,
            }
            for item in packet.deliver
        ],
        "deals": [deal_json(v) for v in packet.deals],
        "departed": [
            {"id": d.deal.id, "name": d.deal.name, "outcome": d.outcome, "text": d.text}
            for d in packet.departed
        ],
    }


def packets_json(packets: list[Packet], as_of: date, source: str) -> dict[str, Any]:
    """The whole ``packets.json`` document."""
    return {
        "as_of": as_of.isoformat(),
        "source": source,
        "packets": [packet_json(p) for p in packets],
    }
