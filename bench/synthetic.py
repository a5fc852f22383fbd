"""Synthetic canonical deals for rendering benchmarks (no CRM involved)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from random import Random

from leadprep.model import Change, Contact, Deal, Rep

TODAY = date(2026, 11, 30)
STAGES = [
    ("Discovery", 0.1),
    ("Qualification", 0.2),
    ("Solution Demo", 0.4),
    ("Proposal", 0.6),
    ("Negotiation", 0.8),
]


def synthetic(reps: int, deals_per_rep: int, seed: int = 7) -> list[Deal]:
    """``reps`` × ``deals_per_rep`` open deals with contacts and close-date history, seeded."""
    rng = Random(seed)
    out = []
    for r in range(reps):
        rep = Rep(f"u{r}", f"Rep {r}", f"rep{r}@example.com")
        for n in range(deals_per_rep):
            stage, prob = rng.choice(STAGES)
            close = TODAY + timedelta(days=rng.randint(-20, 120))
            pushes = tuple(
                Change(
                    "close_date",
                    close - timedelta(days=10 * (k + 1)),
                    close - timedelta(days=10 * k),
                    None,
                )
                for k in range(rng.choice([0, 0, 0, 1, 2, 3]))
            )
            out.append(
                Deal(
                    id=f"D-{r}-{n}",
                    name=f"Deal {r}-{n}",
                    owner=rep,
                    stage=stage,
                    account=f"Account {n}",
                    amount=Decimal(rng.randint(5, 300) * 1000),
                    close_date=close,
                    probability=prob,
                    stage_order=STAGES.index((stage, prob)),
                    forecast_category=rng.choice(["Pipeline", "Best Case", "Commit"]),
                    next_step=rng.choice([None, "Call"]),
                    contacts=tuple(
                        Contact(f"C{i}", role=rng.choice(["Champion", "User", "Economic Buyer"]))
                        for i in range(rng.randint(0, 4))
                    ),
                    history=pushes,
                )
            )
    return out
