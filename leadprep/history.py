"""How the coaching is going, week over week: per rep and per manager, from the state store.

Two indexed reads make every series: ``rep_weeks`` (each rep's pipeline hygiene as each review
saw it) for the review dates in the window, and the commitments made since its first date, with
their follow-ups. Everything else is arithmetic on those rows, so a 200-rep, 52-week rollup is
two queries, not one per rep. What each number means is in the README ("Tracking the results").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from leadprep.model import KEPT_WEIGHT, Commitment, RepWeek
from leadprep.money import Movement, summed
from leadprep.store import Store


@dataclass(frozen=True)
class Week:
    """One rep (or one team) at one review date."""

    as_of: date
    reviewed: bool  # had a sheet in this review
    open_deals: int = 0
    flagged: int = 0
    flags: int = 0
    high_flags: int = 0
    close_moved: int = 0
    made: int = 0  # commitments recorded at this review (Agree done)
    followed_next: int = 0  # of those, followed up at the next review (Deliver done)
    due_next: int = 0  # of those, how many had a next review to be followed up at
    decided: int = 0  # follow-ups recorded at this review
    kept: float = 0.0  # their kept weight (partly counts half)
    outcomes: dict[str, int] = field(default_factory=dict)  # those follow-ups: kept/partly/missed
    reps_reviewed: int = 0  # sheets at this review (a rep's: 0 or 1)
    # 1:1s held at this review (a rep's: 0 or 1), and of those how many ended with a commitment:
    # the review being prepared is not held yet, so it never counts against the Agree rate
    held: int = 0
    agreed: int = 0
    worked: int = 0  # follow-ups recorded here where the rep said it worked
    worked_said: int = 0  # follow-ups recorded here where the rep said whether it worked
    money: dict[str, Movement] = field(default_factory=dict)  # since the review before
    focus_next: dict[str, int] = field(default_factory=dict)  # the review before's focus deals

    @classmethod
    def of(cls, as_of: date, row: RepWeek, **commitments: Any) -> Week:
        """The week a recorded ``rep_weeks`` row describes, with its commitment counts."""
        return cls(
            as_of,
            True,
            reps_reviewed=1,
            open_deals=row.open_deals,
            flagged=row.flagged,
            flags=row.flags,
            high_flags=row.high_flags,
            close_moved=row.close_moved,
            money={c: Movement.from_json(m) for c, m in row.money.items()},
            focus_next=dict(row.focus_next),
            **commitments,
        )

    @property
    def flags_per_deal(self) -> float | None:
        return self.flags / self.open_deals if self.open_deals else None

    @property
    def high_flags_per_sheet(self) -> float | None:
        return self.high_flags / self.reps_reviewed if self.reps_reviewed else None

    @property
    def kept_rate(self) -> float | None:
        return self.kept / self.decided if self.decided else None

    @property
    def agree_share(self) -> float | None:
        """Of the 1:1s held at this review, the share that ended with a commitment."""
        return self.agreed / self.held if self.held else None


@dataclass
class Series:
    """A rep's or a manager's weeks, oldest first, and their open commitments never followed up."""

    key: str  # rep email, or manager email ("" for reps with no manager)
    name: str
    manager: str | None  # the rep's manager's name
    weeks: list[Week]
    never_followed_up: int = 0
    reps: list[Series] = field(default_factory=list)  # a manager's reps
    manager_email: str | None = None

    def last(self, n: int) -> list[Week]:
        return self.weeks[-n:]

    def summary(self, n: int) -> dict[str, Any]:
        """The window's numbers: the last ``n`` review dates."""
        weeks = [w for w in self.last(n) if w.reviewed]
        held = sum(w.held for w in weeks)
        made = sum(w.made for w in weeks if w.held)
        due = sum(w.due_next for w in weeks)
        decided = sum(w.decided for w in weeks)
        deals = sum(w.open_deals for w in weeks)
        sheets = sum(w.reps_reviewed for w in weeks)
        worked_said = sum(w.worked_said for w in weeks)
        return {
            "reviews": len(weeks),
            "held": held,
            "not_held_yet": bool(weeks) and not weeks[-1].held,
            "commitments": made,
            "commitments_per_review": made / held if held else None,
            "agree_share": sum(w.agreed for w in weeks) / held if held else None,
            "followed_up_next": sum(w.followed_next for w in weeks),
            "followed_up_share": sum(w.followed_next for w in weeks) / due if due else None,
            "followed_up": decided,
            "kept_rate": sum(w.kept for w in weeks) / decided if decided else None,
            "outcomes": _counts(w.outcomes for w in weeks),
            "worked": sum(w.worked for w in weeks),
            "worked_said": worked_said,
            "worked_share": sum(w.worked for w in weeks) / worked_said if worked_said else None,
            "never_followed_up": self.never_followed_up,
            "flags_per_deal": sum(w.flags for w in weeks) / deals if deals else None,
            "high_flags_per_sheet": sum(w.high_flags for w in weeks) / sheets if sheets else None,
            "close_moved": sum(w.close_moved for w in weeks),
            "money": window_money(weeks),
            "focus_next": _counts(w.focus_next for w in weeks),
        }


