"""The conversation measures (issue #25) over three weekly reviews of a small org leadprep's
authors did not shape the sheets for: deals at every stage, none to several contacts with and
without roles, missing close dates, dates pushed and amounts cut from week to week, and a
commitment left without a follow-up for a review.

    python -m bench.conversation        # prints the measures of the three reviews

``measure`` reads a run's ``packets.json`` and PDFs only, so it can count any release's sheets.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any

WEEKS = (date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30))
STAGES = (
    ("Discovery", 0.1),
    ("Qualification", 0.2),
    ("Solution Demo", 0.4),
    ("Proposal", 0.6),
    ("Negotiation", 0.8),
)
REPS = (
    ("Ines Duarte", "ines"),
    ("Kofi Mensah", "kofi"),
    ("Mai Tran", "mai"),
    ("Lars Berg", "lars"),
)
BUYERS = ("Halden Foods", "Kestrel Air", "Norrland Energi", "Osprey Health", "Pallas Retail")
BUYERS += ("Quill Media", "Rook Logistics", "Sable Bank", "Tern Labs", "Umber Mining")
PEOPLE = ("Ada Lind", "Bruno Costa", "Chen Wei", "Dana Ortiz", "Emeka Obi", "Farah Aziz")
ROLES = ("Champion", "Economic Buyer", "Technical Evaluator", "", "")

# What the framework asks for, and what the sheets must not say (lower case).
CORE = {
    "listen: walk me through": r"walk me through|talk me through",
    "explore: alternative / do nothing": r"alternative|do nothing|doing nothing",
    "explore: what would need to be true": r"would need to be true|what has to happen",
    "agree: the one thing": r"one thing|one change",
}
SOLE = r"is carrying this deal|if \w[\w ]* left .* tomorrow"
DISCOVERY = r"what problem (is|are) .* (trying to )?solv|why now"
CLOSE_DATE = r"close date|by (jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec) \d"


def rows(week: int, seed: int = 5) -> list[dict[str, str]]:
    """The org's deals as its CRM exports them in review week ``week`` (0, 1, 2)."""
    rng = Random(seed)
    out = []
    for r, (rep, handle) in enumerate(REPS):
        for n in range(10):
            stage, _ = STAGES[(n + r) % len(STAGES)]
            buyer = BUYERS[(n * 3 + r) % len(BUYERS)]
            contacts = [
                f"{PEOPLE[(n + k) % len(PEOPLE)]}"
                + (
                    f" [{ROLES[(n + k + r) % len(ROLES)]}]"
                    if ROLES[(n + k + r) % len(ROLES)]
                    else ""
                )
                for k in range((n + r) % 4)
            ]
            dated = (n + r) % 4 != 3
            close = WEEKS[0] + timedelta(days=10 + 9 * n)
            if dated and n % 3 == 0:
                close += timedelta(days=14 * week)  # pushed every week
            amount = 20000 + 7000 * n
            if n % 5 == 1 and week >= 1:
                amount = int(amount * 0.7)  # cut
            out.append(
                {
                    "deal_id": f"{handle.upper()}-{n}",
                    "deal_name": f"{buyer} – {('pilot', 'rollout', 'renewal', 'expansion')[n % 4]}",
                    "account": buyer,
                    "owner_email": f"{handle}@example.com",
                    "owner_name": rep,
                    "stage": stage,
                    "amount": str(amount),
                    "close_date": close.isoformat() if dated else "",
                    "forecast_category": ("Pipeline", "Best Case", "Commit")[n % 3],
                    "created_at": (WEEKS[0] - timedelta(days=40 + 3 * n)).isoformat(),
                    "stage_entered_at": (WEEKS[0] - timedelta(days=5 + 4 * n)).isoformat(),
                    "last_activity_at": (
                        WEEKS[week] - timedelta(days=rng.randint(1, 30))
                    ).isoformat(),
                    "next_step": "" if n % 4 == 2 else "Call with the buyer",
                    "contacts": "; ".join(contacts),
                }
            )
    return out


CONFIG = (
    """crm:
  kind: file
  file:
    path: deals.csv
    stages:
"""
    + "".join(f"      - {{name: {s}, probability: {p}}}\n" for s, p in STAGES)
    + """state: {path: state.db}
teams:
  - manager: {name: Rhea Kaur, email: rhea@example.com}
    reps: ["""
    + ", ".join(f'"{n} <{h}@example.com>"' for n, h in REPS)
    + "]\n"
)


