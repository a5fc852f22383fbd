"""The canonical model every connector produces and everything downstream reads.

Dates are ``date`` or UTC-aware ``datetime``; money is ``Decimal``; no raw CRM dict survives past a
connector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# Dates outside this range are typing mistakes, and date arithmetic near year 1 or 9999
# overflows: every date read from a person or a CRM is checked against it.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)
MAX_AMOUNT = Decimal(10) ** 15  # a quadrillion in any currency: beyond it, a unit or typing error

# An owner an export names without an email gets an address in this reserved domain (RFC 2606:
# never deliverable), so every deal still has an owner key; nothing is ever mailed there.
NO_MAILBOX_DOMAIN = "owner.invalid"

CLOSE_DATE = "close_date"
AMOUNT = "amount"
STAGE = "stage"


@dataclass(frozen=True, slots=True)
class Rep:
    """A sales rep who owns deals."""

    id: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Contact:
    """A buyer-side person on a deal, with the role the CRM gives them (if any)."""

    name: str
    email: str | None = None
    role: str | None = None
    title: str | None = None

    @property
    def label(self) -> str:
        """``Ana Ruiz (Champion)``: the name with role, else title, in brackets."""
        extra = self.role or self.title
        return f"{self.name} ({extra})" if extra else self.name


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded change of a deal field; ``at`` is None when the source gives no timestamp."""

    field: str
    old: Any
    new: Any
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Deal:
    """An opportunity as leadprep sees it, whichever CRM it came from."""

    id: str
    name: str
    owner: Rep
    stage: str
    account: str | None = None
    amount: Decimal | None = None
    currency: str = "USD"
    close_date: date | None = None
    probability: float | None = None  # 0..1, from the deal or its stage
    stage_order: int | None = None  # position in the pipeline, when known
    forecast_category: str | None = None
    created_at: datetime | None = None
    stage_entered_at: datetime | None = None
    last_activity_at: datetime | None = None
    next_activity_at: datetime | None = None
    next_step: str | None = None
    next_step_updated_at: datetime | None = None
    is_closed: bool = False
    is_won: bool = False
    url: str | None = None
    manager_email: str | None = None
    contacts: tuple[Contact, ...] = ()
    history: tuple[Change, ...] = field(default=(), compare=False)

    @property
    def is_open(self) -> bool:
        return not self.is_closed

    def history_of(self, field_name: str) -> list[Change]:
        """CRM history of one field, oldest first; undated entries keep their given order first."""
        changes = [c for c in self.history if c.field == field_name]
        dated = sorted((c for c in changes if c.at is not None), key=_when)
        return [c for c in changes if c.at is None] + dated


