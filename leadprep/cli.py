"""The ``leadprep`` command line. Thin: parse, load config, call the core, print, map errors to exit codes."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape as _escape_markup
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from leadprep import __version__
from leadprep.config import Config, find_config_path, load_config
from leadprep.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_PIPE_CLOSED,
    LeadprepError,
    UsageError,
)
from leadprep.redact import RedactingFormatter, redact
from leadprep.sanitize import terminal_text

if TYPE_CHECKING:
    import socket

    import uvicorn

    from leadprep.model import Commitment
    from leadprep.outbox import Outcome
    from leadprep.prep import NoSheet, PrepResult, ReviewSource
    from leadprep.schedule import Scheduler
    from leadprep.signin import SignInPolicy
    from leadprep.store import Store, TaskRow

app = typer.Typer(
    name="leadprep",
    help="Turn your CRM into coaching: per-rep prep sheets for the weekly pipeline review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich would exit 1 here; the command's error net makes it the same quiet exit as
        # a plain print() to a closed pipe.
        self.quiet = True
        raise BrokenPipeError


out = _Console(highlight=False, soft_wrap=True)
err = _Console(stderr=True, highlight=False, soft_wrap=True)
log = logging.getLogger("leadprep")

ConfigOpt = typer.Option(
    None, "--config", "-c", help="Config file (else $LEADPREP_CONFIG, else ./leadprep.yaml)."
)
VerboseOpt = typer.Option(False, "--verbose", "-v", help="Debug log on stderr (secrets masked).")
AsOfOpt = typer.Option(
    None, "--as-of", help="Review date YYYY-MM-DD used as 'today' for every date calculation."
)


def escape(value: object) -> str:
    """Data for the terminal: Rich markup escaped, control characters and escape sequences
    made visible, so CRM text can neither style nor steer the terminal."""
    return _escape_markup(terminal_text(value))


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("leadprep")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.propagate = False


# How the CLI names the inputs an error asks for (the review page names them its own way).
CLI_TERMS = {
    "rep": '--rep EMAIL (e.g. leadprep commit --rep alex@example.com "Open every call with the '
    "buyer's goal\")",
    "worked": "--worked or --did-not-work",
    "as_of": "--as-of YYYY-MM-DD",
}


@contextmanager
def _errors(verbose: bool) -> Iterator[None]:
    """The one safety net: LeadprepErrors become a few human lines and their exit code; anything
    unexpected becomes a short "internal error" and exit 70. Tracebacks only with -v, masked."""
    _setup_logging(verbose)
    try:
        yield
    except LeadprepError as exc:
        if verbose:
            log.debug("traceback", exc_info=True)
        err.print(
            f"[bold red]error:[/] {escape(redact(str(exc.in_terms(CLI_TERMS))))}",
            markup=True,
            soft_wrap=True,
            highlight=False,
        )
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        _quiet_closed_stdout()
        raise typer.Exit(EXIT_PIPE_CLOSED) from None
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except Exception as exc:
        if verbose:
            log.error("internal error", exc_info=True)
        summary = redact(f"{type(exc).__name__}: {exc}")
        if len(summary) > 300:
            summary = summary[:300] + "…"
        err.print(
            f"[bold red]internal error:[/] {escape(summary)}\n"
            "  → This is a bug in leadprep, not a problem with your data or config. "
            + (
                "The traceback is above; "
                if verbose
                else "Run the same command with -v to see the details, and "
            )
            + "please report it (secrets are masked).",
            soft_wrap=True,
            highlight=False,
        )
        raise typer.Exit(EXIT_INTERNAL) from None


def _quiet_closed_stdout() -> None:
    """The reader of our output went away (``| head``): that is not an error. Point stdout at
    /dev/null so the interpreter's last flush at exit has nowhere to fail either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file behind stdout (a test runner's buffer)
        pass


def _as_of(value: str | None) -> date:
    from leadprep.model import EARLIEST_DATE, LATEST_DATE

    if value is None:
        return date.today()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of {value!r} is not a date in YYYY-MM-DD form.") from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise UsageError(
            f"--as-of {value} is outside {EARLIEST_DATE.year}–{LATEST_DATE.year}; "
            "give the review date, e.g. --as-of 2026-11-30."
        )
    return day


def _load(config_path: Path | None) -> tuple[Config | None, Path | None]:
    path = find_config_path(config_path)
    return (load_config(path), path) if path else (None, None)


