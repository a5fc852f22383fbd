"""The bundled demo pipeline, read from ``demo_pipeline.yaml`` (the data and its schema live there).

Every date in the file is a number of days from the review date, so the demo looks current
whenever it runs. :func:`seed` records the last three weekly reviews and their commitments in a
store, so the first run already shows what changed and a Deliver section.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from leadprep.connectors.fields import parse_contacts
from leadprep.model import CLOSE_DATE, Change, Contact, Deal, Rep
from leadprep.stages import StageCatalog

if TYPE_CHECKING:
    from leadprep.config import Config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoPerson(_Strict):
    id: str = ""
    name: str
    email: str


class DemoStage(_Strict):
    name: str
    probability: float
    closed: bool = False
    won: bool = False


class LastWeek(_Strict):
    """How a deal differed at last week's review (``contacts``: how many of today's it had)."""

    stage: str | None = None
    amount: int | None = None
    close: int | None = None
    contacts: int | None = None
    next_step: str | None = None
    activity: int | None = None
    in_stage: int | None = None
    next_step_age: int | None = None


class DemoDeal(_Strict):
    id: str
    name: str
    account: str
    rep: str
    stage: str
    amount: int | None
    close: int | None
    contacts: tuple[Contact, ...] = ()
    activity: int | None = None
    in_stage: int | None = None
    next_step: str | None = None
    next_step_age: int | None = None
    forecast: str | None = None
    pushes: list[int] = []
    last_week: LastWeek | Literal["new"] = LastWeek()

    @field_validator("contacts", mode="before")
    @classmethod
    def _import_format(cls, value: list[str]) -> tuple[Contact, ...]:
        return tuple(c for text in value for c in parse_contacts(text))


class DemoCommitment(_Strict):
    deal: str | None
    rep: str | None = None
    text: str
    due: int | None
    weeks_ago: int
    status: Literal["kept", "missed"] | None = None
    success: str | None = None


class DemoPipeline(_Strict):
    manager: DemoPerson
    reps: dict[str, DemoPerson]
    stages: list[DemoStage]
    crm_url: str
    deals: list[DemoDeal]
    closed_since: list[DemoDeal]
    gone_since: list[DemoDeal]
    commitments: list[DemoCommitment]

    @model_validator(mode="after")
    def _references_resolve(self) -> DemoPipeline:
        stages = {s.name for s in self.stages}
        every = [*self.deals, *self.closed_since, *self.gone_since]
        for deal in every:
            wrong = {deal.rep} - set(self.reps) or {deal.stage} - stages
            if isinstance(deal.last_week, LastWeek) and deal.last_week.stage:
                wrong |= {deal.last_week.stage} - stages
            if wrong:
                raise ValueError(f"{deal.id}: unknown rep or stage {sorted(wrong)}")
        ids = {d.id for d in every}
        for item in self.commitments:
            if item.deal is None and item.rep not in self.reps:
                raise ValueError(f"commitment {item.text!r}: no deal, so it needs a known rep")
            if item.deal is not None and item.deal not in ids:
                raise ValueError(f"commitment {item.text!r}: unknown deal {item.deal}")
        return self

    @property
    def catalog(self) -> StageCatalog:
        return StageCatalog.from_list((s.name, s.probability, s.closed, s.won) for s in self.stages)

    def rep(self, key: str) -> Rep:
        person = self.reps[key]
        return Rep(person.id, person.name, person.email)


@cache
def pipeline() -> DemoPipeline:
    """The bundled pipeline, read and checked once per process."""
    text = files("leadprep").joinpath("demo_pipeline.yaml").read_text(encoding="utf-8")
    return DemoPipeline.model_validate(yaml.safe_load(text))


def _at(today: date, days_ago: int | None) -> datetime | None:
    if days_ago is None:
        return None
    return datetime.combine(today - timedelta(days=days_ago), time(15, 0), tzinfo=UTC)


def _deal(spec: DemoDeal, today: date) -> Deal:
    demo = pipeline()
    stage = demo.catalog.get(spec.stage)
    assert stage is not None  # checked when the file was loaded
    close = today + timedelta(days=spec.close) if spec.close is not None else None
    values = [today + timedelta(days=d) for d in spec.pushes] + ([close] if close else [])
    history = tuple(
        Change(CLOSE_DATE, old, new, _at(today, 8 + 14 * (len(values) - 2 - i)))
        for i, (old, new) in enumerate(itertools.pairwise(values))
    )
    return Deal(
        id=spec.id,
        name=spec.name,
        owner=demo.rep(spec.rep),
        stage=stage.name,
        account=spec.account,
        amount=Decimal(spec.amount) if spec.amount is not None else None,
        currency="USD",
        close_date=close,
        probability=stage.probability,
        stage_order=stage.order,
        forecast_category=spec.forecast,
        created_at=_at(today, max((spec.in_stage or 10) + 20, 30)),
        stage_entered_at=_at(today, spec.in_stage),
        last_activity_at=_at(today, spec.activity),
        next_step=spec.next_step,
        next_step_updated_at=_at(today, spec.next_step_age),
        is_closed=stage.closed,
        is_won=stage.won,
        url=demo.crm_url.format(id=spec.id),
        manager_email=demo.manager.email,
        contacts=spec.contacts,
        history=history,
    )


def current_deals(today: date) -> list[Deal]:
    """The pipeline as the demo CRM shows it on ``today`` (open deals and the ones just closed)."""
    demo = pipeline()
    return [_deal(spec, today) for spec in [*demo.deals, *demo.closed_since]]


def _as_last_week(spec: DemoDeal, today: date) -> Deal:
    before = spec.last_week
    assert isinstance(before, LastWeek)
    changes: dict[str, Any] = before.model_dump(exclude_none=True)
    kept = changes.pop("contacts", None)
    deal = _deal(spec.model_copy(update=changes), today)
    if kept is not None:
        deal = replace(deal, contacts=deal.contacts[:kept])
    # The history a snapshot carries is what the CRM knew then.
    cutoff = _at(today - timedelta(days=7), 0)
    assert cutoff is not None
    now = _deal(spec, today)
    close = deal.close_date
    if before.close is None:
        later = [c for c in now.history if c.at and c.at > cutoff and c.field == CLOSE_DATE]
        close = later[0].old if later else now.close_date
    return replace(
        deal,
        close_date=close,
        history=tuple(c for c in now.history if c.at is None or c.at <= cutoff),
    )


def last_week_deals(today: date) -> list[Deal]:
    """The pipeline as it was recorded at last week's review."""
    demo = pipeline()
    every = [*demo.deals, *demo.closed_since, *demo.gone_since]
    return [_as_last_week(spec, today) for spec in every if spec.last_week != "new"]


def demo_config(base: Config | None = None) -> Config:
    """``base`` (default settings when None) with the demo's one team."""
    from leadprep.config import Config, Person, Team

    demo = pipeline()
    manager = Person(name=demo.manager.name, email=demo.manager.email)
    team = Team(manager=manager, reps=[r.email for r in demo.reps.values()])
    return (base or Config()).model_copy(update={"teams": [team]})
