"""What changed since the last review: each deal against its snapshot, and deals that left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from leadprep.formatting import money, short_date
from leadprep.model import Contact, Deal


@dataclass(frozen=True, slots=True)
class DealChange:
    """One difference between last review and now; ``text`` is how the sheet says it."""

    field: str
    old: Any
    new: Any
    text: str

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return str(value) if value is not None and not isinstance(value, str | int) else value

        return {
            "field": self.field,
            "old": plain(self.old),
            "new": plain(self.new),
            "text": self.text,
        }


@dataclass(frozen=True, slots=True)
class Departure:
    """A deal that was open at the last review and is not open in this rep's pipeline now."""

    deal: Deal  # as it was last review
    outcome: str  # won | lost | reassigned | gone
    text: str


def _contact_key(contact: Contact) -> str:
    return (contact.email or contact.name).strip().lower()


def diff_deal(before: Deal, now: Deal, today: date) -> list[DealChange]:
    """Changes of the fields a coach cares about, in a fixed order."""
    changes: list[DealChange] = []
    if before.owner.email != now.owner.email:
        changes.append(
            DealChange(
                "owner", before.owner.name, now.owner.name, f"reassigned from {before.owner.name}"
            )
        )
    if before.close_date != now.close_date:
        old, new = before.close_date, now.close_date
        if old and new:
            delta = (new - old).days
            verb = "pushed" if delta > 0 else "pulled in"
            text = (
                f"close date {verb} {short_date(old, today)} → {short_date(new, today)} "
                f"({delta:+d} days)"
            )
        elif new is None:
            text = f"close date removed (was {short_date(old, today)})"
        else:
            text = f"close date set to {short_date(new, today)}"
        changes.append(DealChange("close_date", old, new, text))
    if before.amount != now.amount:
        was, is_now = before.amount, now.amount
        if was is not None and is_now is not None:
            direction = "up" if is_now > was else "down"
            text = f"amount {direction}: {money(was, now.currency)} → {money(is_now, now.currency)}"
        else:
            text = f"amount {money(was, now.currency)} → {money(is_now, now.currency)}"
        changes.append(DealChange("amount", was, is_now, text))
    if before.stage != now.stage:
        direction = "changed"
        if before.stage_order is not None and now.stage_order is not None:
            direction = "moved forward" if now.stage_order > before.stage_order else "moved back"
        changes.append(
            DealChange(
                "stage", before.stage, now.stage, f"stage {direction}: {before.stage} → {now.stage}"
            )
        )
    if (before.forecast_category or "") != (now.forecast_category or ""):
        changes.append(
            DealChange(
                "forecast_category",
                before.forecast_category,
                now.forecast_category,
                f"forecast category {before.forecast_category or 'none'} → {now.forecast_category or 'none'}",
            )
        )
    if (before.next_step or "") != (now.next_step or ""):
        if not now.next_step:
            text = "next step cleared"
        elif not before.next_step:
            text = f"next step added: “{now.next_step}”"
        else:
            text = f"next step changed to “{now.next_step}”"
        changes.append(DealChange("next_step", before.next_step, now.next_step, text))
    old_contacts = {_contact_key(c): c for c in before.contacts}
    new_contacts = {_contact_key(c): c for c in now.contacts}
    added = [c.label for k, c in new_contacts.items() if k not in old_contacts]
    removed = [c.label for k, c in old_contacts.items() if k not in new_contacts]
    if added:
        changes.append(
            DealChange("contacts_added", None, added, "contacts added: " + ", ".join(added))
        )
    if removed:
        changes.append(
            DealChange("contacts_removed", removed, None, "contacts removed: " + ", ".join(removed))
        )
    return changes


def departures(
    previous: dict[str, Deal], current: dict[str, Deal], rep_email: str
) -> list[Departure]:
    """Deals this rep had open last review that are not open in the rep's pipeline now."""
    out: list[Departure] = []
    for deal_id, before in previous.items():
        if before.owner.email != rep_email or before.is_closed:
            continue
        now = current.get(deal_id)
        if now is not None and now.is_open and now.owner.email == rep_email:
            continue
        if now is None:
            outcome, text = "gone", "no longer in the CRM export (deleted, merged or filtered out)"
        elif now.owner.email != rep_email:
            outcome, text = "reassigned", f"reassigned to {now.owner.name}"
        elif now.is_won:
            outcome, text = "won", f"closed won ({money(now.amount, now.currency)})"
        else:  # closed and not won: CRMs know no third way to close
            outcome, text = "lost", f"closed lost ({now.stage})"
        out.append(Departure(before, outcome, text))
    return sorted(out, key=lambda d: d.deal.name.lower())
