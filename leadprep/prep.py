"""The main job: pull deals, remember them, flag risk, build packets, write the sheets."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

from leadprep.config import Config
from leadprep.connectors import Connector, FetchResult, RowProblem, connector_for
from leadprep.errors import UsageError
from leadprep.history import Series, rep_series, team_series, week_of
from leadprep.model import NewCommitment, RepWeek
from leadprep.packets import Memory, Packet, build_packets, questions_asked
from leadprep.questions import QuestionBank, load_bank
from leadprep.render import Renderer, Staging
from leadprep.sanitize import UnsafeValue, clean_deal, clean_line
from leadprep.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewSource:
    """Where one review comes from: the effective config, the CRM connector and the store that
    remembers earlier reviews; ``demo`` when it is the bundled demo pipeline."""

    config: Config
    connector: Connector
    store: Store
    demo: bool = False


def uses_demo(config: Config | None, demo: bool = False) -> bool:
    """The demo runs when asked, when there is no config, or when the config names it."""
    return demo or config is None or config.crm.kind == "demo"


@contextmanager
def open_review(
    config: Config | None, as_of: date, *, demo: bool = False, store: Store | None = None
) -> Iterator[ReviewSource]:
    """Open the source of the review on ``as_of`` (``prep``, ``send`` and ``review`` all start here).

    The demo runs on its own team with the given config's other settings, in a fresh in-memory
    store seeded with its history (its dates move with the calendar, so stored history would not
    fit). Otherwise the configured CRM, and ``store`` or else the configured state file."""
    if uses_demo(config, demo):
        from leadprep.connectors.demo import DemoConnector
        from leadprep.demo import demo_config

        with Store.memory() as scratch:
            seed_demo(scratch, as_of)
            yield ReviewSource(demo_config(config), DemoConnector(), scratch, demo=True)
        return
    assert config is not None
    connector = connector_for(config)
    if store is not None:
        yield ReviewSource(config, connector, store)
        return
    with Store.open(config.state_path()) as opened:
        yield ReviewSource(config, connector, opened)


@dataclass(frozen=True)
class NoSheet:
    """Open deals that went to no sheet because no team lists their owner."""

    count: int
    total: int  # open deals found, on a sheet or not
    owners: dict[str, int]  # owner name -> open deals

    @property
    def most(self) -> bool:
        """More than half the open deals went to no sheet: a setup mistake, not a choice."""
        return self.count * 2 > self.total

    @property
    def why(self) -> str:
        ranked = sorted(self.owners.items(), key=lambda item: (-item[1], item[0]))
        named = ", ".join(f"{name} ({count:,})" for name, count in ranked[:6])
        more = f" and {len(ranked) - 6} more" if len(ranked) > 6 else ""
        return (
            f"no team in the config lists their owners: {named}{more}. Add them to teams as "
            '"Name <email>", or remove teams to give every owner a sheet.'
        )


def no_sheet(fetched: FetchResult) -> NoSheet | None:
    """The open deals the teams leave out, or None when every open deal found has a sheet."""
    count = sum(fetched.unassigned.values())
    if not count:
        return None
    total = count + sum(1 for d in fetched.deals if d.is_open)
    return NoSheet(count, total, dict(fetched.unassigned))


@dataclass
class PrepResult:
    """What a prep run produced and what it had to skip."""

    as_of: date
    source: str
    packets: list[Packet]
    files: list[Path]
    out_dir: Path
    problems: list[RowProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    previous_review: date | None = None
    no_sheet: NoSheet | None = None


def remembered(store: Store, as_of: date) -> Memory:
    """What the store knows from reviews before ``as_of``."""
    previous = store.runs.previous(as_of)
    open_commitments = store.commitments.all(status="open", made_before=as_of)
    at_commitment = {}
    for c in open_commitments:
        found = store.runs.latest_snapshot_of(c.deal_id, c.made_on) if c.deal_id else None
        if found is not None:
            at_commitment[c.id] = found[1]
    return Memory(
        previous_review=previous.as_of if previous else None,
        previous=store.runs.snapshot(previous.run_id) if previous else {},
        close_dates_seen=store.runs.close_date_observations(as_of),
        open_commitments=open_commitments,
        at_commitment=at_commitment,
        commitment_history=store.commitments.all(made_before=as_of),
        review_dates=earlier_reviews(store, as_of),
        asked_last=store.runs.asked_at(previous),
    )


REVIEWS_REMEMBERED = 12  # earlier review dates a rep's coaching record counts over


def earlier_reviews(store: Store, as_of: date) -> list[date]:
    """The review dates before ``as_of`` a coaching record counts over, newest first."""
    return store.runs.review_dates(as_of - timedelta(days=1), REVIEWS_REMEMBERED)


def cleaned(fetched: FetchResult) -> FetchResult:
    """The connector's deals with their text cleaned and addresses checked (the connector
    boundary); a deal that cannot be routed becomes a row problem like a bad CSV row."""
    deals, problems = [], list(fetched.problems)
    for deal in fetched.deals:
        try:
            deals.append(clean_deal(deal))
        except UnsafeValue as exc:
            problems.append(RowProblem(f"{fetched.source} record", str(exc), clean_line(deal.id)))
    return replace(fetched, deals=deals, problems=problems)


def run_prep(
    source: ReviewSource,
    *,
    as_of: date,
    out_dir: Path,
    formats: list[str],
    only_reps: set[str] | None = None,
    progress: Callable[[str], None] | None = None,
    manager: str | None = None,
    rollup: bool = False,
) -> PrepResult:
    """Pull, flag, record and render one review; returns the packets and the files written.
    ``manager``: only that manager's reps; ``rollup``: write rollup.html even for one team."""
    renderer = Renderer(source.config, demo=source.demo)
    staging = renderer.stage(out_dir)
    try:
        return _prep(
            source, renderer, staging, as_of, formats, only_reps, progress, manager, rollup
        )
    finally:
        staging.discard()