def _formats(value: str | None, config: Config) -> list[str]:
    from leadprep.render import FORMATS

    if not value:
        return list(config.output.formats)
    formats = [f.strip().lower() for f in value.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(
            f"--format {', '.join(unknown)} is not known; choose from {', '.join(FORMATS)} (comma-separated)."
        )
    return formats


@app.command()
def prep(
    config: Path | None = ConfigOpt,
    out_dir: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: output.dir, else ./prep-sheets)."
    ),
    format: str | None = typer.Option(
        None, "--format", "-f", help="Comma-separated: html,md,json,pdf (default: output.formats)."
    ),
    rep: list[str] = typer.Option([], "--rep", help="Only this rep (email); repeat for several."),
    manager: str | None = typer.Option(
        None, "--manager", help="Only this manager's reps (the manager's email)."
    ),
    rollup: bool = typer.Option(
        False, "--rollup", help="Write rollup.html (always written for more than one manager)."
    ),
    as_of: str | None = AsOfOpt,
    demo: bool = typer.Option(
        False, "--demo", help="Use the bundled demo pipeline, whatever the config says."
    ),
    verbose: bool = VerboseOpt,
) -> None:
    """Pull the pipeline, flag risk and write a question sheet per rep."""
    with _errors(verbose):
        from leadprep.prep import open_review, run_prep, uses_demo

        review = _as_of(as_of)
        # --demo ignores ./leadprep.yaml but honours an explicit --config (paper, thresholds, templates)
        cfg, path = (None, None) if demo and config is None else _load(config)
        if cfg is None and not demo:
            out.print(
                "No config found (--config, $LEADPREP_CONFIG, ./leadprep.yaml): running on the bundled demo pipeline."
            )
        only = {r.strip().lower() for r in rep} or None
        with open_review(cfg, review, demo=demo) as source:
            formats = _formats(format, source.config)
            target = out_dir or source.config.output.dir or Path("prep-sheets")
            log.debug(
                "config %s, state %s",
                path or "(none)",
                "(demo, in memory)" if uses_demo(cfg, demo) else source.store.path,
            )
            with _progress() as bar:
                task = bar.add_task("Writing sheets", total=None)

                def step(name: str) -> None:
                    bar.update(task, advance=1, description=f"Wrote {name}")

                result = run_prep(
                    source,
                    as_of=review,
                    out_dir=target,
                    formats=formats,
                    only_reps=only,
                    progress=step,
                    manager=manager.strip().lower() if manager else None,
                    rollup=rollup,
                )
        for note in result.notes:
            err.print(f"[yellow]note:[/] {escape(note)}")
        _print_summary(result)
        if cfg is not None and not uses_demo(cfg, demo):
            _write_back_safely(cfg)
        missing = result.no_sheet
        if missing is not None:
            err.print(
                f"[yellow]{missing.count:,} of {missing.total:,} open deals went to no sheet:[/] "
                + escape(missing.why)
            )
        if result.problems:
            err.print(f"[yellow]{len(result.problems)} record(s) skipped:[/]")
            for problem in result.problems:
                err.print(f"  {terminal_text(problem)}", markup=False)
        if result.problems or (missing is not None and missing.most):
            raise typer.Exit(EXIT_PARTIAL)


@contextmanager
def _progress() -> Iterator[Progress]:
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with bar:
        yield bar


def _say_no_sheet(missing: NoSheet | None) -> None:
    if missing is not None:
        err.print(
            f"[yellow]{missing.count:,} of {missing.total:,} open deals went to no sheet:[/] "
            + escape(missing.why)
        )


# One definition of each count, said under both tables that show it (prep and history).
COUNTS_CAPTION = (
    "Flagged: open deals with at least one flag. High: high-severity flags, those in a line "
    "shared by most deals included (a forecast judgement riding on another flag is not counted)."
)
HISTORY_CAPTION = (
    COUNTS_CAPTION + " Moved: close dates pushed or pulled in. Agreed: commitments made at the "
    "1:1 (—: not held yet, the review has had no 1:1 so far). Next: of those, followed up at the "
    "next review. Kept: kept rate of the follow-ups recorded at it (partly counts half)."
)


def _print_summary(result: PrepResult) -> None:
    table = Table(
        title=f"Review {result.as_of.isoformat()} · source: {result.source}",
        title_justify="left",
        caption=COUNTS_CAPTION,
        caption_justify="left",
    )
    for column in (
        "Rep",
        "Open deals",
        "Flagged",
        "High",
        "Focus",
        "Changed",
        "Commitments",
    ):
        table.add_column(column, justify="left" if column == "Rep" else "right")
    for p in result.packets:
        table.add_row(
            escape(p.rep.name),
            str(len(p.deals)),
            str(len(p.flagged)),
            str(p.high_flags),
            str(len(p.focus)),
            str(len(p.changed)) if p.previous_review else "—",
            str(len(p.deliver)),
        )
    out.print(table)
    if result.previous_review is None:
        out.print("First review on record: 'what changed' starts with the next run.")
    index = (result.out_dir / "index.html").resolve()
    out.print(f"Sheets written to {escape(result.out_dir.resolve())}  (open {escape(index)})")
    pdfs = sorted(f.resolve() for f in result.files if f.suffix == ".pdf")
    if pdfs:
        combined = result.out_dir.resolve() / "packets.pdf"
        everyone = f"{escape(combined)} (every rep) and " if combined in pdfs else ""
        per_rep = len([f for f in pdfs if f != combined])
        out.print(f"To print: {everyone}{per_rep} PDF(s), one per rep, in the same folder")


@app.command()
def send(
    config: Path | None = ConfigOpt,
    out_dir: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: output.dir, else ./prep-sheets)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write the outbox, send nothing."),
    force: bool = typer.Option(
        False, "--force", help="Send again what already went out this week."
    ),
    as_of: str | None = AsOfOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Prepare this week's sheets and email them to each manager (and reps, if configured)."""
    with _errors(verbose):
        cfg, _ = _load(config)
        if cfg is None:
            raise UsageError(
                "send needs a config file with an email or chat section (leadprep init writes one)."
            )
        code = _send_once(cfg, _as_of(as_of), out_dir, dry_run=dry_run, force=force)
        raise typer.Exit(code)


