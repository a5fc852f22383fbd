"""A commitment as a task in the CRM, and what a connector that can write tasks provides.

The task says the commitment (subject), how both will know it worked, the review, the manager and
a key (body), and is due on the commitment's due date, else the next review. The key, ``LP`` and
twelve hex digits made from the commitment, is in the subject too: it is how a task whose
creation was answered by a lost reply is found again (HubSpot has no idempotency key; Salesforce
cannot search a description), so it is written exactly once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from pydantic import Field

from leadprep.errors import CRMUnavailableError
from leadprep.model import Commitment
from leadprep.settings import Section

SUBJECT_MAX = 255  # Salesforce's Subject; HubSpot's is longer
CADENCE = timedelta(days=7)  # a commitment with no due date is due by the next review


@dataclass(frozen=True)
class TaskSpec:
    """A task as leadprep wants it in the CRM now."""

    commitment_id: int
    key: str
    subject: str
    body: str
    due: date
    rep_email: str
    deal_id: str | None  # None: about a habit, on no deal
    completed: bool

    @property
    def digest(self) -> str:
        """What was written, to tell whether the task needs updating."""
        text = "\x1f".join(
            [self.subject, self.body, self.due.isoformat(), self.rep_email, self.deal_id or "",
             str(self.completed)]
        )  # fmt: skip
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def task_key(commitment: Commitment) -> str:
    """The task's key: the same for a commitment every time, different for any other."""
    made = f"{commitment.id}|{commitment.made_on}|{commitment.rep_email}|{commitment.text}"
    return "LP" + hashlib.sha256(made.encode("utf-8")).hexdigest()[:12].upper()


def task_for(commitment: Commitment, manager: str | None) -> TaskSpec:
    """The task a commitment (and its latest follow-up) should be in the CRM."""
    key = task_key(commitment)
    tail = f" [{key}]"
    text = " ".join(commitment.text.split())
    if len(text) + len(tail) > SUBJECT_MAX:
        text = text[: SUBJECT_MAX - len(tail) - 1].rstrip() + "…"
    lines = [
        f"Committed in the pipeline review of {commitment.made_on.isoformat()}"
        + (f" with {manager}." if manager else "."),
    ]
    if commitment.success:
        lines.append(f"How we will both know it worked: {commitment.success}")
    done = commitment.status != "open"
    if done:
        outcome = {"kept": "Kept", "partly": "Partly kept", "missed": "Missed"}[commitment.status]
        last = commitment.followups[-1] if commitment.followups else None
        said = last.worked if last else None
        worked = "" if said is None else (" It worked." if said else " It did not work.")
        when = commitment.followed_up_on.isoformat() if commitment.followed_up_on else "later"
        lines.append(f"Followed up on {when}: {outcome}.{worked}")
        if commitment.note:
            lines.append(f"Note: {commitment.note}")
    lines.append(f"leadprep key: {key}")
    return TaskSpec(
        commitment_id=commitment.id,
        key=key,
        subject=text + tail,
        body="\n".join(lines),
        due=commitment.due or commitment.made_on + CADENCE,
        rep_email=commitment.rep_email,
        deal_id=commitment.deal_id,
        completed=done,
    )


@dataclass(frozen=True)
class Written:
    remote_id: str


@dataclass(frozen=True)
class Refused:
    """The CRM refused this task as it is (the reason is its own words, cut short)."""

    reason: str


class LostAnswer(CRMUnavailableError):
    """A write went out and no answer came back: it may have been done. Look before redoing."""


class WriteBackSettings(Section):
    """``crm.<kind>.write_back``: what leadprep writes to the CRM (nothing unless asked)."""

    tasks: bool = False  # each commitment as a task on its deal, closed with its outcome
    # seconds the CRM's search may take to show a task just created: a create whose answer was
    # lost is looked for by its key, and created again only once this has passed
    search_settle: float = Field(60.0, ge=0)


class TaskWriter(Protocol):
    """What a connector that can write tasks provides (``capabilities={"write_tasks"}``)."""

    crm: str
    batch_size: int

    def find(self, keys: list[str]) -> dict[str, str]:
        """Key -> task id, for the tasks the CRM has with these keys (its search may lag)."""
        ...

    def create(self, specs: list[TaskSpec]) -> dict[str, Written | Refused]:
        """Create tasks (a batch of at most ``batch_size``), by key. Raises :class:`LostAnswer`
        when the answer to the batch is lost, and CRM errors when nothing was done."""
        ...

    def update(self, items: list[tuple[str, TaskSpec]]) -> dict[str, Written | Refused]:
        """Bring tasks (by id) to these specs; by key. Safe to repeat."""
        ...

    def delete(self, remote_ids: list[str]) -> None:
        """Delete (archive) tasks; an id already gone is no error."""
        ...