def _when(change: Change) -> datetime:
    assert change.at is not None  # only dated changes are sorted
    return change.at


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _parse_d(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def deal_to_dict(deal: Deal) -> dict[str, Any]:
    """A JSON-safe dict of the deal, used for snapshots in the state store."""
    return {
        "id": deal.id,
        "name": deal.name,
        "owner": {"id": deal.owner.id, "name": deal.owner.name, "email": deal.owner.email},
        "stage": deal.stage,
        "account": deal.account,
        "amount": str(deal.amount) if deal.amount is not None else None,
        "currency": deal.currency,
        "close_date": _iso(deal.close_date),
        "probability": deal.probability,
        "stage_order": deal.stage_order,
        "forecast_category": deal.forecast_category,
        "created_at": _iso(deal.created_at),
        "stage_entered_at": _iso(deal.stage_entered_at),
        "last_activity_at": _iso(deal.last_activity_at),
        "next_activity_at": _iso(deal.next_activity_at),
        "next_step": deal.next_step,
        "next_step_updated_at": _iso(deal.next_step_updated_at),
        "is_closed": deal.is_closed,
        "is_won": deal.is_won,
        "url": deal.url,
        "manager_email": deal.manager_email,
        "contacts": [
            {"name": c.name, "email": c.email, "role": c.role, "title": c.title}
            for c in deal.contacts
        ],
        "history": [
            {"field": c.field, "old": _plain(c.old), "new": _plain(c.new), "at": _iso(c.at)}
            for c in deal.history
        ],
    }


_TYPED_HISTORY = {CLOSE_DATE: _parse_d, AMOUNT: lambda v: Decimal(v) if v is not None else None}


def deal_from_dict(data: dict[str, Any]) -> Deal:
    """Inverse of :func:`deal_to_dict`."""

    def typed(field_name: str, value: Any) -> Any:
        parse = _TYPED_HISTORY.get(field_name)
        return parse(value) if parse and value is not None else value

    return Deal(
        id=data["id"],
        name=data["name"],
        owner=Rep(**data["owner"]),
        stage=data["stage"],
        account=data.get("account"),
        amount=Decimal(data["amount"]) if data.get("amount") is not None else None,
        currency=data.get("currency") or "USD",
        close_date=_parse_d(data.get("close_date")),
        probability=data.get("probability"),
        stage_order=data.get("stage_order"),
        forecast_category=data.get("forecast_category"),
        created_at=_parse_dt(data.get("created_at")),
        stage_entered_at=_parse_dt(data.get("stage_entered_at")),
        last_activity_at=_parse_dt(data.get("last_activity_at")),
        next_activity_at=_parse_dt(data.get("next_activity_at")),
        next_step=data.get("next_step"),
        next_step_updated_at=_parse_dt(data.get("next_step_updated_at")),
        is_closed=bool(data.get("is_closed")),
        is_won=bool(data.get("is_won")),
        url=data.get("url"),
        manager_email=data.get("manager_email"),
        contacts=tuple(Contact(**c) for c in data.get("contacts", [])),
        history=tuple(
            Change(
                field=h["field"],
                old=typed(h["field"], h["old"]),
                new=typed(h["field"], h["new"]),
                at=_parse_dt(h.get("at")),
            )
            for h in data.get("history", [])
        ),
    )


# --- the coaching loop ---------------------------------------------------------------------------


def review_week(as_of: date) -> str:
    """The ISO week of a review (``2026-W49``): question variants and deliveries are per week."""
    year, week, _ = as_of.isocalendar()
    return f"{year}-W{week:02d}"


def has_mailbox(email: str | None) -> bool:
    """Whether mail to ``email`` can reach someone (not blank, not a name-only owner)."""
    return bool(email) and not str(email).endswith("@" + NO_MAILBOX_DOMAIN)


def name_from_email(email: str) -> str:
    """A readable name from an address, for people the data names by email only:
    ``mei-mei.johns@x`` → ``Mei-Mei Johns``."""
    local = email.split("@", 1)[0]
    words = local.replace("_", ".").split(".")
    return " ".join("-".join(p.capitalize() for p in w.split("-")) for w in words if w.strip("-"))


@dataclass(frozen=True, slots=True)
class NewCommitment:
    """A commitment about to be recorded: the rep's one thing from a 1:1, made at the review of
    ``made_on`` (``deal_id`` None: about a habit or the rep's way of working, not one deal)."""

    deal_id: str | None
    deal_name: str | None
    rep_email: str
    text: str
    due: date | None
    made_on: date
    success: str | None = None  # how the rep and the manager will know it worked
    kept_beside: int | None = None  # the commitment of the same review it was chosen to join
    recorded_by: str | None = None  # who recorded it, from where ("dana on laptop, command line")


FOLLOW_UP_STATUSES = ("kept", "partly", "missed")
KEPT_WEIGHT = {"kept": 1.0, "partly": 0.5, "missed": 0.0}  # "partly" counts half in the kept rate


@dataclass(frozen=True, slots=True)
class FollowUp:
    """One follow-up of a commitment, at the review where it was discussed."""

    status: str  # kept | partly | missed
    note: str | None
    review: date
    worked: bool | None = (
        None  # did it work (the success sign met), as the rep said; None: not said
    )
    recorded_by: str | None = None  # who recorded the follow-up, from where


@dataclass(frozen=True, slots=True, kw_only=True)
class Commitment(NewCommitment):
    """A recorded commitment (its id is stable for its lifetime), and how it went: ``status``
    and ``note`` are the latest follow-up's, ``followups`` all of them, oldest first."""

    id: int
    status: str  # open | kept | partly | missed
    note: str | None = None
    followed_up_on: date | None = None
    followups: tuple[FollowUp, ...] = ()

    @property
    def about(self) -> str:
        """What the commitment is about, for a sheet: the deal's name, or "no single deal"."""
        return self.deal_name or "no single deal"

    def overdue(self, on: date) -> bool:
        """Still open and past its due date on ``on``."""
        return self.status == "open" and self.due is not None and self.due < on

    def to_json(self, on: date) -> dict[str, Any]:
        """The commitment as ``commitments --format json`` and ``packets.json`` show it."""
        return {
            "id": self.id,
            "deal_id": self.deal_id,
            "deal_name": self.deal_name,
            "rep_email": self.rep_email,
            "text": self.text,
            "success": self.success,
            "kept_beside": self.kept_beside,
            "recorded_by": self.recorded_by,
            "due": _iso(self.due),
            "made_on": self.made_on.isoformat(),
            "status": self.status,
            "overdue": self.overdue(on),
            "note": self.note,
            "followed_up_on": _iso(self.followed_up_on),
            "followups": [
                {
                    "status": f.status,
                    "note": f.note,
                    "review": f.review.isoformat(),
                    "worked": f.worked,
                    "recorded_by": f.recorded_by,
                }
                for f in self.followups
            ],
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox message and what became of it."""

    id: int
    review_week: str
    recipient: str
    kind: str  # manager | rep
    content_hash: str
    eml_path: str
    status: str  # queued | sending | sent | failed | superseded
    attempts: int
    last_error: str | None
    sent_at: str | None


@dataclass(frozen=True, slots=True)
class RepWeek:
    """One rep's pipeline hygiene as one review saw it (what history and the rollup chart)."""

    rep_email: str
    rep_name: str
    manager_email: str | None
    manager_name: str | None
    open_deals: int
    flagged: int  # deals with at least one flag
    flags: int  # flags in all
    high_flags: int
    close_moved: int  # deals whose close date moved since the previous review
    # money movement since the previous review: currency -> Movement fields as decimal strings
    money: dict[str, dict[str, str]] = field(default_factory=dict)
    # what became of the previous review's focus deals by this review: outcome -> deals
    focus_next: dict[str, int] = field(default_factory=dict)
