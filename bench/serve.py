"""How fast ``leadprep serve`` answers an org (``python -m bench.serve``): a real uvicorn server
on loopback over the public-style pipeline (35 reps in six teams, thin data) with three weekly
reviews recorded by ``prep``, signed in through the proxy header. Times each page, a save, a PDF,
and 20 saves posted at once. Results go to bench/serve-results.md. Measurements, never assertions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from typer.testing import CliRunner

from bench import public_style
from bench.public_style import AS_OF
from leadprep.cli import app
from leadprep.config import Config, load_config
from leadprep.prep import open_review
from leadprep.review import ReviewApp, create_app
from leadprep.signin import ProxyHeader
from tests.test_review import free_port

HERE = Path(__file__).parent
SERVER = (
    "directors: [erin@example.com]\nserver: {sign_in: proxy, proxy: {trusted: [127.0.0.1/32]}}\n"
)


def org(folder: Path) -> Config:
    """Three weekly reviews of the public-style pipeline, recorded as `prep` records them."""
    path = folder / "leadprep.yaml"
    for weeks_back in (2, 1, 0):
        day = AS_OF - timedelta(weeks=weeks_back)
        public_style.write(folder, as_of=day)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(SERVER)
        done = CliRunner().invoke(
            app,
            ["prep", "-c", str(path), "-o", str(folder / "out"), "-f", "json",
             "--as-of", day.isoformat()],
        )  # fmt: skip
        assert done.exit_code in (0, 1), done.output
    return load_config(path)


def timed(call: Callable[[], Any], times: int) -> tuple[float, float]:
    """Median and worst of ``times`` calls, in ms."""
    took = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        took.append(1000 * (time.perf_counter() - started))
    return statistics.median(took), max(took)


def csrf_in(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def form(csrf: str, text: str) -> dict[str, str]:
    return {"csrf": csrf, "text": text, "deal_id": "", "due": "", "success": "", "second": "keep"}


def measure() -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as name:
        config = org(Path(name))
        settings = config.server.proxy
        assert settings is not None
        review = ReviewApp(lambda: open_review(config, AS_OF), AS_OF, sign_in=ProxyHeader(settings))
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(review),
                port=port,
                log_level="warning",
                log_config=None,
                proxy_headers=False,
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        started = time.perf_counter()
        thread.start()
        while not server.started:
            time.sleep(0.01)
        startup = 1000 * (time.perf_counter() - started)
        try:
            return {"start (open the store, build every sheet)": (startup, startup)} | _pages(
                review, f"http://127.0.0.1:{port}"
            )
        finally:
            server.should_exit = True
            thread.join(10)


def _pages(review: ReviewApp, base: str) -> dict[str, tuple[float, float]]:
    packets = sorted(review.packets, key=lambda p: len(p.deals))
    big, small = packets[-1], packets[len(packets) // 2]
    assert big.manager is not None
    other = next(p for p in packets if p.manager and p.manager.email != big.manager.email)
    results = {}
    with (
        httpx.Client(base_url=base, headers={"X-Forwarded-Email": "erin@example.com"}) as director,
        httpx.Client(base_url=base, headers={"X-Forwarded-Email": big.manager.email}) as manager,
    ):
        results["index, director (every team)"] = timed(lambda: director.get("/"), 10)
        results["index, one manager"] = timed(lambda: manager.get("/"), 10)
        results[f"rep page ({len(small.deals)} deals)"] = timed(
            lambda: director.get(f"/rep/{small.slug}"), 10
        )
        results[f"rep page ({len(big.deals)} deals)"] = timed(
            lambda: manager.get(f"/rep/{big.slug}"), 10
        )
        results["rollup, director (every team, 12 reviews)"] = timed(
            lambda: director.get("/rollup"), 5
        )
        results["refused (another team's rep)"] = timed(
            lambda: manager.get(f"/rep/{other.slug}"), 10
        )
        results[f"sheet PDF ({len(big.deals)} deals)"] = timed(
            lambda: manager.get(f"/rep/{big.slug}/sheet.pdf"), 2
        )
        csrf = csrf_in(manager.get(f"/rep/{big.slug}").text)

        def save() -> None:
            sent = manager.post(f"/rep/{big.slug}/commit", data=form(csrf, "Call Ana by Friday"))
            assert sent.status_code == 303

        results["save a commitment"] = timed(save, 5)
    managers = sorted({p.manager.email: p.slug for p in packets if p.manager}.items())
    results["20 saves posted at once, six managers (wall)"] = _twenty_at_once(base, managers)
    return results


def _twenty_at_once(base: str, managers: list[tuple[str, str]]) -> tuple[float, float]:
    """20 saves posted together, the managers taking turns, each for one of their reps."""
    pairs = [managers[n % len(managers)] for n in range(20)]
    tokens = []
    for email, slug in pairs:
        with httpx.Client(base_url=base, headers={"X-Forwarded-Email": email}) as client:
            tokens.append(csrf_in(client.get(f"/rep/{slug}").text))

    def save(n: int) -> int:
        email, slug = pairs[n]
        with httpx.Client(base_url=base, headers={"X-Forwarded-Email": email}, timeout=120) as c:
            return c.post(f"/rep/{slug}/commit", data=form(tokens[n], f"Step {n}")).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(save, range(20)))
    took = 1000 * (time.perf_counter() - started)
    assert codes == [303] * 20, codes
    return took, took


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    results = measure()
    lines = [
        "# bench.serve",
        "",
        "`python -m bench.serve`: the public-style pipeline (35 reps in six teams, thin data), "
        "three weekly reviews recorded, served on loopback behind the proxy header.",
        "",
        "| request | median ms | worst ms |",
        "|---|---:|---:|",
        *(f"| {name} | {med:,.0f} | {worst:,.0f} |" for name, (med, worst) in results.items()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (HERE / "serve-results.md").write_text(text)


if __name__ == "__main__":
    main()
