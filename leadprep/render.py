"""Rendering packets: the Jinja environment and the HTML, Markdown, JSON and PDF writers.

Autoescape is on for every HTML template (CRM text is untrusted) and undefined variables are
errors. A user template folder (``output.templates``) is searched before the packaged templates,
so a team can override one template, or the question bank, without copying the rest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    TemplateError,
)
from markupsafe import Markup

from leadprep import __version__
from leadprep.config import Config
from leadprep.errors import ConfigError, OutputError
from leadprep.formatting import ago, money, money_totals, percent, plural, short_date
from leadprep.history import Series, sparkline
from leadprep.hygiene import team_lines
from leadprep.money import quarter_name, sentence, summed
from leadprep.packets import Packet, currency_totals, packet_json, packets_json
from leadprep.questions import QuestionBank, load_bank
from leadprep.rollup import blocks
from leadprep.sanitize import clean_text, markdown_link_target, safe_url, shell_quote
from leadprep.signals import FLAG_TITLES, CloseDateSlippedSettings
from leadprep.timeline import close_date_chart

FORMATS = ("html", "md", "json", "pdf")
SEVERITY_MARK = {"high": "▲ HIGH", "medium": "■ MED", "low": "● LOW"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|])")


def packaged_templates() -> Path:
    """The templates shipped with leadprep (inside the wheel, or the source checkout's)."""
    inside = Path(__file__).parent / "templates"
    if inside.is_dir():
        return inside
    return Path(__file__).resolve().parent.parent / "templates"


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".html"))


def md_escape(value: Any) -> str:
    """Escape text for Markdown so CRM text cannot inject markup (or raw HTML): special
    characters are backslash-escaped, control characters dropped, line breaks folded."""
    text = clean_text(str(value)) or ""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def md_url(value: Any) -> str:
    """A link target for Markdown ``[text](target)``: only http(s), percent-encoded; empty
    when the URL is not one a sheet may link to."""
    url = safe_url(str(value)) if value else None
    return markdown_link_target(url) if url else ""


def make_environment(search_path: list[Path]) -> Environment:
    """The Jinja environment: templates from ``search_path`` in order (a user folder first), and
    the packaged ones also as ``default:<name>``, so a user template can extend the one it
    replaces (``{% extends "default:packet.html.j2" %}``) and change a single block."""
    packaged = FileSystemLoader(str(packaged_templates()))
    env = Environment(
        loader=ChoiceLoader(
            [
                *(FileSystemLoader(str(p)) for p in search_path),
                PrefixLoader({"default": packaged}, delimiter=":"),
            ]
        ),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        money=lambda amount, currency="USD": money(amount, currency),
        money_totals=money_totals,
        pipeline_value=lambda packet: (
            money_totals(packet.open_totals) if packet.amounts_known else "unknown"
        ),
        short_date=short_date,
        ago=ago,
        percent=percent,
        plural=plural,
        md=md_escape,
        md_url=md_url,
        safe_url=lambda value: safe_url(value) if isinstance(value, str) else None,
        sh=lambda value: shell_quote(str(value)),
        mark=lambda severity: SEVERITY_MARK.get(severity, severity),
        flag_title=lambda code: FLAG_TITLES.get(code, code),
        close_date_chart=close_date_chart,
        money_sentence=sentence,
        summed=summed,
        spark=_spark,
        ratio=lambda value, digits=1: "—" if value is None else f"{value:.{digits}f}",
        share=lambda value: "—" if value is None else f"{round(100 * value)}%",
    )
    return env


