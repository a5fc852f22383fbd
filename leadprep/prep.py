"""The main job: pull deals, remember them, flag risk, build packets, write the sheets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from leadprep.config import Config
from leadprep.connectors import Connector, FetchResult, RowProblem, connector_for
from leadprep.errors import UsageError
from leadprep.packets import Memory, Packet, build_packets
from leadprep.render import Renderer, Staging
from leadprep.sanitize import UnsafeValue, clean_deal, clean_line
from leadprep.store import Store

log = logging.getLogger(__name__)


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


def remembered(store: Store, as_of: date) -> Memory:
    """What the store knows from reviews before ``as_of``."""
    previous = store.previous_review(as_of)
    return Memory(
        previous_review=previous.as_of if previous else None,
        previous=store.snapshot(previous.run_id) if previous else {},
        close_dates_seen=store.close_date_observations(as_of),
        open_commitments=store.commitments(status="open", made_before=as_of),
        commitment_history=store.commitments(made_before=as_of),
        review_dates=store.review_dates(as_of - timedelta(days=1), 12),
    )


def cleaned(fetched: FetchResult) -> FetchResult:
    """The connector's deals with their text cleaned and addresses checked (the connector
    boundary); a deal that cannot be routed becomes a row problem like a bad CSV row."""
    deals, problems = [], list(fetched.problems)
    for deal in fetched.deals:
        try:
            deals.append(clean_deal(deal))
        except UnsafeValue as exc:
            problems.append(RowProblem(f"{fetched.source} record", str(exc), clean_line(deal.id)))
    return FetchResult(fetched.source, deals, problems, fetched.notes)


def run_prep(
    config: Config,
    store: Store,
    *,
    as_of: date,
    out_dir: Path,
    formats: list[str],
    only_reps: set[str] | None = None,
    connector: Connector | None = None,
    progress: Callable[[str], None] | None = None,
) -> PrepResult:
    """Pull, flag, record and render one review; returns the packets and the files written."""
    renderer = Renderer(config)
    staging = renderer.stage(out_dir)
    try:
        return _prep(
            config, store, renderer, staging, as_of, formats, only_reps, connector, progress
        )
    finally:
        staging.discard()


def _prep(
    config: Config,
    store: Store,
    renderer: Renderer,
    staging: Staging,
    as_of: date,
    formats: list[str],
    only_reps: set[str] | None,
    connector: Connector | None,
    progress: Callable[[str], None] | None,
) -> PrepResult:
    connector = connector or connector_for(config)
    team = config.team_reps() or None  # None: everyone (or, with manager-only teams, their reports)
    memory = remembered(store, as_of)
    known = frozenset(
        {d.id for d in memory.previous.values() if d.is_open}
        | {c.deal_id for c in memory.open_commitments}
    )
    fetched = cleaned(connector.fetch(team, as_of, known))
    log.debug(
        "%s returned %d deals (%d skipped records)",
        fetched.source,
        len(fetched.deals),
        len(fetched.problems),
    )
    packets = build_packets(
        fetched.deals, memory, config, renderer.question_bank(), as_of, only_reps
    )
    if only_reps:
        unmatched = sorted(only_reps - {p.rep.email for p in packets})
        if unmatched:
            raise UsageError(
                f"No rep matches {', '.join(unmatched)} in this pipeline; nothing was written.",
                hint="Use the rep's email as the CRM (or the teams section) has it.",
            )
    renderer.write(packets, staging, formats, as_of=as_of, source=fetched.source, progress=progress)
    # Recorded only once every sheet rendered; published right after, so both change together.
    store.record_run(as_of, fetched.source, fetched.deals)
    pruned = store.prune(config.state.keep_reviews)
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
    )
