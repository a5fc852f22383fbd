"""Agree and Deliver: recording the commitment a rep chose, following it up, and the rep's record.

The library side of ``leadprep commit``, ``followup`` and ``commitments``; the CLI only parses
arguments and prints.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from leadprep.config import Config
from leadprep.errors import UsageError
from leadprep.model import (
    EARLIEST_DATE,
    FOLLOW_UP_STATUSES,
    KEPT_WEIGHT,
    LATEST_DATE,
    Commitment,
    NewCommitment,
    name_from_email,
)
from leadprep.sanitize import UnsafeValue, clean_line, clean_text, email_address, has_visible_text
from leadprep.store import Store
from leadprep.textfiles import decode_text, sniff_delimiter

_HEDGES = re.compile(
    r"\b(try|trying|maybe|hopefully|possibly|perhaps|think about|look into|touch base|check in|"
    r"circle back|follow up|keep an eye|work on|see if|aim to|want to)\b",
    re.IGNORECASE,
)
_ACTIONS = re.compile(
    r"\b(send|sent|call|meet|book|schedule|ask|introduce|intro|email|present|demo|agree|get|confirm|"
    r"sign|review|map|share|walk|run|set up|deliver|draft|prepare|invite|propose|request|secure|"
    r"bring|align|close|negotiate|quote|price|visit|write|update|reach|phone)\b",
    re.IGNORECASE,
)
_WHEN = re.compile(
    r"\b(mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(day)?\b|\b(today|tonight|tomorrow|eod|eow)\b|"
    r"\b(this|next) week\b|\bend of (the )?(day|week|month)\b|\d{4}-\d{2}-\d{2}|\b\d{1,2}[/.]\d{1,2}\b|"
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2}\b",
    re.IGNORECASE,
)
_ROLES = re.compile(
    r"\b(cfo|ceo|cto|cio|coo|cro|ciso|vp|svp|evp|director|head of|procurement|purchasing|legal|"
    r"finance|security|champion|buyer|sponsor|decision maker|signer|signatory|board|founder|owner|"
    r"manager|admin|team|committee|it)\b|@",
    re.IGNORECASE,
)
_NOT_NAMES = re.compile(
    r"^(I|I'll|I'm|We|We'll|The|A|An|And|Or|By|On|To|For|With|Monday|Tuesday|Wednesday|Thursday|"
    r"Friday|Saturday|Sunday|January|February|March|April|May|June|July|August|September|October|"
    r"November|December)$"
)


def vagueness_hint(text: str, due: date | None = None) -> str | None:
    """A one-line hint when a commitment lacks a person or role, a concrete action, or a day."""
    missing = []
    words = text.split()
    names = [w for w in words[1:] if w[:1].isupper() and not _NOT_NAMES.match(w.strip(".,;:!?"))]
    if not (_ROLES.search(text) or names):
        missing.append("who (a person or role)")
    if _HEDGES.search(text) or not _ACTIONS.search(text):
        missing.append("what (one concrete action, not 'try' or 'follow up')")
    if due is None and not _WHEN.search(text):
        missing.append("by when (a day, or a due date)")
    if not missing:
        return None
    return "Make it specific — who, what, by when. Missing: " + "; ".join(missing) + "."


def parse_due(value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        due = date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"Due date {value!r} is not a date in YYYY-MM-DD form.") from None
    if not EARLIEST_DATE <= due <= LATEST_DATE:
        raise UsageError(f"Due date {value} is outside {EARLIEST_DATE.year}–{LATEST_DATE.year}.")
    return due


@dataclass(frozen=True)
class Prepared:
    """A validated commitment, ready to record, with the warnings and hint to show."""

    commitment: NewCommitment
    warnings: tuple[str, ...] = ()
    hint: str | None = None


def prepare(
    store: Store,
    deal_id: str | None,
    text: str,
    due: date | None,
    rep: str | None,
    as_of: date,
    *,
    demo: bool = False,
    success: str | None = None,
) -> Prepared:
    """Validate one commitment against the state store; raises UsageError, writes nothing.

    With no ``deal_id`` the commitment is about the rep's way of working, and ``rep`` is
    required."""
    deal_id = (clean_line(deal_id) or "") if deal_id is not None else ""
    text = " ".join((clean_line(text) or "").split())
    success = " ".join((clean_line(success) or "").split()) or None
    if not has_visible_text(success):
        success = None
    if not has_visible_text(text):
        raise UsageError(
            "The commitment text is empty: write what the rep will do, with whom, by when."
        )
    warnings = []
    if due is not None and due < as_of:
        warnings.append(
            f"due date {due.isoformat()} is before the review date {as_of.isoformat()}; recorded anyway"
        )
    hint = vagueness_hint(text, due)
    if not deal_id:
        try:
            rep_email = email_address(rep)
        except UnsafeValue:
            rep_email = None
        if rep_email is None:
            raise UsageError(
                "A commitment that names no deal needs the rep: {rep}.", inputs={"rep": "the rep"}
            )
        new = NewCommitment(None, None, rep_email, text, due, as_of, success)
        return Prepared(new, tuple(warnings), hint)
    found = store.runs.latest_snapshot_of(deal_id, as_of)
    if found is None:
        extra = (
            " The demo keeps no state between runs; commitments are recorded for your own pipeline."
            if demo
            else " Run `leadprep prep` first; the id is the one printed on the sheet (e.g. in the commit line)."
        )
        raise UsageError(f"Unknown deal id {deal_id!r}: no review on record has it.{extra}")
    _, deal = found
    rep_email = (rep or deal.owner.email).strip().lower()
    if not rep_email or "@" not in rep_email:
        raise UsageError(
            f"Deal {deal_id} has no rep email on record; give the rep: {{rep}}.",
            inputs={"rep": "the rep"},
        )
    new = NewCommitment(deal_id, deal.name, rep_email, text, due, as_of, success)
    return Prepared(new, tuple(warnings), hint)


def record(store: Store, items: list[Prepared], recorded_by: str | None = None) -> list[int]:
    """Record validated commitments in one transaction, with who recorded them and from where;
    returns their ids."""
    return store.commitments.add(
        [replace(item.commitment, recorded_by=recorded_by) for item in items]
    )


def prepare_file(store: Store, path: Path, as_of: date, *, demo: bool = False) -> list[Prepared]:
    """Validate every row of a commitments CSV (deal_id, text, due, rep); all problems at once."""
    try:
        text = decode_text(path, path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist.") from None
    if not text.strip():
        raise UsageError(f"{path} is empty.")
    reader = csv.DictReader(
        io.StringIO(text, newline=""), delimiter=sniff_delimiter(text.splitlines()[0])
    )
    reader.fieldnames = [h.strip().lower().replace(" ", "_") for h in reader.fieldnames or []]
    missing = [c for c in ("text",) if c not in reader.fieldnames]
    if "deal_id" not in reader.fieldnames and "rep" not in reader.fieldnames:
        missing.append("deal_id or rep")
    if missing:
        raise UsageError(
            f"{path}: the header lacks {', '.join(missing)} "
            "(columns: deal_id, text, due, rep, success; a row without a deal needs its rep)."
        )
    items, problems = [], []
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any((v or "").strip() for v in row.values()):
            continue
        try:
            due = parse_due(row.get("due"))
            items.append(
                prepare(
                    store,
                    row.get("deal_id") or None,
                    row.get("text") or "",
                    due,
                    row.get("rep") or None,
                    as_of,
                    demo=demo,
                    success=row.get("success") or None,
                )
            )
        except UsageError as exc:
            problems.append(f"line {start}: {exc.message}")
    if problems:
        raise UsageError(
            f"{path}: {len(problems)} row(s) cannot be recorded; nothing was written.\n  "
            + "\n  ".join(problems)
        )
    if not items:
        raise UsageError(f"{path} has no commitment rows.")
    return items


def follow_up(
    store: Store,
    commitment_id: int,
    *,
    status: str,
    note: str | None,
    as_of: date,
    worked: bool | None = None,
    recorded_by: str | None = None,
) -> tuple[Commitment, str | None]:
    """Record how a commitment went (kept, partly or missed; and, for one done, whether it
    worked, as the rep said) at the review of ``as_of``; returns it and a warning when it had
    been followed up before (the earlier follow-up is kept in its history). A follow-up dated
    before the commitment was made is refused."""
    if status not in FOLLOW_UP_STATUSES:
        raise UsageError(f"A follow-up is one of {', '.join(FOLLOW_UP_STATUSES)}.")
    if worked is not None and status == "missed":
        raise UsageError(
            "A missed commitment cannot have worked or not: say {worked} only for one kept (or "
            "partly kept).",
            inputs={"worked": "whether it worked"},
        )
    # SQLite ids are 64-bit: a longer number cannot be one, and SQLite would refuse to look.
    current = store.commitments.get(commitment_id) if 0 < commitment_id < 2**63 else None
    if current is None:
        raise UsageError(
            f"Unknown commitment id {commitment_id}; `leadprep commitments --all` lists them."
        )
    if as_of < current.made_on:
        raise UsageError(
            f"Commitment #{commitment_id} was made on {current.made_on.isoformat()}; a follow-up "
            f"dated {as_of.isoformat()} comes before it.",
            hint="Give the date of the review where it was discussed: {as_of}.",
            inputs={"as_of": "its date"},
        )
    warning = None
    if current.status != "open":
        warning = (
            f"commitment #{commitment_id} was already marked {current.status} on "
            f"{current.followed_up_on}; now {status} (both are kept in its history)"
        )
    note = clean_text(note) if note else None
    done = store.commitments.follow_up(
        commitment_id, status=status, note=note, on=as_of, worked=worked, recorded_by=recorded_by
    )
    return done, warning


@dataclass(frozen=True)
class CoachingRecord:
    """How a rep's commitments have gone: kept rate over the last 4 and 12 reviews, and the streak."""

    kept_4: float  # a commitment kept partly counts half
    decided_4: int
    kept_12: float
    decided_12: int
    streak: int  # consecutive most recent follow-ups that were kept
    not_followed_up: int  # open commitments that already went through a review without follow-up

    @staticmethod
    def rate(kept: float, decided: int) -> str:
        if not decided:
            return "none followed up yet"
        shown = f"{kept:g}"
        return f"{shown} of {decided} ({round(100 * kept / decided)}%)"

    @property
    def summary(self) -> str:
        if not self.decided_12:
            return "no commitment followed up yet"
        text = f"kept {self.rate(self.kept_4, self.decided_4)} over the last 4 reviews"
        if self.decided_12 != self.decided_4:
            text += f", {self.rate(self.kept_12, self.decided_12)} over 12"
        if self.streak:
            text += f"; {self.streak} kept in a row"
        return text


