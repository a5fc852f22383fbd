"""The benchmark run behind ``make bench``: API calls, speed and memory of a pull + render, side by side with the floor and
the naive way; rendering alone against bare Jinja; the cost of PDF per page.

Every pull runs in its own process (so its peak RSS is its own) against a fake CRM server in
another process with real latency and rate limits. Results are printed and written to
bench/results.md. Numbers are measurements, never assertions.

    python -m bench                       # the full run (several minutes: the limits are real)
    python -m bench --sizes 5x40 --latency 0.02 --no-naive   # a quick look
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import platform
import resource
import tempfile
import time
from datetime import date
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent

TODAY = date(2026, 11, 30)
MAX_CONTACTS = 4  # 0..4 per deal, 2 on average


# --- servers (each in its own process) -----------------------------------------------------------


def _serve_hubspot(reps: int, per_rep: int, latency: float, conn) -> None:
    from tests.fakes.hubspot_server import FakeHubSpot, build_portal

    portal = build_portal(
        [per_rep] * reps, seed=reps * 1000 + per_rep, max_contacts=MAX_CONTACTS, today=TODAY
    )
    open_deals = [d for d in portal.deals.values() if d.properties["hs_is_closed"] == "false"]
    contacts = len({cid for d in open_deals for cid, _ in d.contacts})
    # the connector reads each deal's primary company (else its first), not every one
    companies = len(
        {
            next((c for c, primary in d.companies if primary), d.companies[0][0])
            for d in open_deals
            if d.companies
        }
    )
    with FakeHubSpot(portal, latency=latency) as fake:
        conn.send(
            {
                "url": fake.url,
                "deals": len(open_deals),
                "contacts": contacts,
                "companies": companies,
            }
        )
        conn.recv()  # until told to stop
        conn.send({"rate_limited": dict(fake.rate_limited_kinds), "counts": dict(fake.counts)})


def _serve_salesforce(reps: int, per_rep: int, latency: float, tmp: str, conn) -> None:
    from tests.fakes.salesforce_server import FakeSalesforce, build_org

    org = build_org(
        [per_rep] * reps, seed=reps * 1000 + per_rep, max_roles=MAX_CONTACTS, today=TODAY
    )
    with FakeSalesforce(org, Path(tmp), latency=latency) as fake:
        conn.send(
            {
                "instance_url": fake.instance_url,
                "ca": str(fake.ca_path),
                "deals": len(org.opportunities),
            }
        )
        conn.recv()
        conn.send({"counts": dict(fake.counts)})


# --- the measured side ---------------------------------------------------------------------------


def _pull_and_render(kind: str, settings: dict, out: str, conn) -> None:
    from leadprep.config import Config
    from leadprep.connectors.hubspot import HubSpotSettings
    from leadprep.connectors.salesforce import SalesforceSettings
    from leadprep.packets import Memory, build_packets
    from leadprep.render import Renderer

    if kind == "hubspot":
        from leadprep.connectors.hubspot import HubSpotConnector

        connector = HubSpotConnector(HubSpotSettings(**settings))
    else:
        from leadprep.connectors.salesforce import SalesforceConnector

        connector = SalesforceConnector(SalesforceSettings(**settings))
    start = time.perf_counter()
    deals = connector.fetch(None, TODAY).deals
    pulled = time.perf_counter()
    config = Config()
    renderer = Renderer(config)
    packets = build_packets(deals, Memory(), config, renderer.question_bank(), TODAY)
    renderer.write_to(packets, Path(out), ["html", "md", "json"], as_of=TODAY, source=kind)
    done = time.perf_counter()
    if kind == "hubspot":
        requests, by_kind = connector.client.usage.total, dict(connector.client.usage.requests)
    else:
        requests, by_kind = connector.session.usage.total, dict(connector.session.usage.tallies)
    conn.send(
        {
            "deals": len(deals),
            "requests": requests,
            "by_kind": by_kind,
            "pull": pulled - start,
            "render": done - pulled,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def _naive(url: str, conn) -> None:
    from bench.naive import naive_hubspot_pull
    from tests.fakes.hubspot_server import TOKEN

    start = time.perf_counter()
    count = naive_hubspot_pull(url, TOKEN)
    conn.send({"requests": count, "time": time.perf_counter() - start})


def _in_process(target, *args):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, child))
    proc.start()
    return proc, parent


def _run_child(target, *args) -> dict:
    proc, conn = _in_process(target, *args)
    result = conn.recv()
    proc.join()
    return result


# --- floors --------------------------------------------------------------------------------------


def hubspot_floor(deals: int, contacts: int, companies: int) -> int:
    """Fewest requests for the same data at the APIs' page and batch caps: owners, pipelines,
    account details, search pages of 200, history batches of 50, deal→contact and deal→company
    association batches of 1,000, contact and company batches of 100."""
    return (
        3
        + math.ceil(deals / 200)
        + math.ceil(deals / 50)
        + 2 * math.ceil(deals / 1000)
        + math.ceil(contacts / 100)
        + math.ceil(companies / 100)
    )


def hubspot_min_seconds(searches: int, others: int, latency: float) -> float:
    """The least time HubSpot allows for these requests: the rate limits (search 4 per second,
    the rest 100 per 10 s, in separate buckets used in parallel; a sliding window lets the first
    window's worth go at once), and the chain of round trips that depend on each other
    (metadata, each search page after the previous, then the last history and contact batch)."""
    limits = max((max(searches, 1) - 1) // 4 * 1.0, (max(others, 1) - 1) // 100 * 10.0) + latency
    chain = (searches + 3) * latency
    return max(limits, chain)


def salesforce_floor(deals: int) -> int:
    """One composite setup request plus query pages of 2,000 (no child page needed here)."""
    return 1 + math.ceil(deals / 2000)


# --- rendering alone -----------------------------------------------------------------------------


def render_alone(deals: int) -> dict:
    import json

    from jinja2 import Environment, FileSystemLoader

    from bench.synthetic import synthetic
    from leadprep.config import Config
    from leadprep.packets import Memory, build_packets, packets_json
    from leadprep.render import Renderer, packaged_templates

    config = Config()
    renderer = Renderer(config)
    packets = build_packets(
        synthetic(deals // 50, 50), Memory(), config, renderer.question_bank(), TODAY
    )
    bare = Environment(
        loader=FileSystemLoader(str(packaged_templates())),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    bare.filters.update(renderer.env.filters)
    template = bare.get_template("packet.html.j2")
    start = time.perf_counter()
    for packet in packets:
        template.render(
            packet=packet, packets=[packet], standalone=True, paper="letter", version="bench"
        )
    json.dumps(packets_json(packets, TODAY, "bench"))
    floor = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        renderer.write_to(packets, Path(out), ["html", "json"], as_of=TODAY, source="bench")
        ours = time.perf_counter() - start
    return {"deals": deals, "floor": floor, "ours": ours}


def pdf_per_page() -> dict:
    import pypdf

    from bench.synthetic import synthetic
    from leadprep.config import Config
    from leadprep.packets import Memory, build_packets
    from leadprep.render import Renderer

    config = Config()
    renderer = Renderer(config)
    packets = build_packets(synthetic(4, 40), Memory(), config, renderer.question_bank(), TODAY)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        renderer.write_to(packets, Path(out), ["pdf"], as_of=TODAY, source="bench")
        seconds = time.perf_counter() - start
        pages = sum(len(pypdf.PdfReader(p).pages) for p in Path(out).glob("*.pdf"))
    return {"pages": pages, "seconds": seconds}


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--sizes", default="5x40,50x100,200x250", help="reps x open deals per rep, comma-separated"
    )
    parser.add_argument(
        "--latency", type=float, default=0.1, help="seconds the fake servers wait per request"
    )
    parser.add_argument(
        "--no-naive",
        action="store_true",
        help="skip running the naive pull (its count is still computed)",
    )
    parser.add_argument(
        "--naive-max-deals",
        type=int,
        default=250,
        help="run the naive pull for real up to this many deals",
    )
    parser.add_argument("--render-deals", type=int, default=10_000)
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    from bench.naive import naive_hubspot_requests, naive_salesforce_requests

    rows, notes = [], []
    for reps, per_rep in sizes:
        label = f"{reps}×{per_rep}"
        print(f"HubSpot {label} …", flush=True)
        server, conn = _in_process(_serve_hubspot, reps, per_rep, args.latency)
        info = conn.recv()
        from tests.fakes.hubspot_server import TOKEN

        with tempfile.TemporaryDirectory() as out:
            hs_settings = {"access_token": TOKEN, "base_url": info["url"]}
            measured = _run_child(_pull_and_render, "hubspot", hs_settings, out)
        naive_count = naive_hubspot_requests(reps, [per_rep] * reps, info["contacts"])
        naive_note = "computed"
        if not args.no_naive and info["deals"] <= args.naive_max_deals:
            time.sleep(10.5)  # let the fake's 10-second window forget leadprep's requests
            naive = _run_child(_naive, info["url"])
            naive_count, naive_note = naive["requests"], f"measured, {naive['time']:.0f} s"
        conn.send("stop")
        server_stats = conn.recv()
        server.join()
        floor = hubspot_floor(info["deals"], info["contacts"], info["companies"])
        searches = measured["by_kind"].get("search", 0)
        others = measured["requests"] - searches
        minimum = hubspot_min_seconds(searches, others, args.latency)
        rows.append(
            (
                "HubSpot",
                label,
                info["deals"],
                measured["requests"],
                floor,
                measured["requests"] / floor,
                naive_count,
                naive_note,
                measured["pull"],
                minimum,
                measured["render"],
                measured["rss_mb"],
                sum(server_stats["rate_limited"].values()),
            )
        )
        print(
            f"  {measured['requests']} requests (floor {floor}), pull {measured['pull']:.1f} s (min {minimum:.1f} s), {server_stats['rate_limited'] or 'no'} 429s",
            flush=True,
        )

        print(f"Salesforce {label} …", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            server, conn = _in_process(_serve_salesforce, reps, per_rep, args.latency, tmp)
            info = conn.recv()
            from tests.fakes.salesforce_server import TOKEN as SF_TOKEN

            sf_settings = {
                "auth": "session",
                "instance_url": info["instance_url"],
                "access_token": SF_TOKEN,
                "ca_bundle": info["ca"],
            }
            with tempfile.TemporaryDirectory() as out:
                measured = _run_child(_pull_and_render, "salesforce", sf_settings, out)
            conn.send("stop")
            conn.recv()
            server.join()
        floor = salesforce_floor(info["deals"])
        minimum = (
            floor * args.latency
        )  # no rate limit: the chain of the setup request and each page
        rows.append(
            (
                "Salesforce",
                label,
                info["deals"],
                measured["requests"],
                floor,
                measured["requests"] / floor,
                naive_salesforce_requests(info["deals"]),
                "computed",
                measured["pull"],
                minimum,
                measured["render"],
                measured["rss_mb"],
                0,
            )
        )
        print(
            f"  {measured['requests']} requests (floor {floor}), pull {measured['pull']:.1f} s",
            flush=True,
        )

    print("Rendering alone …", flush=True)
    render = render_alone(args.render_deals)
    pdf = pdf_per_page()

    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in ("leadprep", "jinja2", "weasyprint", "hubspot-api-client", "simple-salesforce")
    )
    lines = [
        "# leadprep benchmarks",
        "",
        f"Machine: {platform.machine()}, {mp.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {versions}.",
        f"Fake CRM servers with {args.latency * 1000:.0f} ms latency per request and the real rate limits "
        "(HubSpot: search 4/s, other calls 100 per 10 s; Salesforce: none).",
        "",
        "| CRM | reps×deals | open deals | requests | floor | ratio | naive requests | pull (s) | min allowed (s) | pull/min | render (s) | peak RSS (MB) | 429s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (
        crm,
        label,
        deals,
        req,
        floor,
        ratio,
        naive_count,
        naive_note,
        pull,
        minimum,
        rend,
        rss,
        limited,
    ) in rows:
        lines.append(
            f"| {crm} | {label} | {deals:,} | {req:,} | {floor:,} | {ratio:.2f} | {naive_count:,} ({naive_note}) | "
            f"{pull:.1f} | {minimum:.1f} | {pull / minimum:.2f} | {rend:.2f} | {rss:.0f} | {limited} |"
        )
    lines += [
        "",
        f"Rendering alone, {render['deals']:,} deals to HTML + JSON: leadprep {render['ours']:.2f} s, "
        f"bare Jinja with the same templates and context {render['floor']:.2f} s "
        f"(ratio {render['ours'] / render['floor']:.2f}).",
        f"PDF: {pdf['pages']} pages in {pdf['seconds']:.1f} s, {pdf['seconds'] / pdf['pages'] * 1000:.0f} ms per page.",
        "",
    ]
    report = "\n".join(lines + notes)
    print(report)
    (HERE / "results.md").write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
