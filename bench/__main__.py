"""``make bench``: time a full prep (signals, packets, rendering) on synthetic pipelines.

Writes bench/results.md. Numbers are measurements, never assertions.
"""

from __future__ import annotations

import platform
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from random import Random

from leadprep import __version__
from leadprep.config import Config
from leadprep.model import Change, Contact, Deal, Rep
from leadprep.packets import Memory, build_packets
from leadprep.render import Renderer

TODAY = date(2026, 11, 30)
STAGES = [
    ("Discovery", 0.1),
    ("Qualification", 0.2),
    ("Solution Demo", 0.4),
    ("Proposal", 0.6),
    ("Negotiation", 0.8),
]


def synthetic(reps: int, deals_per_rep: int, seed: int = 7) -> list[Deal]:
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


def measure(reps: int, per_rep: int) -> tuple[float, float, int]:
    deals = synthetic(reps, per_rep)
    config = Config()
    renderer = Renderer(config)
    bank = renderer.question_bank()
    start = time.perf_counter()
    packets = build_packets(deals, Memory(), config, bank, TODAY)
    built = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        renderer.write(packets, Path(out), ["html", "md", "json"], as_of=TODAY, source="bench")
    done = time.perf_counter()
    return built - start, done - built, len(deals)


def main() -> None:
    rows = []
    for reps, per_rep in [(5, 40), (50, 100), (200, 50)]:
        build, render, n = measure(reps, per_rep)
        rows.append(f"| {reps}×{per_rep} | {n} | {build * 1000:.0f} ms | {render * 1000:.0f} ms |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = "\n".join(
        [
            "# leadprep benchmarks",
            "",
            f"leadprep {__version__}, Python {platform.python_version()}, {platform.machine()}, "
            f"{platform.system()} {platform.release()}",
            "",
            "| reps×deals | deals | signals + packets | render html+md+json |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            f"Peak RSS of the whole run: {peak:.0f} MB.",
            "",
        ]
    )
    print(report)
    Path(__file__).with_name("results.md").write_text(report, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