def _prep(
    source: ReviewSource,
    renderer: Renderer,
    staging: Staging,
    as_of: date,
    formats: list[str],
    only_reps: set[str] | None,
    progress: Callable[[str], None] | None,
    manager: str | None = None,
    rollup: bool = False,
) -> PrepResult:
    config, store, connector = source.config, source.store, source.connector
    bank = renderer.question_bank()
    record_missing_weeks(store, config, bank)
    team = config.team_reps() or None  # None: everyone (or, with manager-only teams, their reports)
    memory = remembered(store, as_of)
    known = frozenset(
        {d.id for d in memory.previous.values() if d.is_open}
        | {c.deal_id for c in memory.open_commitments if c.deal_id is not None}
    )
    fetched = cleaned(connector.fetch(team, as_of, known))
    log.debug(
        "%s returned %d deals (%d skipped records)",
        fetched.source,
        len(fetched.deals),
        len(fetched.problems),
    )
    packets = build_packets(
        fetched.deals,
        memory,
        config,
        bank,
        as_of,
        only_reps,
        unsupported=fetched.unsupported,
    )
    packets = _asked_for(packets, only_reps, manager)
    weeks = week_of(packets)
    missing = no_sheet(fetched)
    # One read of the earlier reviews, with this one's weeks (recorded only after the sheets
    # render), serves the trend strips (last 8) and the rollup (last 12).
    reps = rep_series(store, as_of - timedelta(days=1), ROLLUP_WEEKS - 1, as_of, weeks)
    with_trends(packets, reps)
    teams = None
    if rollup or source.demo or len(_managers(packets, config)) > 1:
        teams = _rollup(reps, config, manager)
    renderer.write(
        packets,
        staging,
        formats,
        as_of=as_of,
        source=fetched.source,
        progress=progress,
        rollup=teams,
        no_sheet=missing,
    )
    # Recorded only once every sheet rendered; published right after, so both change together.
    store.runs.record(
        as_of, fetched.source, fetched.deals, fetched.unsupported, weeks, questions_asked(packets)
    )
    pruned = store.runs.prune(config.state.keep_reviews)
    if pruned:
        log.debug("pruned %d deal snapshots beyond state.keep_reviews", pruned)
    files = staging.publish()
    return PrepResult(
        as_of=as_of,
        source=fetched.source,
        packets=packets,
        files=files,
        out_dir=staging.out_dir,
        problems=fetched.problems,
        notes=fetched.notes,
        previous_review=memory.previous_review,
        no_sheet=missing,
    )