def _send_once(
    cfg: Config, review: date, out_dir: Path | None, *, dry_run: bool = False, force: bool = False
) -> int:
    from leadprep.send import run_send
    from leadprep.store import Store

    target = out_dir or cfg.output.dir or Path("prep-sheets")
    marks = {
        "sent": "[green]sent[/]   ",
        "failed": "[red]FAILED[/] ",
        "skipped": "skipped",
        "queued": "queued ",
    }

    def show(outcome: Outcome) -> None:
        out.print(
            f"{marks.get(outcome.status, outcome.status)} {escape(outcome.recipient)} ({outcome.kind}) {escape(outcome.detail)}"
        )

    with Store.open(cfg.state_path()) as state:
        result = run_send(
            cfg, state, as_of=review, out_dir=target, dry_run=dry_run, force=force, progress=show
        )
    report = result.report
    for outcome in report.outcomes:
        if outcome.status in ("skipped", "queued"):
            show(outcome)
    for note in [*result.prep.notes, *report.notes]:
        err.print(f"[yellow]note:[/] {escape(note)}")
    for problem in result.prep.problems:
        err.print(f"  skipped record {terminal_text(problem)}", markup=False)
    missing = result.prep.no_sheet
    _say_no_sheet(missing)
    sent = sum(o.status == "sent" for o in report.outcomes)
    if dry_run:
        out.print(
            f"Dry run: {len(report.outcomes)} message(s) in {(target / 'outbox').resolve()}, none sent."
        )
    else:
        out.print(
            f"{sent} sent, {len(report.failed)} failed; outbox: {(target / 'outbox').resolve()}"
        )
    if report.failed:
        err.print("Failed messages stay in the outbox and go out on the next `leadprep send`.")
    partial = report.failed or result.prep.problems or (missing is not None and missing.most)
    return EXIT_PARTIAL if partial else EXIT_OK


@app.command()
def schedule(config: Path | None = ConfigOpt, verbose: bool = VerboseOpt) -> None:
    """Run `send` on schedule.cron in schedule.timezone until stopped (Ctrl-C or SIGTERM)."""
    with _errors(verbose):
        import signal

        cfg, _ = _load(config)
        scheduler = _send_schedule(cfg, "schedule")
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: scheduler.stop())
        logging.getLogger("leadprep.schedule").setLevel(logging.INFO)
        out.print(
            f"Scheduling `leadprep send` at '{scheduler.cron}' ({scheduler.timezone}); "
            "Ctrl-C to stop."
        )
        scheduler.run()


def _open_state(config_path: Path | None, *, readonly: bool = False) -> tuple[Store, bool]:
    """The configured state store, and whether the pipeline is the demo's."""
    from leadprep.store import Store

    cfg, _ = _load(config_path)
    cfg = cfg or Config()
    store = Store.open(cfg.state_path(), readonly=readonly)
    note = store.upgrade_note()
    if note:
        err.print(escape(note))
    return store, cfg.crm.kind == "demo"


