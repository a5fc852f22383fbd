"""``make bench``, part 4: a public-style pipeline (bench/public_style.py: 8,800 opportunities, 35
reps, one rep with 245 open deals) prepared as a new user would, through ``crm.file.columns``.

Measures the time of ``prep`` without and with PDF, the printed pages per rep, and what the sheets
say (flags shown on deals, in shared lines, as riders). Results go to bench/public-results.md.

    python -m bench.public
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import public_style

HERE = Path(__file__).resolve().parent


def _prep(config: Path, out: Path, formats: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "leadprep",
            "prep",
            "-c",
            str(config),
            "-o",
            str(out),
            "-f",
            formats,
            "--as-of",
            public_style.AS_OF.isoformat(),
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def _pages(pdf: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(pdf)).pages)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = public_style.write(folder)
        quick = _prep(config, folder / "html", "html,md,json")
        (folder / "state.db").unlink()
        full = _prep(config, folder / "pdf", "html,md,json,pdf")
        data = json.loads((folder / "pdf" / "packets.json").read_text())
        packets = data["packets"]
        pages = {p["rep"]["name"]: _pages(folder / "pdf" / f"{_slug(p)}.pdf") for p in packets}
        shown = Counter(f["shown"] for p in packets for d in p["deals"] for f in d["flags"])
        biggest = max(packets, key=lambda p: len(p["deals"]))
    deals = sum(len(p["deals"]) for p in packets)
    lines = [
        "# Public-style pipeline",
        "",
        f"{deals:,} open deals of 8,800 opportunities, {len(packets)} reps, the biggest with "
        f"{len(biggest['deals'])} open deals; through crm.file.columns only.",
        "",
        "| what | value |",
        "|---|---:|",
        f"| prep, HTML + Markdown + JSON (s) | {quick:.1f} |",
        f"| prep, with PDF for every rep and packets.pdf (s) | {full:.1f} |",
        f"| printed pages per rep, most | {max(pages.values())} |",
        f"| printed pages, the biggest rep ({len(biggest['deals'])} deals) | "
        f"{pages[biggest['rep']['name']]} |",
        f"| flags shown on their deal's row | {shown['deal']:,} |",
        f"| flags stated once in a shared line | {shown['hygiene']:,} |",
        f"| flags shown as a rider | {shown['rider']:,} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (HERE / "public-results.md").write_text(text, encoding="utf-8")


def _slug(packet: dict) -> str:
    return packet["rep"]["name"].lower().replace(" ", "-")


if __name__ == "__main__":
    main()
