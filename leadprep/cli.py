"""The ``leadprep`` command line. Thin: parse, load config, call the core, print, map errors to exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from leadprep import __version__
from leadprep.config import Config, find_config_path, load_config
from leadprep.errors import EXIT_OK, EXIT_PARTIAL, LeadprepError, UsageError
from leadprep.redact import RedactingFilter, redact

app = typer.Typer(
    name="leadprep",
    help="Turn your CRM into coaching: per-rep prep sheets for the weekly pipeline review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
log = logging.getLogger("leadprep")

ConfigOpt = typer.Option(
    None, "--config", "-c", help="Config file (else $LEADPREP_CONFIG, else ./leadprep.yaml)."
)
VerboseOpt = typer.Option(False, "--verbose", "-v", help="Debug log on stderr (secrets masked).")
AsOfOpt = typer.Option(
    None, "--as-of", help="Review date YYYY-MM-DD used as 'today' for every date calculation."
)


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("leadprep")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.propagate = False


@contextmanager
def _errors(verbose: bool) -> Iterator[None]:
    """Print LeadprepErrors as a few human lines and exit with their code; tracebacks only with -v."""
    _setup_logging(verbose)
    try:
        yield
    except LeadprepError as exc:
        if verbose:
            log.debug("traceback", exc_info=True)
        err.print(
            f"[bold red]error:[/] {redact(str(exc))}", markup=True, soft_wrap=True, highlight=False
        )
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


def _as_of(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--as-of {value!r} is not a date in YYYY-MM-DD form.") from None


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
    as_of: str | None = AsOfOpt,
    demo: bool = typer.Option(
        False, "--demo", help="Use the bundled demo pipeline, whatever the config says."
    ),
    verbose: bool = VerboseOpt,
) -> None:
    """Pull the pipeline, flag risk and write a question sheet per rep."""
    with _errors(verbose):
        from leadprep.connectors.demo import DemoConnector, demo_config
        from leadprep.prep import run_prep
        from leadprep.store import Store

        review = _as_of(as_of)
        cfg, path = (None, None) if demo else _load(config)
        if cfg is None and not demo:
            out.print(
                "No config found (--config, $LEADPREP_CONFIG, ./leadprep.yaml): running on the bundled demo pipeline."
            )
        use_demo = demo or cfg is None or cfg.crm.kind == "demo"
        if use_demo:
            base = cfg or Config()
            cfg = base.model_copy(update={"teams": demo_config().teams})
        assert cfg is not None
        formats = _formats(format, cfg)
        target = out_dir or cfg.output.dir or Path("prep-sheets")
        only = {r.strip().lower() for r in rep} or None

        connector = DemoConnector() if use_demo else None
        store = Store.memory() if use_demo else Store.open(cfg.state_path())
        log.debug("config %s, state %s", path or "(demo)", store.path or "(in memory)")
        with store:
            if use_demo:
                DemoConnector().seed(store, review)
            with _progress() as bar:
                task = bar.add_task("Writing sheets", total=None)

                def step(name: str) -> None:
                    bar.update(task, advance=1, description=f"Wrote {name}")

                result = run_prep(
                    cfg,
                    store,
                    as_of=review,
                    out_dir=target,
                    formats=formats,
                    only_reps=only,
                    connector=connector,
                    progress=step,
                )
        if only and not result.packets:
            raise UsageError(f"No rep matches {', '.join(sorted(only))} in this pipeline.")
        for note in result.notes:
            err.print(f"[yellow]note:[/] {escape(note)}")
        _print_summary(result)
        if result.problems:
            err.print(f"[yellow]{len(result.problems)} record(s) skipped:[/]")
            for problem in result.problems:
                err.print(f"  {problem}", markup=False)
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


def _print_summary(result) -> None:  # type: ignore[no-untyped-def]
    table = Table(
        title=f"Review {result.as_of.isoformat()} · source: {result.source}", title_justify="left"
    )
    for column in ("Rep", "Open deals", "Flagged", "High", "Focus", "Changed", "Commitments"):
        table.add_column(column, justify="left" if column == "Rep" else "right")
    for p in result.packets:
        table.add_row(
            escape(p.rep.name),
            str(len(p.deals)),
            str(len(p.flagged)),
            str(sum(1 for d in p.flagged if d.top_severity == "high")),
            str(len(p.focus)),
            str(len(p.changed)) if p.previous_review else "—",
            str(len(p.deliver)),
        )
    out.print(table)
    if result.previous_review is None:
        out.print("First review on record: 'what changed' starts with the next run.")
    index = (result.out_dir / "index.html").resolve()
    out.print(f"Sheets written to {result.out_dir.resolve()}  (open {index})")


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
def doctor(config: Path | None = ConfigOpt, verbose: bool = VerboseOpt) -> None:
    """Check the config, the data source, the state store and the templates; one line each."""
    with _errors(verbose):
        from leadprep.doctor import run_checks

        failures = 0
        for check in run_checks(config):
            mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
            out.print(f"{mark} {check.name}: {escape(redact(check.detail))}")
            failures += not check.ok
        raise typer.Exit(2 if failures else EXIT_OK)


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
    app()
