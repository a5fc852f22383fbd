"""State-file growth over weekly runs, with and without pruning (``python -m bench.state``).

Records the same synthetic pipeline once a week (plus a same-day rerun each week, as a manager
rerunning ``prep`` would), prunes to ``state.keep_reviews`` after every run as ``prep`` does, and
measures the file. Results go to bench/state-results.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench.synthetic import synthetic
from leadprep.store import Store

HERE = Path(__file__).parent
FIRST_REVIEW = date(2026, 1, 5)


def file_size(store: Store, path: Path) -> int:
    store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def grow(deals: list, weeks: int, keep: int | None) -> dict:
    """Sizes after each week, the time per run, and the size after VACUUM at the end."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.db"
        sizes, seconds = [], []
        with Store.open(path) as store:
            for week in range(weeks):
                as_of = FIRST_REVIEW + timedelta(days=7 * week)
                start = time.perf_counter()
                for _ in range(2):  # the review, and a same-day rerun
                    store.runs.record(as_of, "bench", deals)
                    if keep is not None:
                        store.runs.prune(keep)
                seconds.append((time.perf_counter() - start) / 2)
                sizes.append(file_size(store, path))
            store.vacuum()
            vacuumed = file_size(store, path)
    return {"sizes": sizes, "seconds": seconds, "vacuumed": vacuumed}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.state")
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--per-rep", type=int, default=250)
    parser.add_argument("--weeks", type=int, default=30)
    args = parser.parse_args()
    deals = synthetic(args.reps, args.per_rep)
    mb = 1_000_000
    rows = []
    for keep in (None, 26, 4):
        label = "never pruned" if keep is None else f"keep_reviews: {keep}"
        print(f"{label} …", flush=True)
        result = grow(deals, args.weeks, keep)
        sizes = result["sizes"]
        rows.append(
            f"| {label} | {sizes[0] / mb:,.0f} | {sizes[5] / mb:,.0f} | {sizes[-1] / mb:,.0f} | "
            f"{result['vacuumed'] / mb:,.0f} | {sum(result['seconds']) / len(result['seconds']):.2f} |"
        )
    report = "\n".join(
        [
            "# State-file growth",
            "",
            f"{len(deals):,} open deals recorded once a week for {args.weeks} weeks, plus a same-day "
            "rerun each week (2 runs a week); pruned after every run as `prep` does. Sizes in MB after "
            "a WAL checkpoint.",
            "",
            f"| retention | after week 1 | after week 6 | after week {args.weeks} | after VACUUM | s per run |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    print(report)
    (HERE / "state-results.md").write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