def window_money(weeks: list[Week]) -> dict[str, Movement]:
    """The money that moved over the weeks (flows added up), with the amounts at risk as the
    latest of them saw them (a standing amount, not a flow: never added across weeks)."""
    flows = summed(w.money for w in weeks)
    latest = weeks[-1].money if weeks else {}
    for currency in set(flows) | set(latest):
        total = flows.setdefault(currency, Movement())
        now = latest.get(currency, Movement())
        total.commit_at_risk, total.best_case_at_risk = now.commit_at_risk, now.best_case_at_risk
    return {c: m for c, m in flows.items() if m.any()}


def moved_close_date(change: Any) -> bool:
    """A close date pushed or pulled in: a first close date (set) or one removed is no move."""
    return change.field == "close_date" and change.old is not None and change.new is not None


def week_of(packets: Iterable[Any]) -> list[RepWeek]:
    """Each packet's week as ``rep_weeks`` records it (at ``prep`` time, from the same flags)."""
    return [
        RepWeek(
            rep_email=p.rep.email,
            rep_name=p.rep.name,
            manager_email=p.manager.email if p.manager else None,
            manager_name=p.manager.name if p.manager else None,
            open_deals=len(p.deals),
            flagged=len(p.flagged),
            flags=p.flag_total,
            high_flags=p.high_flags,
            close_moved=sum(1 for v in p.deals if any(moved_close_date(c) for c in v.changes)),
            money={c: m.as_json() for c, m in p.money.items()},
            focus_next=dict(p.focus_next),
        )
        for p in packets
    ]


CADENCE_DAYS = 7  # a review this old without a later one has had its 1:1