@app.command()
def commit(
    deal_id: str | None = typer.Argument(
        None, help="The deal's id, as on the sheet; leave it out (with --rep) for a habit."
    ),
    text: str | None = typer.Argument(None, help="What the rep will do, with whom, by when."),
    due: str | None = typer.Option(None, "--due", help="Due date YYYY-MM-DD."),
    rep: str | None = typer.Option(
        None, "--rep", help="The rep (email); default: the deal's owner. Needed without a deal."
    ),
    success: str | None = typer.Option(
        None, "--success", help="How you will both know it worked (shown next week)."
    ),
    from_file: Path | None = typer.Option(
        None, "--from-file", help="CSV with deal_id, text, due, rep, success: record them all."
    ),
    as_of: str | None = AsOfOpt,
    config: Path | None = ConfigOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Record the one commitment a rep chose in the 1:1 (it opens the next sheet's Deliver).

    leadprep commit D-1042 "Book the CFO call by Friday" --success "CFO on the calendar"
    leadprep commit --rep alex@example.com "Ask every buyer what happens if they do nothing"
    """
    with _errors(verbose):
        from leadprep import commitments

        review = _as_of(as_of)
        if text is None and deal_id is not None and rep is not None:
            deal_id, text = None, deal_id  # `commit --rep EMAIL "text"`: no deal named
        store, demo = _open_state(config)
        with store:
            if from_file is not None:
                if deal_id or text:
                    raise UsageError("Give either DEAL_ID TEXT or --from-file, not both.")
                items = commitments.prepare_file(store, from_file, review, demo=demo)
            else:
                if text is None:
                    raise UsageError(
                        'Usage: leadprep commit DEAL_ID "TEXT" [--due YYYY-MM-DD] [--success "…"], '
                        'or leadprep commit --rep EMAIL "TEXT" for a commitment about no single '
                        "deal (or --from-file CSV)."
                    )
                items = [
                    commitments.prepare(
                        store,
                        deal_id,
                        text,
                        commitments.parse_due(due),
                        rep,
                        review,
                        demo=demo,
                        success=success,
                    )
                ]
            ids = commitments.record(store, items, recorded_by=_who())
        for item, new_id in zip(items, ids, strict=True):
            new = item.commitment
            due_text = f", due {new.due.isoformat()}" if new.due else ""
            about = f"on {escape(new.deal_name)}" if new.deal_name else "(no single deal)"
            out.print(f"#{new_id} recorded for {escape(new.rep_email)} {about}{due_text}.")
            for warning in item.warnings:
                err.print(f"[yellow]warning:[/] #{new_id}: {escape(warning)}")
            if item.hint:
                err.print(f"[yellow]hint:[/] #{new_id}: {escape(item.hint)}")
        _write_back_after(config)


@app.command()
def followup(
    commitment_id: int = typer.Argument(..., help="The commitment's number (#12 on the sheet)."),
    kept: bool = typer.Option(False, "--kept", help="The rep did it."),
    partly: bool = typer.Option(False, "--partly", help="Some of it (counts half)."),
    missed: bool = typer.Option(False, "--missed", help="The rep did not."),
    note: str | None = typer.Option(None, "--note", help="What was learned."),
    worked: bool | None = typer.Option(
        None,
        "--worked/--did-not-work",
        help="Done, and did it work (the success sign met)? Leave out when not said.",
    ),
    as_of: str | None = AsOfOpt,
    config: Path | None = ConfigOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Record how last week's commitment went, in the review where it was discussed."""
    with _errors(verbose):
        from leadprep import commitments

        chosen = [s for s, on in (("kept", kept), ("partly", partly), ("missed", missed)) if on]
        if len(chosen) != 1:
            raise UsageError("Say how it went: exactly one of --kept, --partly or --missed.")
        review = _as_of(as_of)
        store, _ = _open_state(config)
        with store:
            done, warning = commitments.follow_up(
                store,
                commitment_id,
                status=chosen[0],
                note=note,
                as_of=review,
                worked=worked,
                recorded_by=_who(),
            )
        if warning:
            err.print(f"[yellow]warning:[/] {escape(warning)}")
        said = {True: ", and it worked", False: ", but it did not work", None: ""}[worked]
        out.print(f"#{done.id} marked {done.status}{said}: {escape(done.text)}")
        _write_back_after(config)


@app.command(name="commitments")
def list_commitments(
    rep: str | None = typer.Option(None, "--rep", help="Only this rep (email)."),
    show_all: bool = typer.Option(
        False, "--all", help="Include followed-up ones, with every follow-up and note."
    ),
    format: str = typer.Option("table", "--format", help="table or json."),
    as_of: str | None = AsOfOpt,
    config: Path | None = ConfigOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """List open commitments, whatever review they were made in (or all of them)."""
    with _errors(verbose):
        import json

        from leadprep import commitments
        from leadprep.tasks import task_for
        from leadprep.writeback import manager_names

        if format not in ("table", "json"):
            raise UsageError("--format is table or json.")
        review = _as_of(as_of)  # only for "overdue"
        cfg, _ = _load(config)
        store, _ = _open_state(config, readonly=True)
        with store:
            rows = store.commitments.all(rep_email=rep, status=None if show_all else "open")
            names = commitments.rep_names(store, cfg or Config(), {c.rep_email for c in rows})
            tasks = {t.commitment_id: t for t in store.tasks.all()}
        managers = manager_names(cfg or Config())

        def in_crm(c: Commitment) -> tuple[bool, bool]:
            task = tasks.get(c.id)
            digest = task_for(c, managers(c.rep_email)).digest
            return (task is not None and task.written_hash == digest, c.status != "open")

        if format == "json":
            listed = [
                c.to_json(review) | ({"task": _task_json(tasks[c.id])} if c.id in tasks else {})
                for c in rows
            ]
            print(json.dumps(listed, indent=2, ensure_ascii=False))
            return
        table = Table(
            title=f"{'All' if show_all else 'Open'} commitments as of {review.isoformat()}",
            title_justify="left",
        )
        columns = ["#", "Rep", "Deal", "Commitment", "Made", "Due", "Status"]
        for column in columns + (["CRM task"] if tasks else []):
            table.add_column(column)
        for c in rows:
            due_text = c.due.isoformat() if c.due else "—"
            if c.overdue(review):
                due_text += " (overdue)"
            status = c.status
            if show_all and c.followups:
                status = "\n".join(
                    f"{f.status} {f.review.isoformat()}"
                    + (f": {f.note}" if f.note else "")
                    + (f" (by {f.recorded_by})" if f.recorded_by else "")
                    for f in c.followups
                )
            if show_all and c.recorded_by:
                status = f"made by {c.recorded_by}\n{status}"
            table.add_row(
                str(c.id),
                escape(names.get(c.rep_email, c.rep_email)),
                escape(c.about),
                escape(c.text),
                c.made_on.isoformat(),
                due_text,
                escape(status),
                *([escape(_task_state(tasks.get(c.id), *in_crm(c)))] if tasks else []),
            )
        out.print(table if rows else "No commitments.")


@app.command()
def review(
    ctx: typer.Context,
    config: Path | None = ConfigOpt,
    as_of: str | None = AsOfOpt,
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to serve on."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (other than loopback needs --token)."
    ),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the URL only."),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="LEADPREP_REVIEW_TOKEN",
        help="Access token every request must carry (required off loopback).",
    ),
    demo: bool = typer.Option(False, "--demo", help="The demo team, in a throwaway store."),
    verbose: bool = VerboseOpt,
) -> None:
    """The last recorded review in the browser: record Deliver and Agree during the 1:1."""
    with _errors(verbose):
        from urllib.parse import quote

        import uvicorn

        from leadprep.prep import open_review, record_current
        from leadprep.review import ReviewApp, create_app
        from leadprep.signin import SharedToken, ThisMachine

        review_date = _as_of(as_of)
        _check_access(host, token)
        if token and _from_command_line(ctx, "token"):
            err.print(
                "[yellow]note:[/] a --token on the command line shows in the process list; "
                "set $LEADPREP_REVIEW_TOKEN instead. For the whole org, each manager with their "
                "own sign-in and teams: leadprep serve."
            )
        listening = _bind(host, port)  # before anything opens a browser at it
        cfg, _ = (None, None) if demo and config is None else _load(config)

        @contextmanager
        def open_source() -> Iterator[ReviewSource]:
            with open_review(cfg, review_date, demo=demo) as source:
                if source.demo:
                    record_current(source, review_date)
                yield source

        sign_in = SharedToken(token) if token else ThisMachine()
        review_app = ReviewApp(open_source, review_date, host=host, sign_in=sign_in)
        app_ = create_app(review_app)
        shown = f"[{host}]" if ":" in host else host
        code = review_app.launch_code
        url = f"http://{shown}:{port}/" + (f"?code={quote(code)}" if token and code else "")
        with listening, review_app.opened() as source:
            if source.demo:
                out.print("Demo team: what you record lives in memory until you stop the review.")
            base = f"http://{shown}:{port}/"
            out.print(
                f"Review of {review_app.review_date} at {escape(base)}"
                + (" (open it as …/?token=<your token> once)" if token else "")
                + " — Ctrl-C to stop."
            )
            server = uvicorn.Server(uvicorn.Config(app_, log_level="warning"))
            if not no_browser:
                _open_when_serving(server, url)
            # uvicorn shuts down gracefully, then raises Ctrl-C again: that is a stop
            _stop_on_sigterm()
            with suppress(KeyboardInterrupt):
                server.run(sockets=[listening])
            out.print(
                "Stopped. The demo's records are gone with it."
                if source.demo
                else f"Stopped. Everything recorded is in {escape(source.store.path)}."
            )


@app.command()
def serve(
    config: Path | None = ConfigOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to serve on."),
    with_schedule: bool = typer.Option(
        False, "--schedule", help="Also run `send` on schedule.cron, in this process."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Serve the review of YYYY-MM-DD (default: the latest, each day)."
    ),
    verbose: bool = VerboseOpt,
) -> None:
    """The org's server: each person signs in and sees the review pages, the index, the
    rollup and the PDFs of their own teams (a director: every team). Stops on Ctrl-C or SIGTERM."""
    with _errors(verbose):
        import threading

        from leadprep.doctor import server_check
        from leadprep.prep import open_review
        from leadprep.review import ReviewApp, create_app

        cfg, _ = _load(config)
        if cfg is None or cfg.crm.kind == "demo":
            raise UsageError(
                "serve is the org's server: it needs a config with your CRM and teams "
                "(README: One server for the sales org).",
                hint="To try the review page on the demo team: leadprep review --demo",
            )
        policy = _sign_in_policy(cfg)
        scheduler = _send_schedule(cfg, "--schedule") if with_schedule else None
        fixed = _as_of(as_of) if as_of else None
        listening = _bind(host, port)
        zone = cfg.schedule.timezone if cfg.schedule else None
        review_app = ReviewApp(
            lambda: open_review(cfg, fixed or date.today()),
            fixed,
            host=host,
            sign_in=policy,
            timezone=zone,
        )
        app_ = create_app(review_app)
        for name in ("leadprep.review", "leadprep.schedule"):
            logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
        shown = f"[{host}]" if ":" in host else host
        with listening, review_app.opened() as source:
            signing_in = server_check(cfg)  # what `doctor` says of it, warnings included
            out.print(
                f"Serving the reviews in {escape(source.store.path)} at "
                f"http://{shown}:{port}/ (health at /health); Ctrl-C or SIGTERM to stop."
            )
            (err if signing_in.warn else out).print(
                ("[yellow]note:[/] " if signing_in.warn else "Sign-in: ")
                + escape(signing_in.detail)
            )
            thread = None
            if scheduler is not None:
                thread = threading.Thread(target=scheduler.run, name="leadprep-schedule")
                thread.start()
            server = _org_server(app_)
            _stop_on_sigterm()
            with suppress(KeyboardInterrupt):
                server.run(sockets=[listening])
            if scheduler is not None and thread is not None:
                scheduler.stop()
                thread.join(2)
                if thread.is_alive():
                    out.print("Waiting for the scheduled run to finish…")
                    thread.join()
            out.print(f"Stopped. Everything recorded is in {escape(source.store.path)}.")


def _sign_in_policy(cfg: Config) -> SignInPolicy:
    """How ``serve`` signs people in: the proxy's header, or access links."""
    from leadprep.signin import AccessLinkSignIn, ProxyHeader

    settings = cfg.server
    if settings.sign_in == "proxy":
        assert settings.proxy is not None  # the config requires it
        return ProxyHeader(settings.proxy)
    return AccessLinkSignIn(secure=settings.secure)


def _org_server(app_: Any) -> uvicorn.Server:
    import uvicorn

    logging.getLogger("uvicorn").handlers[:] = logging.getLogger("leadprep").handlers
    return uvicorn.Server(
        uvicorn.Config(
            app_,
            log_level="warning",
            log_config=None,  # uvicorn logs through leadprep's masking handler
            access_log=False,  # ours leaves out query strings and access-link tokens
            proxy_headers=False,  # the peer is the proxy: its address is what is trusted
            timeout_graceful_shutdown=30,
        )
    )


def _stop_on_sigterm() -> None:
    """SIGTERM stops the server as Ctrl-C does. uvicorn catches it, shuts down gracefully, then
    raises it again for the handler that was there before: with the default one, the process
    would die before the scheduled run finishes and before it says it stopped."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _send_schedule(cfg: Config | None, command: str) -> Scheduler:
    """The send job on the config's schedule: `schedule` runs it in the foreground, `serve
    --schedule` in a thread of the server."""
    from leadprep.schedule import Scheduler

    if cfg is None or cfg.schedule is None or (cfg.email is None and not cfg.chat_configured):
        raise UsageError(
            f"{command} needs a schedule section and an email or chat section in the config "
            "(see config.example.yaml)."
        )

    def job(fire: datetime) -> None:
        code = _send_once(cfg, fire.date(), None)
        if code:
            log.warning("the run for %s finished with exit code %d", fire.date(), code)

    return Scheduler(cfg.schedule.cron, cfg.schedule.timezone, job)


access_app = typer.Typer(
    help="Per-person access links to `leadprep serve` (when no sign-in proxy is in front).",
    no_args_is_help=True,
)
app.add_typer(access_app, name="access")


@access_app.command("add")
def access_add(
    email: str = typer.Argument(..., help="The manager's or director's email."),
    days: int | None = typer.Option(
        None, "--days", min=1, max=400, help="Valid for this many days (default server.links.days)."
    ),
    config: Path | None = ConfigOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Make an access link for EMAIL and print it, once: it is kept only as a hash."""
    with _errors(verbose):
        from leadprep.scope import scope_of
        from leadprep.store import Store

        cfg, _ = _load(config)
        cfg = cfg or Config()
        address = _access_email(email)
        with Store.open(cfg.state_path()) as store:
            latest = store.runs.latest(date.today())
            weeks = store.runs.rep_weeks([latest.as_of]) if latest else []
            # only to warn about a link that would open nothing: the server decides on each page,
            # from the same sheets (each rep's week records the manager their sheet went to)
            scope = scope_of(address, cfg, [(w.rep_email, w.manager_email) for _, w in weeks])
            token, link = store.access.add(
                address, days or cfg.server.links.days, created_by=_who()
            )
        base = cfg.server.url or ""
        print(f"{base}/access/{token}")
        err.print(
            f"Access link for {escape(address)} ({_role_words(scope.role)}), valid until "
            f"{link.expires_at:%Y-%m-%d}. It is shown only now: send it to them privately."
        )
        if not base:
            err.print("note: server.url is not set; put the server's address before /access/.")
        if not scope.sees_anything:
            err.print(
                f"[yellow]note:[/] {escape(address)} manages no team in the config or the last "
                "review and is not in directors: the server will refuse them until they are."
            )


@access_app.command("revoke")
def access_revoke(
    email: str = typer.Argument(..., help="Whose links to revoke."),
    config: Path | None = ConfigOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Revoke every access link of EMAIL and end their sign-ins now."""
    with _errors(verbose):
        from leadprep.store import Store

        cfg, _ = _load(config)
        address = _access_email(email)
        with Store.open((cfg or Config()).state_path()) as store:
            count = store.access.revoke(address)
        if not count:
            raise UsageError(
                f"{address} has no active access link; nothing was revoked.",
                hint="leadprep access list shows every link and its state.",
            )
        out.print(f"Revoked {count} access link(s) of {escape(address)}; their sign-ins ended.")


@access_app.command("list")
def access_list(
    format: str = typer.Option("table", "--format", help="table or json."),
    config: Path | None = ConfigOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Every access link: whose, made when and by whom, valid until, last opened, state."""
    with _errors(verbose):
        import json
        from datetime import UTC

        from leadprep.store import Store

        if format not in ("table", "json"):
            raise UsageError("--format is table or json.")
        cfg, _ = _load(config)
        with Store.open((cfg or Config()).state_path(), readonly=True) as store:
            links = store.access.all()
        now = datetime.now(UTC)
        rows = [
            {
                "email": link.email,
                "state": link.state(now),
                "created": link.created_at.isoformat(),
                "created_by": link.created_by,
                "expires": link.expires_at.isoformat(),
                "last_opened": link.used_at.isoformat() if link.used_at else None,
            }
            for link in links
        ]
        if format == "json":
            print(json.dumps(rows, indent=2))
            return
        if not rows:
            out.print("No access links yet (leadprep access add EMAIL).")
            return
        table = Table(title="Access links", title_justify="left")
        for column in ("Email", "State", "Created", "Valid until", "Last opened"):
            table.add_column(column, overflow="fold")
        for link in links:
            table.add_row(
                escape(link.email),
                link.state(now),
                f"{link.created_at:%Y-%m-%d}",
                f"{link.expires_at:%Y-%m-%d}",
                f"{link.used_at:%Y-%m-%d}" if link.used_at else "never",
            )
        out.print(table)


def _role_words(role: str) -> str:
    return "no team in the config or the last review" if role == "nobody" else role


def _access_email(value: str) -> str:
    from leadprep.sanitize import UnsafeValue, email_address

    try:
        address = email_address(value)
    except UnsafeValue:
        address = None
    if not address:
        raise UsageError(
            f"{terminal_text(value)!r} is not one email address.",
            hint="Give the address alone, as the config's teams or directors have it: "
            "dana@example.com",
        )
    return address


def _from_command_line(ctx: typer.Context, parameter: str) -> bool:
    """Whether the command's ``parameter`` was typed (not taken from the environment)."""
    source = ctx.get_parameter_source(parameter)
    # by name: Typer may carry its own copy of Click's enum
    return source is not None and source.name == "COMMANDLINE"


def _check_access(host: str, token: str | None) -> None:
    """Off loopback, ``review`` needs an access token, long enough not to be guessed."""
    from leadprep.redact import register_secret
    from leadprep.review import is_loopback
    from leadprep.signin import MIN_TOKEN

    if not is_loopback(host) and not token:
        raise UsageError(
            f"--host {host} would let other machines reach the review; refusing to start "
            "without an access token.",
            hint="Set --token (or $LEADPREP_REVIEW_TOKEN) to a long random value and share "
            "the printed link, or keep the default --host 127.0.0.1.",
        )
    if token is not None and len(token) < MIN_TOKEN:
        raise UsageError(
            f"The access token is {len(token)} characters long; it needs at least "
            f"{MIN_TOKEN}, or it can be guessed.",
            hint='Make one with: python3 -c "import secrets; print(secrets.token_urlsafe(24))"',
        )
    if token:
        register_secret(token)


def _open_when_serving(server: uvicorn.Server, url: str) -> None:
    """Open the browser at ``url`` once the server accepts connections (in the background)."""
    import threading
    import time
    import webbrowser

    def wait_then_open() -> None:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.started:
            webbrowser.open(url)

    threading.Thread(target=wait_then_open, daemon=True).start()


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket for ``review``, bound now, so that a port in use or an address this
    machine does not have is a usage error before any browser is pointed at it."""
    import socket as sockets

    try:
        family = sockets.AF_INET6 if ":" in host else sockets.AF_INET
        listening = sockets.socket(family, sockets.SOCK_STREAM)
    except OSError as exc:
        raise UsageError(f"Cannot serve on {host}: {exc.strerror}.") from None
    try:
        listening.setsockopt(sockets.SOL_SOCKET, sockets.SO_REUSEADDR, 1)
        listening.bind((host.strip("[]"), port))
        listening.listen(128)
    except (OSError, OverflowError) as exc:
        listening.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(
            f"Cannot serve on {host} port {port}: {reason}.",
            hint="Choose another --port (another program uses this one), or a --host this "
            "machine has (127.0.0.1 by default).",
        ) from None
    return listening


@app.command()
def history(
    rep: str | None = typer.Option(None, "--rep", help="Only this rep (email)."),
    weeks: int = typer.Option(12, "--weeks", min=1, max=520, help="How many review dates."),
    format: str = typer.Option("table", "--format", help="table, json or csv."),
    as_of: str | None = AsOfOpt,
    config: Path | None = ConfigOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Each rep's weeks: pipeline hygiene, commitments made and followed up, kept rate."""
    with _errors(verbose):
        import csv
        import json

        from leadprep.history import rep_series, rows_for_table

        if format not in ("table", "json", "csv"):
            raise UsageError("--format is table, json or csv.")
        store, _ = _open_state(config, readonly=True)
        with store:
            series = rep_series(store, _as_of(as_of), weeks)
        if rep:
            series = [s for s in series if s.key == rep.strip().lower()]
        rows = rows_for_table(series)
        if format == "json":
            print(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        if format == "csv":
            from leadprep.sanitize import spreadsheet_cell

            writer = csv.DictWriter(sys.stdout, list(rows[0]) if rows else ["rep"])
            writer.writeheader()
            writer.writerows({k: spreadsheet_cell(v) for k, v in row.items()} for row in rows)
            return
        if not rows:
            out.print("No reviews recorded yet.")
            return
        table = Table(
            title=f"The last {weeks} reviews",
            title_justify="left",
            caption=HISTORY_CAPTION,
            caption_justify="left",
        )
        # Fits 80 columns: the dates and numbers never wrap or shorten; a long name wraps.
        table.add_column("Rep", ratio=1, overflow="fold")
        table.add_column("Review", no_wrap=True, min_width=10)
        for column in ("Deals", "Flagged", "High", "Moved", "Agreed", "Next", "Kept"):
            table.add_column(column, no_wrap=True, justify="right")
        for row in rows:
            if not row["reviewed"]:
                continue
            kept = "—" if row["kept_rate"] is None else f"{round(100 * row['kept_rate'])}%"
            agreed = str(row["commitments"]) if row["held"] else "—"
            table.add_row(
                escape(row["name"]),
                row["review"],
                str(row["open_deals"]),
                str(row["flagged"]),
                str(row["high_flags"]),
                str(row["close_moved"]),
                agreed,
                str(row["followed_up_next_review"]),
                kept,
            )
        out.print(table)


def _write_back(cfg: Config, *, quick: bool = False, dry_run: bool = False) -> bool:
    """Bring the CRM's tasks in step with the commitments, when write-back is on, and say how it
    went; returns whether everything went through (the CRM being down changes nothing recorded)."""
    from leadprep.writeback import said, write_back

    done = write_back(cfg, quick=quick, dry_run=dry_run)
    if done is None:
        return True
    report, crm = done
    for line in report.planned:
        out.print(escape(line))
    for line in said(report, crm):
        (err if report.unreachable or report.refused else out).print(escape(line))
    return not (report.unreachable or report.refused)


def _who() -> str:
    """Who records from the command line, and where: the audit line of a commitment."""
    import getpass
    import socket as sockets

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown user"
    return f"{user} on {sockets.gethostname()}, command line"


def _write_back_after(config_path: Path | None) -> None:
    """After a commitment or a follow-up is recorded: one quick try to write its task."""
    cfg, _ = _load(config_path)
    if cfg is not None:
        _write_back_safely(cfg, quick=True)


def _write_back_safely(cfg: Config, *, quick: bool = False) -> None:
    """Write-back at the end of another command: never a wait beyond one quick try for a commit,
    never that command's failure (what does not go now goes with the next sync)."""
    try:
        _write_back(cfg, quick=quick)
    except LeadprepError as exc:
        err.print(
            f"[yellow]note:[/] the tasks wait for the next sync: {escape(redact(exc.message))}"
        )


def _task_state(task: TaskRow | None, current: bool = True, closed: bool = False) -> str:
    """A commitment's task as the commitments table says it (``current``: the CRM has it as the
    commitment is now; ``closed``: the commitment was followed up)."""
    if task is None:
        return "—"
    if task.remote_id and task.state == "written":  # the id is in --format json
        if not current:
            return "written; the change goes with the next sync"
        return "closed" if closed else "written"
    if task.state == "refused":
        return f"refused: {task.error}"
    if task.state == "cancelled":
        return "deleted (replaced)"
    if task.attempted_at:
        return "sent, no answer: checked next sync"
    return "queued" + (f" ({task.error})" if task.error else "")


def _task_json(task: TaskRow) -> dict[str, object]:
    return {
        "state": task.state,
        "crm": task.crm,
        "id": task.remote_id,
        "key": task.key,
        "error": task.error,
    }


@app.command()
def sync(
    config: Path | None = ConfigOpt,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would be written; write nothing."
    ),
    verbose: bool = VerboseOpt,
) -> None:
    """Write commitments to the CRM as tasks and close them with their outcome (crm.<kind>.write_back.tasks)."""
    with _errors(verbose):
        cfg, _ = _load(config)
        if cfg is None or cfg.crm.kind in ("file", "demo"):
            kind = cfg.crm.kind if cfg is not None else "demo"
            raise UsageError(
                f"crm.kind {kind} cannot take tasks: only a CRM (HubSpot or Salesforce) is written back to.",
                hint="Commitments stay in the state file; `leadprep commitments` lists them.",
            )
        section = getattr(cfg.crm, cfg.crm.kind, None)
        if not getattr(getattr(section, "write_back", None), "tasks", False):
            raise UsageError(
                f"Writing tasks to {cfg.crm.kind} is off.",
                hint=f"Set crm.{cfg.crm.kind}.write_back.tasks: true in the config.",
            )
        if not _write_back(cfg, dry_run=dry_run):
            raise typer.Exit(EXIT_PARTIAL)


@app.command()
def init(
    path: Path = typer.Argument(Path("leadprep.yaml"), help="Where to write the config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    verbose: bool = VerboseOpt,
) -> None:
    """Write a commented config file to start from."""
    with _errors(verbose):
        from leadprep.render import packaged_templates

        if path.exists() and not force:
            raise UsageError(f"{path} already exists; use --force to overwrite it.")
        example = packaged_templates().parent / "config.example.yaml"
        if not example.is_file():
            example = Path(__file__).parent / "config.example.yaml"
        try:
            path.write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"Cannot write {path}: {exc.strerror}.") from None
        out.print(f"Wrote {path}. Edit it, then check it with: leadprep doctor --config {path}")


@app.command()
def doctor(
    config: Path | None = ConfigOpt,
    online: bool = typer.Option(
        False, "--online", help="Also ask each chat service whether it knows the webhook."
    ),
    as_of: str | None = AsOfOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Check the config, the data source, the state store and the templates; one line each."""
    with _errors(verbose):
        from leadprep.doctor import run_checks

        failures = 0
        for check in run_checks(config, online=online, as_of=_as_of(as_of)):
            mark = (
                "[red]FAIL[/]"
                if not check.ok
                else "[yellow]WARN[/]"
                if check.warn
                else "[green]ok[/]  "
            )
            out.print(f"{mark} {check.name}: {escape(redact(check.detail))}")
            failures += not check.ok
        raise typer.Exit(2 if failures else EXIT_OK)


state_app = typer.Typer(help="Look after the local state database.", no_args_is_help=True)
app.add_typer(state_app, name="state")


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


@state_app.command("info")
def state_info(config: Path | None = ConfigOpt, verbose: bool = VerboseOpt) -> None:
    """Where the state database is, how big, and how much of it is free space."""
    with _errors(verbose):
        from leadprep.store import Store

        cfg, _ = _load(config)
        path = (cfg or Config()).state_path()
        if not path.exists():
            out.print(f"{escape(path)}: not created yet (the first `leadprep prep` creates it)")
            return
        with Store.open(path, readonly=True) as store:
            size = store.size() if store.older_schema is None else None
            runs = store.runs.count()
            note = store.upgrade_note()
        if size is None:  # read through a copy in memory: the file's own size is on disk
            total = path.stat().st_size
            out.print(f"{escape(path)}: {_megabytes(total)}, {runs} run(s) recorded")
        else:
            out.print(
                f"{escape(path)}: {_megabytes(size.total)}, "
                f"{_megabytes(size.free)} free, {size.runs} run(s) recorded"
            )
        if note:
            out.print(escape(note))


@state_app.command("backup")
def state_backup(
    destination: Path = typer.Argument(
        ..., help="Where to write the copy (an older copy there is replaced)."
    ),
    config: Path | None = ConfigOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Write a consistent copy of the state database, safe while `serve` or a run writes."""
    with _errors(verbose):
        from leadprep.store import Store

        cfg, _ = _load(config)
        path = (cfg or Config()).state_path()
        if not path.exists():
            raise UsageError(f"{path} does not exist yet: there is nothing to back up.")
        if destination.exists() and destination.resolve() == path.resolve():
            raise UsageError("The backup must go to another file than the state database.")
        with Store.open(path, readonly=True) as store:
            store.backup(destination)
        out.print(f"Backed up {escape(path)} to {escape(destination)}.")


@state_app.command("vacuum")
def state_vacuum(config: Path | None = ConfigOpt, verbose: bool = VerboseOpt) -> None:
    """Prune old snapshots (state.keep_reviews) and give the free space back to the disk."""
    with _errors(verbose):
        from leadprep.store import Store

        cfg, _ = _load(config)
        cfg = cfg or Config()
        with Store.open(cfg.state_path()) as store:
            before = store.size()
            store.runs.prune(cfg.state.keep_reviews)
            store.vacuum()
            after = store.size()
        out.print(
            f"{escape(cfg.state_path())}: {_megabytes(before.total)} → {_megabytes(after.total)} "
            f"(keeping snapshots of the last {cfg.state.keep_reviews} reviews)"
        )


def _version(value: bool) -> None:
    if value:
        out.print(f"leadprep {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """leadprep: pipeline-review prep sheets from your CRM."""


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # closed while Typer itself wrote (help, usage errors)
        _quiet_closed_stdout()
        sys.exit(EXIT_PIPE_CLOSED)