def _spark(values: Iterable[float | None], width: int = 96, share: bool = False) -> Markup:
    """A labelled sparkline (first and last value written at its ends): a share on a 0–100%
    scale (the rollup's kept rate is drawn the same way), a count up to its largest value."""
    label = (lambda v: f"{round(100 * v)}%") if share else (lambda v: f"{v:g}")
    drawn = sparkline(list(values), width=width, top=1.0 if share else None, label=label)
    return Markup(drawn)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write via a temporary file so a crash never leaves a half-written sheet behind; ``data``
    may come in chunks, so a large file is never held whole in memory."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                handle.writelines(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Renderer:
    """Renders packets with the configured templates and paper size."""

    def __init__(self, config: Config, *, demo: bool = False) -> None:
        self.config = config
        self.demo = demo  # the bundled demo: commands on the sheet point to `review --demo`
        self.search_path = [packaged_templates()]
        user = config.output.templates
        if user is not None:
            if not user.is_dir():
                raise ConfigError(f"output.templates: {user} is not a folder.")
            self.search_path.insert(0, user)
        self.env = make_environment(self.search_path)
        self.paper = config.output.paper

    def question_bank(self) -> QuestionBank:
        for folder in self.search_path:
            candidate = folder / "questions.yaml"
            if candidate.is_file():
                packaged = packaged_templates() / "questions.yaml"
                return load_bank(candidate, None if candidate == packaged else packaged)
        raise ConfigError("No questions.yaml found in the template folders.")

    def _config_arg(self) -> str:
        """`` -c '/abs/path/leadprep.yaml'`` for commands printed on the sheet, so they work from
        any folder (empty when the config came from nowhere)."""
        path = self.config.source_path
        return f" -c {shell_quote(str(path.resolve()))}" if path else ""

    def _render(self, name: str, **context: Any) -> str:
        try:
            return self.env.get_template(name).render(
                paper=self.paper,
                version=__version__,
                demo=self.demo,
                config_arg=self._config_arg(),
                **context,
            )
        except TemplateError as exc:
            raise OutputError(f"Template {name} failed: {exc}") from exc

    def render_text(self, name: str, **context: Any) -> str:
        """Any template by name (emails use this)."""
        return self._render(name, **context)

    def packet_html(self, packet: Packet, *, standalone: bool = True) -> str:
        return self._render(
            "packet.html.j2", packet=packet, packets=[packet], standalone=standalone
        )

    def packet_markdown(self, packet: Packet) -> str:
        return self._render("packet.md.j2", packet=packet)

    def index_html(
        self,
        packets: list[Packet],
        as_of: date,
        source: str,
        files: dict[str, list[str]],
        rollup: bool = False,
        no_sheet: Any = None,
    ) -> str:
        """The manager's index: reps grouped under their manager, each team with its totals,
        the gaps most of the team's deals share, and the deals that went to no sheet."""
        teams: dict[str, list[Packet]] = {}
        for packet in packets:
            teams.setdefault(packet.manager.email if packet.manager else "", []).append(packet)
        grouped = sorted(
            (sorted(group, key=need) for group in teams.values()),
            key=lambda group: (
                group[0].manager is None,
                group[0].manager.name if group[0].manager else "",
            ),
        )
        return self._render(
            "index.html.j2",
            packets=packets,
            teams=grouped,
            as_of=as_of,
            source=source,
            files=files,
            rollup=rollup,
            unassigned=no_sheet,
            quarter=self.quarter(as_of),
            amounts_known=any(p.deals and p.amounts_known for p in packets),
            hygiene=team_lines(p.deals for p in packets),
            limits=packets[0].limits if packets else [],
        )

    def quarter(self, as_of: date) -> str:
        """The fiscal quarter of ``as_of`` (``Q4``), as the config's fiscal year counts it."""
        start = self.config.signals.of(CloseDateSlippedSettings).fiscal_year_start_month
        return quarter_name(as_of, start)

    def stage(self, out_dir: Path) -> Staging:
        """A hidden staging folder inside ``out_dir`` (created now, so an unwritable output
        folder fails before any CRM call or state change)."""
        return Staging.create(out_dir)

    def write(
        self,
        packets: list[Packet],
        staging: Staging,
        formats: list[str],
        *,
        as_of: date,
        source: str,
        progress: Callable[[str], None] | None = None,
        rollup: list[Series] | None = None,
        no_sheet: Any = None,
    ) -> None:
        """Render every requested format into ``staging`` (and ``rollup.html`` when given the
        teams' series); nothing reaches the output folder until :meth:`Staging.publish`."""
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise OutputError(
                f"Unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}."
            )
        layout = _pdf_layout() if "pdf" in formats else None
        laid_out = []
        per_rep: dict[str, list[str]] = {}
        for packet in packets:
            names = []
            document = None
            if layout is not None:  # first: fitting the pages sets how many rows print
                document = self._fit(packet, layout, staging.out_dir)
                laid_out.append(document)
            if "html" in formats:
                names.append(staging.put(f"{packet.slug}.html", self.packet_html(packet)))
            if "md" in formats:
                names.append(staging.put(f"{packet.slug}.md", self.packet_markdown(packet)))
            if document is not None:
                names.append(staging.put(f"{packet.slug}.pdf", document.write_pdf()))
            per_rep[packet.slug] = names
            if progress:
                progress(packet.rep.name)
        if laid_out:
            # Each rep's pages as laid out on their own, so "page 1 of 2" restarts for every rep.
            pages = [page for document in laid_out for page in document.pages]
            staging.put("packets.pdf", laid_out[0].copy(pages).write_pdf())
        if "json" in formats:
            staging.put("packets.json", _packets_json_bytes(packets, as_of, source))
        staging.put(
            "index.html",
            self.index_html(packets, as_of, source, per_rep, rollup is not None, no_sheet),
        )
        if rollup is not None:
            staging.put(
                "rollup.html",
                self.rollup_html(rollup, as_of, source),
            )

    def rollup_html(self, teams: list[Series], as_of: date, source: str, **served: Any) -> str:
        """The director's page: each team's line and its rows, against its targets (``served``:
        the server's context — who is signed in — when it is a page of ``leadprep serve``)."""
        return self.render_text(
            "rollup.html.j2",
            blocks=blocks(teams, self.config.targets_for, self.quarter(as_of)),
            as_of=as_of,
            source=source,
            served=bool(served),
            **served,
        )

    def _fit(self, packet: Packet, layout: Callable[[str, Path], Any], base: Path) -> Any:
        """Lay the sheet out so the conversation (Deliver, Listen, the deep deal, Agree) is on the
        front page, compacting it when it is not (no close-date chart, fewer cues), and print fewer
        of the other and departed deals until it fits on two pages (or on as few as its focus
        deals alone need, when that is more); the rest stay in the HTML sheet and packets.json,
        and the page says so."""
        document = layout(self.packet_html(packet), base)
        while not _agree_on_front(document, packet) and packet.compact < MOST_COMPACT:
            packet.compact += 1
            document = layout(self.packet_html(packet), base)
        if len(document.pages) <= MAX_PAGES:
            return document
        wanted = (packet.printed_others, packet.printed_departed)
        packet.printed_others = packet.printed_departed = 0
        bare = layout(self.packet_html(packet), base)
        target = max(MAX_PAGES, len(bare.pages))
        packet.printed_others, packet.printed_departed = wanted
        while len(document.pages) > target and packet.fewer_printed():
            document = layout(self.packet_html(packet), base)
        return document

    def packet_pdf(self, packet: Packet) -> bytes:
        """One rep's sheet as a PDF, fitted as ``prep`` fits it (the packet's printed rows change)."""
        document = self._fit(packet, _pdf_layout(), packaged_templates())
        pdf: bytes = document.write_pdf()
        return pdf

    def write_to(
        self, packets: list[Packet], out_dir: Path, formats: list[str], **options: Any
    ) -> list[Path]:
        """Stage, write and publish in one go (no state to record in between)."""
        staging = self.stage(out_dir)
        try:
            self.write(packets, staging, formats, **options)
            return staging.publish()
        finally:
            staging.discard()