def _asked_for(
    packets: list[Packet], only_reps: set[str] | None, manager: str | None
) -> list[Packet]:
    """The packets of the reps (``--rep``) or the manager (``--manager``) asked for; one named
    that the pipeline does not have is an error, before anything is written."""
    if only_reps:
        unmatched = sorted(only_reps - {p.rep.email for p in packets})
        if unmatched:
            raise UsageError(
                f"No rep matches {', '.join(unmatched)} in this pipeline; nothing was written.",
                hint="Use the rep's email as the CRM (or the teams section) has it.",
            )
    if manager is not None:
        packets = [p for p in packets if p.manager and p.manager.email == manager]
        if not packets:
            raise UsageError(
                f"No rep in this pipeline has the manager {manager}; nothing was written.",
                hint="Use the manager's email as the teams section (or the CRM) has it.",
            )
    return packets


def _managers(packets: list[Packet], config: Config) -> set[str]:
    return {p.manager.email for p in packets if p.manager} | {t.manager.email for t in config.teams}


def _rollup(reps: list[Series], config: Config, manager: str | None) -> list[Series]:
    """The teams' series for rollup.html (one manager's only, with ``--manager``)."""
    names = _manager_names(config)
    if manager is not None:  # that manager's files only: no other team in the rollup
        reps = [s for s in reps if s.manager_email == manager]
        names = {manager: names[manager]} if manager in names else {}
    return team_series(reps, names)


def record_missing_weeks(store: Store, config: Config, bank: QuestionBank) -> int:
    """Give the runs recorded before the store kept each rep's week (a file upgraded from an
    older release) their weeks, computed from the snapshots still kept, as that review saw them;
    returns how many runs got weeks. A run whose snapshots were pruned is marked and skipped."""
    filled = 0
    for review in store.runs.without_weeks():
        deals = list(store.runs.snapshot(review.run_id).values())
        weeks: list[RepWeek] = []
        if deals:
            packets = build_packets(
                deals,
                remembered(store, review.as_of),
                config,
                bank,
                review.as_of,
                unsupported=review.unsupported,
            )
            weeks = week_of(packets)
            filled += 1
        store.runs.add_weeks(review, weeks)
    if filled:
        log.info("history: filled in the weeks of %d review(s) recorded before the upgrade", filled)
    return filled


def record_current(source: ReviewSource, as_of: date) -> None:
    """Pull and record the pipeline of ``as_of`` without writing sheets: the demo's review page
    serves it as the last recorded review."""
    team = source.config.team_reps() or None
    fetched = cleaned(source.connector.fetch(team, as_of))
    source.store.runs.record(as_of, fetched.source, fetched.deals, fetched.unsupported)


TREND_WEEKS = 8
ROLLUP_WEEKS = 12


def with_trends(packets: list[Packet], series: list[Series]) -> None:
    """Give each packet its last weeks of flagged deals and kept rate, this review included."""
    by_rep = {s.key: s for s in series}
    for packet in packets:
        mine = by_rep.get(packet.rep.email)
        packet.trend = [
            (w.as_of, w.flagged if w.reviewed else None, w.kept_rate)
            for w in (mine.weeks[-TREND_WEEKS:] if mine else [])
        ]


def _manager_names(config: Config) -> dict[str, str]:
    return {t.manager.email: t.manager.name for t in config.teams}


def seed_demo(store: Store, as_of: date) -> None:
    """Record the last three weekly reviews and the commitments made in them (a fresh store per
    demo run: the demo's dates move with the calendar, so stored history would not fit)."""
    from leadprep.demo import demo_config, last_week_deals, pipeline
    from leadprep.render import packaged_templates

    demo = pipeline()
    before = last_week_deals(as_of)
    bank = load_bank(packaged_templates() / "questions.yaml")
    for weeks in (3, 2, 1):
        day = as_of - timedelta(weeks=weeks)
        # each seeded review records its reps' weeks too, so the rollup has a history to show
        packets = build_packets(before, Memory(), demo_config(), bank, day)
        asked = questions_asked(packets)
        store.runs.record(day, "demo", before, rep_weeks=week_of(packets), asked=asked)
    deals = {d.id: d for d in before}
    for item in demo.commitments:
        deal = deals[item.deal] if item.deal else None  # None: a habit, no single deal
        made_on = as_of - timedelta(weeks=item.weeks_ago)
        new = NewCommitment(
            deal_id=deal.id if deal else None,
            deal_name=deal.name if deal else None,
            rep_email=deal.owner.email if deal else demo.reps[item.rep or ""].email,
            text=item.text,
            due=as_of + timedelta(days=item.due) if item.due is not None else None,
            made_on=made_on,
            success=item.success,
        )
        [new_id] = store.commitments.add([new])
        if item.status:
            store.commitments.follow_up(
                new_id, status=item.status, note=None, on=made_on + timedelta(weeks=1)
            )