def run_weeks(
    folder: Path, run: Callable[..., Any], formats: str = "json,html,pdf", paper: str = "letter"
) -> None:
    """Three weekly reviews with commitments in between: every rep commits at the first; at the
    second, all but Lars are followed up (Lars's waits a review) and all commit again."""
    config_text = CONFIG + f"output: {{paper: {paper}}}\n"
    (folder / "leadprep.yaml").write_text(config_text, encoding="utf-8")
    config = folder / "leadprep.yaml"
    for week, day in enumerate(WEEKS):
        with (folder / "deals.csv").open("w", newline="", encoding="utf-8") as handle:
            data = rows(week)
            writer = csv.DictWriter(handle, list(data[0]))
            writer.writeheader()
            writer.writerows(data)
        run("prep", "-c", config, "-o", folder / day.isoformat(), "-f", formats, "--as-of", day)
        packets = json.loads((folder / day.isoformat() / "packets.json").read_text())["packets"]
        for packet in packets:
            email = packet["rep"]["email"]
            for item in packet["deliver"]:
                if week == 1 and email.startswith("lars"):
                    continue  # left for a review
                run("followup", "-c", config, str(item["id"]), "--kept", "--as-of", day)
            if week < len(WEEKS) - 1:
                focus = [d for d in packet["deals"] if d["focus"]]
                deal = focus[0]["id"] if focus and not email.startswith("mai") else None
                text = (
                    f"Book a meeting with the CFO of {focus[0]['account']} by Friday"
                    if deal
                    else ("Ask every buyer this week what happens if they do nothing")
                )
                args = [deal] if deal else ["--rep", email]
                run(
                    "commit",
                    "-c",
                    config,
                    *args,
                    text,
                    "--due",
                    day + timedelta(days=5),
                    "--as-of",
                    day,
                )


def _pdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [" ".join(p.extract_text().split()) for p in PdfReader(str(path)).pages]


def measure(folder: Path, days: tuple[date, ...] = WEEKS) -> dict[str, int]:
    """The measures over every sheet of every review in ``folder`` (counts of failures, except
    ``sheets``)."""
    counts = dict.fromkeys(
        [
            "sheets",
            "sheets missing a core question",
            "templates twice on a sheet",
            "focus deals asked a question word for word again",
            "sole-contact wording on a deal with several contacts",
            "close-date question without a close date",
            "discovery question at a late stage",
            "'last week' for an older commitment",
            "sheets over 12 prompts besides Deliver",
            "sheets with Agree not on the front page",
            "sheets over two pages",
        ],
        0,
    )
    before: dict[str, set[str]] = {}
    for day in days:
        out = folder / day.isoformat()
        packets = json.loads((out / "packets.json").read_text())["packets"]
        now: dict[str, set[str]] = {}
        for packet in packets:
            counts["sheets"] += 1
            focus = [d for d in packet["deals"] if d["focus"]]
            asked = [q for d in focus for qs in d["questions"].values() for q in qs]
            everything = " ".join([*packet["listen"], *asked, *packet["agree"]["prompts"]]).lower()
            # a core question on the topic of an open commitment is Deliver's to ask
            opened = " ".join(i["opening"] for i in packet["deliver"]).lower()
            missing = [
                name
                for name, pattern in CORE.items()
                if not re.search(pattern, everything) and not re.search(pattern, opened)
            ]
            if packet["deliver"] and not all(
                "you committed to" in i["opening"] for i in packet["deliver"]
            ):
                missing.append("deliver")
            counts["sheets missing a core question"] += bool(missing)
            counts["templates twice on a sheet"] += len(asked) - len(set(asked))
            for deal in focus:
                questions = {q for qs in deal["questions"].values() for q in qs}
                counts["focus deals asked a question word for word again"] += bool(
                    questions & before.get(deal["id"], set())
                )
                now[deal["id"]] = questions
                text = " ".join(questions).lower()
                contacts = len(deal["facts"]["contacts"])
                counts["sole-contact wording on a deal with several contacts"] += bool(
                    contacts > 1 and re.search(SOLE, text)
                )
                counts["close-date question without a close date"] += bool(
                    not deal["close_date"] and re.search(CLOSE_DATE, text)
                )
                late = (deal["facts"]["probability"] or 0) >= 0.6
                counts["discovery question at a late stage"] += bool(
                    late and re.search(DISCOVERY, text)
                )
            for item in packet["deliver"]:
                made = date.fromisoformat(item["made_on"])
                counts["'last week' for an older commitment"] += bool(
                    item["opening"].lower().startswith("last week") and (day - made).days > 9
                )
            prompts = len(packet["listen"]) + len(asked) + len(packet["agree"]["prompts"])
            counts["sheets over 12 prompts besides Deliver"] += prompts > 12
            slug = _slug(packet, out)
            if slug is not None:
                pages = _pdf_pages(out / f"{slug}.pdf")
                counts["sheets over two pages"] += len(pages) > 2
                counts["sheets with Agree not on the front page"] += not (
                    re.search(r"\bAgree\b", pages[0])
                    and not re.search(
                        r"How we'll know|worked when", pages[1] if len(pages) > 1 else ""
                    )
                )
        before = now
    return counts


def _slug(packet: dict, out: Path) -> str | None:
    name = packet["rep"]["name"].lower().replace(" ", "-")
    return name if (out / f"{name}.pdf").is_file() else None


def main() -> None:
    def run(*args: Any) -> None:
        subprocess.run(
            [sys.executable, "-m", "leadprep", *map(str, args)], check=True, capture_output=True
        )

    for paper in ("letter", "a4"):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            run_weeks(folder, run, paper=paper)
            print(f"{paper}:")
            for name, count in measure(folder).items():
                print(f"{count:4d}  {name}")


if __name__ == "__main__":
    main()
