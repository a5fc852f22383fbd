"""A pipeline shaped like the public CRM sample data sets, for trying leadprep as a new user would.

The shape, not the rows, of the well-known public "CRM sales opportunities" sample: thousands of
won and lost deals with an engage and a close date, open deals with an engage date and neither an
amount nor a close date, product names as deal names, accounts often blank, one stage for most
open deals, a few reps carrying two hundred deals. Seeded, so tests and the bench see one file.

    python -m bench.public_style OUT_DIR     # writes OUT_DIR/opportunities.csv and leadprep.yaml
"""

from __future__ import annotations

import csv
import sys
from datetime import date, timedelta
from pathlib import Path
from random import Random

AS_OF = date(2026, 11, 30)
PRODUCTS = ("GTX Basic", "GTXPro", "MG Special", "MG Advanced", "GTX Plus Basic", "GTX Plus Pro")
PRODUCTS += ("GTK 500",)
PRICES = {"GTX Basic": 550, "GTXPro": 4821, "MG Special": 55, "MG Advanced": 3393}
PRICES |= {"GTX Plus Basic": 1096, "GTX Plus Pro": 5482, "GTK 500": 26768}
FIRST = ("Anna", "Boris", "Cara", "Dev", "Elle", "Finn", "Gita", "Hugo", "Ines", "Jon", "Kami")
FIRST += ("Lior", "Mona", "Nils", "Oona", "Pia", "Quin", "Rosa", "Sven", "Tara", "Uma", "Vik")
FIRST += ("Wren", "Xavi", "Yara", "Zane", "Abe", "Bea", "Cyd", "Dot", "Eli", "Fay", "Gus")
FIRST += ("Hal", "Ivy")
LAST = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad")
COLUMNS = {
    "deal_id": "opportunity_id",
    "deal_name": "product",
    "owner_name": "sales_agent",
    "account": "account",
    "stage": "deal_stage",
    "created_at": "engage_date",
    "stage_entered_at": "engage_date",
    "close_date": "close_date",
    "amount": "close_value",
}


def reps() -> list[str]:
    """35 sales agents, named the way such files name them (a name, no email)."""
    return [f"{first} {LAST[i % len(LAST)]}" for i, first in enumerate(FIRST[:35])]


MANAGERS = ("Dustin Brinkmann", "Cara Losch", "Melvin Marxen", "Rocco Neubert", "Celia Rouche")
MANAGERS += ("Summer Sewald",)


def email_of(name: str) -> str:
    return name.lower().replace(" ", ".") + "@example.com"


def teams_yaml() -> str:
    """Six managers, the 35 agents shared among them, as ``"Name <email>"`` so owners named
    without an email are matched by name."""
    agents = reps()
    lines = ["teams:"]
    for i, manager in enumerate(MANAGERS):
        mine = ", ".join(f'"{a} <{email_of(a)}>"' for a in agents[i :: len(MANAGERS)])
        lines.append(f"  - manager: {{name: {manager}, email: {email_of(manager)}}}")
        lines.append(f"    reps: [{mine}]")
    return "\n".join(lines) + "\n"


def rows(seed: int = 11, as_of: date = AS_OF, dated_open: int = 4) -> list[dict[str, str]]:
    """About 8,800 opportunities: ~6,700 won or lost, ~2,100 open (most of them Engaging)."""
    rng = Random(seed)
    agents = reps()
    # a few agents carry far more open deals than the rest, as in the real file
    weights = [6.0 if i in (3, 17) else 3.0 if i % 9 == 0 else 1.0 for i in range(len(agents))]
    accounts = [
        f"{w} {s}"
        for w in (
            "Acme",
            "Bluth",
            "Cyberdyne",
            "Dunder",
            "Initech",
            "Umbrella",
            "Globex",
            "Hooli",
            "Stark",
            "Wayne",
            "Wonka",
            "Vandelay",
        )
        for s in ("Corp", "Group", "Labs", "Holdings", "Systems")
    ]
    out: list[dict[str, str]] = []

    def row(n: int, stage: str, engaged: date | None, closed: date | None, value: int | None):
        product = rng.choice(PRODUCTS)
        out.append(
            {
                "opportunity_id": f"{rng.getrandbits(32):08X}{n:04d}",
                "sales_agent": rng.choices(agents, weights)[0],
                "product": product,
                "account": rng.choice(accounts) if rng.random() < 0.45 else "",
                "deal_stage": stage,
                "engage_date": engaged.isoformat() if engaged else "",
                "close_date": closed.isoformat() if closed else "",
                "close_value": str(value) if value is not None else "",
            }
        )

    n = 0
    for _ in range(6711):  # closed: won ~63%, engage-to-close median ~57 days
        n += 1
        cycle = max(1, min(138, int(rng.lognormvariate(4.0, 0.45))))
        closed = as_of - timedelta(days=rng.randint(1, 420))
        engaged = closed - timedelta(days=cycle)
        won = rng.random() < 0.63
        price = PRICES[PRODUCTS[n % len(PRODUCTS)]]
        row(
            n,
            "Won" if won else "Lost",
            engaged,
            closed,
            int(price * rng.uniform(0.9, 1.1)) if won else 0,
        )
    for _ in range(500):  # prospecting: no engage date yet
        n += 1
        row(n, "Prospecting", None, None, None)
    for k in range(1589):  # engaging: open, engaged over the last ~14 months, most of them long ago
        n += 1
        engaged = as_of - timedelta(days=int(rng.triangular(3, 430, 330)))
        closed = as_of + timedelta(days=rng.randint(10, 60)) if k < dated_open else None
        row(n, "Engaging", engaged, closed, None)
    rng.shuffle(out)
    return out


def write(folder: Path, seed: int = 11, as_of: date = AS_OF, teams: bool = True) -> Path:
    """Write ``opportunities.csv`` and a ``leadprep.yaml`` that maps it through
    ``crm.file.columns`` only, as the README teaches (with six teams unless ``teams`` is
    False); returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = rows(seed, as_of)
    with (folder / "opportunities.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    mapping = ", ".join(f'{k}: "{v}"' for k, v in COLUMNS.items())
    config = folder / "leadprep.yaml"
    config.write_text(
        "crm:\n"
        "  kind: file\n"
        "  file:\n"
        "    path: opportunities.csv\n"
        f"    columns: {{{mapping}}}\n"
        "    stages:\n"
        "      - {name: Prospecting, probability: 0.1}\n"
        "      - {name: Engaging, probability: 0.3}\n"
        "      - {name: Won, probability: 1.0, closed: true, won: true}\n"
        "      - {name: Lost, probability: 0.0, closed: true, won: false}\n"
        "state:\n"
        "  path: state.db\n" + (teams_yaml() if teams else ""),
        encoding="utf-8",
    )
    return config


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "public-style")))
