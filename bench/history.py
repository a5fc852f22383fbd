"""The rollup and history at 200 reps × 52 weekly reviews (``python -m bench.history``).

Fills a state file the way a year of ``prep``, ``commit`` and ``followup`` would (one rep week
per rep per review, a commitment per rep per review, followed up at the next), then times the
reads behind ``rollup.html`` and ``leadprep history`` and renders the rollup page, measuring
peak memory with tracemalloc. The numbers are written to the "Rollup" section of
bench/results.md. Measurements, never assertions.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

from leadprep.config import Config
from leadprep.history import rep_series, team_series
from leadprep.model import NewCommitment, RepWeek
from leadprep.render import Renderer
from leadprep.store import Store

HERE = Path(__file__).parent
FIRST = date(2025, 12, 1)
SECTION = "## Rollup"


def fill(store: Store, reps: int, weeks: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    emails = [f"rep{n:03d}@example.com" for n in range(reps)]
    for week in range(weeks):
        as_of = FIRST + timedelta(weeks=week)
        rows = [
            RepWeek(
                email,
                f"Rep {n:03d}",
                f"manager{n // 8:02d}@example.com",
                f"Manager {n // 8:02d}",
                open_deals=(deals := rng.randint(5, 40)),
                flagged=(flagged := rng.randint(0, deals)),
                flags=flagged + rng.randint(0, flagged),
                high_flags=rng.randint(0, flagged),
                close_moved=rng.randint(0, 3),
                money={
                    "USD": {
                        "won": f"{rng.randint(0, 90) * 1000}.00",
                        "pushed_out": f"{rng.randint(0, 60) * 1000}.00",
                        "cut": f"{rng.randint(0, 20) * 1000}.00",
                        "new": f"{rng.randint(0, 80) * 1000}.00",
                        "commit_at_risk": f"{rng.randint(0, 200) * 1000}.00",
                    }
                },
            )
            for n, email in enumerate(emails)
        ]
        store.runs.record(as_of, "bench", [], rep_weeks=rows)
        ids = store.commitments.add(
            [NewCommitment(None, None, e, "Ask for the CFO by Friday", None, as_of) for e in emails]
        )
        if week:  # last week's commitments are followed up at this review
            for commitment_id in ids:
                status = rng.choice(["kept", "kept", "partly", "missed"])
                store.commitments.follow_up(
                    commitment_id - len(emails), status=status, note=None, on=as_of
                )


def measure(reps: int, weeks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.db"
        with Store.open(path) as store:
            start = time.perf_counter()
            fill(store, reps, weeks)
            filled = time.perf_counter() - start
            last = FIRST + timedelta(weeks=weeks - 1)
            renderer = Renderer(Config(targets={"kept_rate": "70%", "flags_per_deal": 1}))

            def rollup() -> tuple[float, str]:
                start = time.perf_counter()
                teams = team_series(rep_series(store, last, 12), {})
                read = time.perf_counter() - start
                return read, renderer.rollup_html(teams, last, "bench")

            start = time.perf_counter()
            read, html = rollup()
            total = time.perf_counter() - start
            # Memory in a pass of its own: tracing allocations slows the code it measures.
            tracemalloc.start()
            rollup()
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            start = time.perf_counter()
            year = rep_series(store, last, weeks)
            history = time.perf_counter() - start
        size = path.stat().st_size
    return {
        "fill": filled,
        "read": read,
        "rollup": total,
        "history": history,
        "peak_mb": peak / 1e6,
        "html_kb": len(html) / 1e3,
        "file_mb": size / 1e6,
        "rows": len(year),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--weeks", type=int, default=52)
    args = parser.parse_args()
    m = measure(args.reps, args.weeks)
    text = (
        f"{SECTION}\n\n"
        f"{args.reps} reps in {args.reps // 8} teams × {args.weeks} weekly reviews "
        f"({args.reps * args.weeks:,} rep weeks, as many commitments, each followed up a week "
        f"later; state file {m['file_mb']:.1f} MB, filled in {m['fill']:.1f} s).\n\n"
        "| what | time (s) |\n|---|---:|\n"
        f"| the two reads behind rollup.html (last 12 reviews) | {m['read']:.2f} |\n"
        f"| reads + rendering rollup.html ({m['html_kb']:.0f} kB) | {m['rollup']:.2f} |\n"
        f"| `leadprep history --weeks {args.weeks}`'s reads ({m['rows']} reps) | {m['history']:.2f} |\n\n"
        f"Peak memory of the reads and the rendering (tracemalloc): {m['peak_mb']:.1f} MB.\n"
    )
    print(text)
    results = HERE / "results.md"
    current = results.read_text(encoding="utf-8") if results.exists() else ""
    kept = current.split(f"\n{SECTION}\n", 1)[0].rstrip("\n")
    results.write_text(f"{kept}\n\n{text}", encoding="utf-8")


if __name__ == "__main__":
    main()