def rep_series(
    store: Store,
    on_or_before: date,
    weeks: int,
    current: date | None = None,
    current_weeks: Iterable[RepWeek] = (),
) -> list[Series]:
    """Every rep seen in the last ``weeks`` review dates, with a week for each date. A review's
    1:1 counts as held once a later review exists (``current``: the one being prepared, whose
    weeks, not recorded yet, are ``current_weeks``), once something was recorded at it, or once
    it is a cadence old."""
    recorded = sorted(store.runs.review_dates(on_or_before, weeks))
    rows = store.runs.rep_weeks(recorded) if recorded else []
    current_weeks = list(current_weeks)
    dates = recorded
    if current is not None and current_weeks:
        dates = [*recorded, current]
        rows = [*rows, *((current, w) for w in current_weeks)]
    if not dates:
        return []
    commitments = store.commitments.all(made_since=dates[0])
    # "Never followed up": still open and made before the latest recorded review
    open_before_last = (
        store.commitments.all(status="open", made_before=recorded[-1]) if recorded else []
    )
    later = {d: dates[i + 1] for i, d in enumerate(dates[:-1])}
    seen: dict[str, dict[date, RepWeek]] = {}
    for as_of, row in rows:
        seen.setdefault(row.rep_email, {})[as_of] = row
    by_rep: dict[str, list[Commitment]] = {}
    for c in commitments:
        by_rep.setdefault(c.rep_email, []).append(c)
    out = []
    for email, by_date in seen.items():
        latest = by_date[max(by_date)]
        mine = by_rep.get(email, [])
        report = current or on_or_before
        series_weeks: list[Week] = []
        next_held = False  # the next review's 1:1 has happened: Deliver was due at it
        for d in reversed(dates):
            superseded = current is not None and d < current
            week = _week(d, by_date.get(d), mine, later.get(d), report, superseded, next_held)
            series_weeks.insert(0, week)
            next_held = d != dates[-1] or bool(week.held)
        never = sum(1 for c in open_before_last if c.rep_email == email)
        out.append(
            Series(
                email,
                latest.rep_name,
                latest.manager_name,
                series_weeks,
                never,
                manager_email=latest.manager_email,
            )
        )
    return sorted(out, key=lambda s: s.name.lower())


def _week(
    as_of: date,
    row: RepWeek | None,
    mine: list[Commitment],
    next_review: date | None,
    report: date,
    superseded: bool = False,
    next_held: bool = True,
) -> Week:
    made = [c for c in mine if c.made_on == as_of]
    followed = [c for c in made if c.followups and c.followups[0].review == next_review]
    # Deliver is due once the next review's 1:1 has happened; before it, only the follow-ups
    # already recorded at it count (on both sides), so a 1:1 still to come never pulls it down.
    due = len(made) if next_review is not None and next_held else len(followed)
    decided = [
        (c, f) for c in mine for f in c.followups[-1:] if f.review == as_of and c.made_on < as_of
    ]
    if row is None:
        return Week(as_of, False, made=len(made))
    held = bool(
        superseded
        or next_review is not None
        or made
        or decided
        or (report - as_of).days >= CADENCE_DAYS
    )
    return Week.of(
        as_of,
        row,
        made=len(made),
        followed_next=len(followed),
        due_next=due,
        decided=len(decided),
        kept=sum(KEPT_WEIGHT[f.status] for _, f in decided),
        outcomes=_counts({f.status: 1} for _, f in decided),
        held=int(held),
        agreed=int(held and bool(made)),
        worked=sum(1 for _, f in decided if f.worked is True),
        worked_said=sum(1 for _, f in decided if f.worked is not None),
    )


def team_series(reps: list[Series], managers: dict[str, str]) -> list[Series]:
    """One series per manager, summing their reps' weeks; ``managers`` (email -> name) adds the
    configured managers with no review yet."""
    teams: dict[str, list[Series]] = {}
    names: dict[str, str] = dict(managers)
    for rep in reps:
        key = rep.manager_email or ""
        teams.setdefault(key, []).append(rep)
        if key and key not in names:
            names[key] = rep.manager or key
    for email in managers:
        teams.setdefault(email, [])
    out = []
    for key, members in teams.items():
        weeks = []
        for i in range(len(members[0].weeks) if members else 0):
            column = [m.weeks[i] for m in members]
            weeks.append(_sum(column))
        never = sum(m.never_followed_up for m in members)
        name = names.get(key) or "Reps with no manager on record"
        out.append(Series(key, name, None, weeks, never, sorted(members, key=lambda s: s.name)))
    return sorted(out, key=lambda s: (not s.key, s.name.lower()))


