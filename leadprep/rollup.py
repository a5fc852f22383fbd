"""The director's rollup: a line per team that says how its coaching went, then a row per team
and rep with a cell per measure (the last 4 reviews, 12 in brackets, the trend over 12 drawn on
one scale per column, and the team's target where it set one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from markupsafe import Markup

from leadprep.history import Series, sparkline
from leadprep.measures import MEASURES, Measure
from leadprep.money import sentence

COLUMNS = (
    "reviews",
    "agree_share",
    "followed_up_share",
    "kept_rate",
    "never_followed_up",
    "flags_per_deal",
    "high_flags_per_sheet",
    "close_moved",
)
TRACED = ("agree_share", "kept_rate", "flags_per_deal", "high_flags_per_sheet")  # Week properties
TRACE_WEEKS = 12
SPARK_WIDTH = 60


def _trace(series: Series, key: str) -> list[float | None]:
    return [getattr(w, key) for w in series.last(TRACE_WEEKS)]


def scales(teams: list[Series]) -> dict[str, float]:
    """The top of each traced column's scale, shared by every row: 100% for a share, else the
    largest value any team or rep reached in the window."""
    tops = {}
    for key in TRACED:
        if MEASURES[key].share:
            tops[key] = 1.0
            continue
        values = [
            v for team in teams for s in [team, *team.reps] for v in _trace(s, key) if v is not None
        ]
        tops[key] = max(values, default=0.0) or 1.0
    return tops


def short(measure: Measure, value: float) -> str:
    """A sparkline's end label: the number without its unit (the column says it)."""
    return measure.show(value).split(" ")[0]


def target_words(measure: Measure, value: float | None, target: float | None) -> str:
    """``below the target of 70%``, ``meets the target of 0.5``; "" without a target."""
    meets = measure.meets(value, target)
    if target is None or meets is None:
        return f"target {measure.show(target).split(' ')[0]}" if target is not None else ""
    shown = measure.show(target).split(" ")[0]
    if meets:
        return f"meets the target of {shown}"
    return f"{'below' if measure.better == 'higher' else 'above'} the target of {shown}"


@dataclass(frozen=True)
class Cell:
    measure: Measure
    four: float | None
    twelve: float | None
    spark: Markup
    target: float | None = None
    detail: str = ""

    @property
    def meets(self) -> bool | None:
        return self.measure.meets(self.four, self.target)

    @property
    def value(self) -> str:
        return self.measure.show(self.four)

    @property
    def wide(self) -> str:
        return self.measure.show(self.twelve).split(" ")[0]

    @property
    def target_text(self) -> str:
        return target_words(self.measure, self.four, self.target)


def outcome_words(outcomes: dict[str, int]) -> str:
    """``2 kept, 1 partly, 1 missed`` (the kinds that happened)."""
    return ", ".join(f"{outcomes[k]} {k}" for k in ("kept", "partly", "missed") if outcomes.get(k))


def cells(series: Series, tops: dict[str, float], targets: dict[str, float]) -> list[Cell]:
    """The row of a team or a rep."""
    four, twelve = series.summary(4), series.summary(TRACE_WEEKS)
    four["never_followed_up"] = series.never_followed_up  # a standing count: no window
    twelve["never_followed_up"] = None
    row = []
    for key in COLUMNS:
        measure = MEASURES[key]
        spark = Markup("")
        if key in TRACED:
            spark = Markup(
                sparkline(
                    _trace(series, key),
                    width=SPARK_WIDTH,
                    top=tops[key],
                    label=partial(short, measure),
                )
            )
        detail = outcome_words(four["outcomes"]) if key == "kept_rate" else ""
        row.append(Cell(measure, four[key], twelve[key], spark, targets.get(key), detail))
    return row


def director_line(team: Series, targets: dict[str, float], quarter: str) -> str:
    """What a director reads first about a team, over the last 4 reviews: "4 of 5 1:1s ended with
    a commitment; 3 kept, 1 partly, 1 missed; …; pushed out of Q4 $180,000"."""
    four = team.summary(4)
    parts = []
    if four["held"]:
        agreed = round(four["agree_share"] * four["held"])
        said = f"{agreed} of {four['held']} 1:1s ended with a commitment"
        aim = target_words(MEASURES["agree_share"], four["agree_share"], targets.get("agree_share"))
        parts.append(f"{said} ({aim})" if aim else said)
    else:
        parts.append("no 1:1 held yet")
    if four["followed_up"]:
        kept = MEASURES["kept_rate"].show(four["kept_rate"])
        aim = target_words(MEASURES["kept_rate"], four["kept_rate"], targets.get("kept_rate"))
        parts.append(
            f"of {four['followed_up']} followed up: {outcome_words(four['outcomes'])} "
            f"(kept rate {kept}{', ' + aim if aim else ''})"
        )
    if four["worked_said"]:
        parts.append(f"{four['worked']} of {four['worked_said']} worked, as the rep said")
    focus = four["focus_next"]
    if any(focus.values()):
        parts.append(
            "the focus deals a week later: "
            + ", ".join(
                f"{focus[key]} {words}"
                for key, words in (
                    ("moved_forward", "moved forward"),
                    ("gained_contact", "gained a contact"),
                    ("won", "won"),
                    ("lost", "lost"),
                    ("pushed", "pushed"),
                    ("still", "sat still"),
                )
                if focus.get(key)
            )
        )
    moved = sentence(four["money"], quarter)
    if moved:
        parts.append(moved)
    return "; ".join(parts)


@dataclass(frozen=True)
class Row:
    series: Series
    team: bool
    cells: list[Cell]


@dataclass(frozen=True)
class TeamBlock:
    team: Series
    line: str
    rows: list[Row]
    targets: dict[str, float]


def blocks(
    teams: list[Series], targets_for: Callable[[str], dict[str, float]], quarter: str
) -> list[TeamBlock]:
    """Each team's director line and rows; ``targets_for`` gives a manager's team its targets
    (``Config.targets_for``)."""
    tops = scales(teams)
    out = []
    for team in teams:
        aims = targets_for(team.key)
        rows = [Row(team, True, cells(team, tops, aims))]
        rows += [Row(rep, False, cells(rep, tops, aims)) for rep in team.reps]
        out.append(TeamBlock(team, director_line(team, aims, quarter), rows, aims))
    return out