def need(packet: Packet) -> tuple[Any, ...]:
    """Who needs the manager most, first: overdue commitments, then deals carrying a high flag
    (by their number, then the amount in the rep's main currency), then the name."""
    overdue = sum(1 for item in packet.deliver if item.overdue)
    high = [v for v in packet.deals if v.top_severity == "high"]
    main = max(currency_totals(v.deal for v in high).values(), default=Decimal(0))
    return (-overdue, -len(high), -main, packet.rep.name.lower())


MAX_PAGES = 2  # a sheet is one sheet of paper, printed on both sides
MOST_COMPACT = 2  # the levels of Packet.compact


def _agree_on_front(document: Any, packet: Packet) -> bool:
    """Whether the end of Agree (its last write-in line) is laid out on the first page."""
    return bool(document.pages) and f"agree-end-{packet.slug}" in document.pages[0].anchors


def _write_file(path: Path, data: str | bytes | Iterable[bytes]) -> None:
    with path.open("wb") as handle:
        if isinstance(data, str):
            handle.write(data.encode("utf-8"))
        elif isinstance(data, bytes):
            handle.write(data)
        else:
            handle.writelines(data)


ABANDONED_AFTER = 24 * 3600  # seconds after which a staging folder is left over, whatever


def _running(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's), or we cannot tell: keep its folder
    return True


class Staging:
    """This run's files, written to a hidden folder beside their final place and moved there
    together once everything rendered: a failed or full-disk run leaves last week's sheets as
    they were."""

    PREFIX = ".leadprep-staging-"

    def __init__(self, out_dir: Path, folder: Path, created: list[Path] | None = None) -> None:
        self.out_dir = out_dir
        self.folder = folder
        self.names: list[str] = []
        self.published = False
        self._created = created or []  # folders made for this run, innermost first

    @classmethod
    def create(cls, out_dir: Path) -> Staging:
        created = [p for p in (out_dir, *out_dir.parents) if not p.exists()]
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            cls.remove_abandoned(out_dir)
            folder = Path(tempfile.mkdtemp(dir=out_dir, prefix=f"{cls.PREFIX}{os.getpid()}-"))
        except OSError as exc:
            raise OutputError(
                f"Cannot write to the output folder {out_dir}: {exc.strerror}.",
                hint="Pass --out to a writable folder, or set output.dir in the config.",
            ) from None
        return cls(out_dir, folder, created)

    @classmethod
    def remove_abandoned(cls, out_dir: Path) -> None:
        """Remove the staging folders of runs that were killed (``kill -9``, a power cut): their
        process is gone, or (a folder whose process cannot be told) they are a day old. A run
        going on right now keeps its own."""
        for folder in out_dir.glob(f"{cls.PREFIX}*"):
            pid = folder.name.removeprefix(cls.PREFIX).split("-", 1)[0]
            try:
                old = time.time() - folder.stat().st_mtime > ABANDONED_AFTER
            except OSError:
                continue
            if (pid.isdigit() and not _running(int(pid))) or old:
                shutil.rmtree(folder, ignore_errors=True)

    def put(self, name: str, data: str | bytes | Iterable[bytes]) -> str:
        """Write one file into the staging folder; returns its name."""
        path = self.folder / name
        try:
            _write_file(path, data)
        except OSError as exc:
            self.discard()
            raise OutputError(
                f"Cannot write {name} in {self.out_dir}: {exc.strerror}. "
                "Nothing was changed there; last week's sheets are as they were.",
                hint="Free some space or pass --out to another folder, then run again.",
            ) from None
        os.chmod(path, 0o666 & ~_umask())
        self.names.append(name)
        return name

    def publish(self) -> list[Path]:
        """Move every staged file into the output folder; returns their final paths."""
        final = []
        try:
            for name in self.names:
                target = self.out_dir / name
                os.replace(self.folder / name, target)
                final.append(target)
        except OSError as exc:
            raise OutputError(
                f"Cannot move the new sheets into {self.out_dir}: {exc.strerror}."
            ) from None
        finally:
            self.published = True
            self.discard()
        return final

    def discard(self) -> None:
        """Remove the staging folder and whatever is left in it; when nothing was published,
        also the output folders this run created, so a failed run leaves no trace."""
        shutil.rmtree(self.folder, ignore_errors=True)
        if not self.published:
            for folder in self._created:
                try:
                    folder.rmdir()
                except OSError:
                    break


def _packets_json_bytes(packets: list[Packet], as_of: date, source: str) -> Iterator[bytes]:
    """``packets.json``, encoded one packet at a time so a large team never holds the whole
    document as Python objects; no indent, since the indenting encoder is pure Python and ten
    times slower."""
    head = packets_json([], as_of, source)
    prefix = json.dumps(head, ensure_ascii=False)[: -len("]}")]  # ... "packets": [
    yield prefix.encode()
    for index, packet in enumerate(packets):
        if index:
            yield b", "
        yield json.dumps(packet_json(packet), ensure_ascii=False).encode()
    yield b"]}\n"


def _pdf_layout() -> Callable[[str, Path], Any]:
    """A function that lays out one HTML sheet as a WeasyPrint document (pages, then PDF)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise OutputError(
            f"PDF output needs WeasyPrint, which is not usable here ({exc}).",
            hint="Install the extra: pip install 'leadprep[pdf]' (and the Pango library on Linux).",
        ) from None

    # Sheets are self-contained: a template asking for a remote file must not reach the network.
    try:
        from weasyprint.urls import URLFetcher

        local_only: Any = URLFetcher(allowed_protocols={"data", "file"})
    except ImportError:  # WeasyPrint before URLFetcher
        from weasyprint.urls import default_url_fetcher

        def local_only(url: str, *args: Any, **kwargs: Any) -> Any:
            if not url.startswith(("data:", "file:")):
                raise ValueError(f"URI uses disallowed protocol: {url}")
            return default_url_fetcher(url, *args, **kwargs)

    def layout(html: str, base: Path) -> Any:
        return HTML(string=html, base_url=str(base), url_fetcher=local_only).render()

    return layout