def _sum(weeks: list[Week]) -> Week:
    reviewed = [w for w in weeks if w.reviewed]
    return Week(
        weeks[0].as_of,
        bool(reviewed),
        reps_reviewed=len(reviewed),
        open_deals=sum(w.open_deals for w in reviewed),
        flagged=sum(w.flagged for w in reviewed),
        flags=sum(w.flags for w in reviewed),
        high_flags=sum(w.high_flags for w in reviewed),
        close_moved=sum(w.close_moved for w in reviewed),
        made=sum(w.made for w in weeks),
        followed_next=sum(w.followed_next for w in weeks),
        due_next=sum(w.due_next for w in weeks),
        decided=sum(w.decided for w in weeks),
        kept=sum(w.kept for w in weeks),
        outcomes=_counts(w.outcomes for w in weeks),
        held=sum(w.held for w in weeks),
        agreed=sum(w.agreed for w in weeks),
        worked=sum(w.worked for w in weeks),
        worked_said=sum(w.worked_said for w in weeks),
        money=summed(w.money for w in reviewed),
        focus_next=_counts(w.focus_next for w in reviewed),
    )


def _counts(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in parts:
        for key, value in part.items():
            out[key] = out.get(key, 0) + value
    return out


def sparkline(
    values: list[float | None],
    width: int = 96,
    height: int = 18,
    top: float | None = None,
    label: Callable[[float], str] | None = None,
) -> str:
    """An inline SVG polyline of ``values`` (None: a gap), black on white, no script. ``top`` is
    the value drawn at the top (a column's shared scale; else the largest value); with ``label``
    the first value is written before the line and the last after it."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if not points:
        return ""
    top = top or max(v for _, v in points) or 1.0
    gutter = 32 if label else 0
    step = width / max(len(values) - 1, 1)

    def x(i: int) -> float:
        return gutter + i * step

    def y(v: float) -> float:
        return height - 2 - (min(v, top) / top) * (height - 4)

    coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in points)
    last_i, last_v = points[-1]
    text = ""
    if label:
        first_i, first_v = points[0]
        if len(points) > 1:
            text += (
                f'<text x="{x(first_i) - 3:.1f}" y="{height - 5}" text-anchor="end">'
                f"{label(first_v)}</text>"
            )
        text += f'<text x="{x(last_i) + 4:.1f}" y="{height - 5}">{label(last_v)}</text>'
    total = width + 2 * gutter
    return (
        f'<svg class="spark" viewBox="0 0 {total} {height}" width="{total}" height="{height}" '
        f'role="img" aria-hidden="true" font-size="9" font-weight="400" fill="#111">'
        f'<polyline fill="none" stroke="#111" stroke-width="1.3" points="{coords}"/>'
        f'<circle cx="{x(last_i):.1f}" cy="{y(last_v):.1f}" r="1.8"/>{text}</svg>'
    )


def rows_for_table(series: list[Series]) -> list[dict[str, Any]]:
    """``leadprep history`` rows: one per rep and review date."""
    out = []
    for s in series:
        for w in s.weeks:
            out.append(
                {
                    "rep": s.key,
                    "name": s.name,
                    "manager": s.manager,
                    "review": w.as_of.isoformat(),
                    "reviewed": w.reviewed,
                    "open_deals": w.open_deals,
                    "flagged": w.flagged,
                    "flags": w.flags,
                    "high_flags": w.high_flags,
                    "close_moved": w.close_moved,
                    "money": {c: m.as_json() for c, m in w.money.items()},
                    "focus_next": w.focus_next,
                    "held": bool(w.held),
                    "commitments": w.made,
                    "followed_up_next_review": w.followed_next,
                    "followed_up_here": w.decided,
                    "kept": w.kept,
                    "followups_kept": w.outcomes.get("kept", 0),
                    "followups_partly": w.outcomes.get("partly", 0),
                    "followups_missed": w.outcomes.get("missed", 0),
                    "agreed": bool(w.agreed),
                    "worked": w.worked,
                    "worked_said": w.worked_said,
                    "kept_rate": round(w.kept_rate, 3) if w.kept_rate is not None else None,
                }
            )
    return out