def coaching_record(
    commitments: list[Commitment], reviews: list[date], as_of: date
) -> CoachingRecord:
    """The record from a rep's commitments; ``reviews`` are earlier review dates, newest first."""
    earlier = [r for r in reviews if r < as_of]

    def window(n: int) -> tuple[float, int]:
        # The rollup's rule (measures: kept_rate): the latest follow-up of each commitment, when
        # it was recorded at one of the last n reviews, this one included.
        dates = {as_of, *earlier[: n - 1]}
        decided = [
            c.followups[-1]
            for c in commitments
            if c.followups
            and c.followups[-1].review in dates
            and c.made_on < c.followups[-1].review
        ]
        return sum(KEPT_WEIGHT[f.status] for f in decided), len(decided)

    followed = sorted(
        (c for c in commitments if c.status != "open"),
        key=lambda c: (c.followed_up_on or c.made_on, c.made_on, c.id),
    )
    streak = 0
    for c in reversed(followed):
        if c.status != "kept":
            break
        streak += 1
    last_review = earlier[0] if earlier else None
    stale = sum(
        1
        for c in commitments
        if c.status == "open" and last_review is not None and c.made_on < last_review
    )
    (k4, d4), (k12, d12) = window(4), window(12)
    return CoachingRecord(k4, d4, k12, d12, streak, stale)


def reviews_missed(commitment: Commitment, reviews: list[date], as_of: date) -> int:
    """How many reviews since the commitment was made went by without a follow-up."""
    return sum(1 for r in reviews if commitment.made_on < r < as_of)


def rep_names(store: Store, config: Config, emails: Iterable[str]) -> dict[str, str]:
    """Rep email -> a name to show: the teams' name, else the CRM's (latest snapshot), else one
    made from the address."""
    emails = set(emails)
    known = {**store.runs.owner_names(emails), **config.rep_names()}
    return {e: known.get(e) or name_from_email(e) for e in emails}
