"""``leadprep doctor``: each check is one line, ok or why not."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from leadprep.config import ChatSettings, Config, find_config_path, load_config
from leadprep.connectors import Check, FetchResult, connector_for
from leadprep.connectors.file import owner_index
from leadprep.errors import LeadprepError
from leadprep.http import is_loopback_host
from leadprep.hygiene import widespread
from leadprep.packets import signal_context
from leadprep.prep import no_sheet
from leadprep.signals import (
    RIDER,
    SIGNALS,
    StuckInStageSettings,
    evaluate,
    limits_in_use,
    off_for_the_data,
)

__all__ = ["Check", "run_checks"]


def run_checks(
    config_path: Path | None, *, online: bool = False, as_of: date | None = None
) -> Iterator[Check]:
    """Run every check; stops early only when the config itself cannot be loaded. ``as_of``
    is the review day the signals are tried on (default today)."""
    try:
        path = find_config_path(config_path)
        config = load_config(path) if path else Config()
    except LeadprepError as exc:
        yield Check("config", False, str(exc))
        return
    yield Check(
        "config", True, str(path) if path else "no config file: the bundled demo pipeline is used"
    )
    yield from _crm(config, as_of or date.today())
    teams = config.teams
    reps = config.team_reps()
    yield Check(
        "teams",
        True,
        f"{len(teams)} manager(s), {len(reps)} rep(s)"
        if teams
        else "none configured: every deal owner gets a sheet",
    )
    yield _state(config)
    if config.email is not None:
        yield _email(config)
    if config.chat_configured:
        yield from _chat(config, online)
    if {"server", "directors"} & config.model_fields_set:
        yield server_check(config)
    yield _templates(config)
    yield _output(config)
    yield _pdf(config)


def server_check(config: Config) -> Check:
    """How `leadprep serve` signs people in, and what would surprise whoever runs it (a WARN)."""
    settings = config.server
    who = f"{len(config.teams)} team(s), {len(config.directors)} director(s)"
    if settings.sign_in == "proxy" and settings.proxy is not None:
        return Check(
            "serve",
            True,
            f"signed in by the proxy's {settings.proxy.header} header, believed from "
            f"{', '.join(settings.proxy.trusted)} only; {who}",
        )
    if settings.url is None:
        return Check(
            "serve",
            True,
            f"access links, {who}; server.url is not set, so `leadprep access add` prints "
            "links without the server's address",
            warn=True,
        )
    if not settings.secure and not is_loopback_host(urlsplit(settings.url).hostname):
        return Check(
            "serve",
            True,
            f"access links at {settings.url}, {who}; over plain http the sign-in cookie "
            "travels in clear: put TLS in front and set server.url to its https:// address",
            warn=True,
        )
    if not config.teams and not config.directors:
        return Check(
            "serve",
            True,
            f"access links at {settings.url}; no teams or directors in the config, so only "
            "managers the CRM names see their reps",
            warn=True,
        )
    return Check("serve", True, f"access links at {settings.url}; {who}")


def _crm(config: Config, as_of: date) -> Iterator[Check]:
    """The source's own checks (a file's rows; a service's login, scopes or objects, usage).
    A CRM service is retried little: doctor should answer quickly, not wait out a rate limit."""
    section = getattr(config.crm, config.crm.kind, None)
    if section is not None and hasattr(section, "retry"):
        quick = section.model_copy(
            update={"retry": section.retry.model_copy(update={"max_attempts": 2})}
        )
        config = config.model_copy(
            update={"crm": config.crm.model_copy(update={config.crm.kind: quick})}
        )
    try:
        connector = connector_for(config)
        yield from connector.diagnose()
        if config.crm.kind == "file":
            fetched = connector.fetch(config.team_reps() or None, as_of)
            if config.teams:
                yield from _team_coverage(config, fetched)
            yield from signal_checks(config, fetched, as_of)
    except LeadprepError as exc:
        yield Check("crm", False, str(exc))


def _team_coverage(config: Config, fetched: FetchResult) -> Iterator[Check]:
    """For an export: the owners no team lists, and the team's reps with no open deal in it."""
    team = config.team_reps()
    missing = no_sheet(fetched)
    if missing is not None:
        yield Check(
            "teams",
            True,
            f"{missing.count:,} of {missing.total:,} open deals go to no sheet: {missing.why}",
            warn=missing.most,
        )
    _, shared = owner_index(config.rep_names())
    if shared:
        listed = "; ".join(" and ".join(emails) for emails in shared.values())
        unrouted = sum(1 for p in fetched.problems if "cannot be told" in p.reason)
        yield Check(
            "teams",
            False,
            f"reps share a name ({listed}): {unrouted} row(s) that name only the owner go to no "
            "sheet. Export the owner's email too, or tell them apart by name in teams.",
        )
    with_deals = {d.owner.email for d in fetched.deals if d.is_open}
    names = config.rep_names()
    idle = sorted(names.get(e, e) for e in team - with_deals)
    if idle:
        every = len(idle) == len(team)  # not one listed rep has a deal: the wrong teams, likely
        yield Check("teams", True, f"no open deals in the data for: {', '.join(idle)}", warn=every)


def signal_checks(config: Config, fetched: FetchResult, as_of: date) -> Iterator[Check]:
    """The signals tried on the data: the limits in use, and WARN where the setup likely is not
    what was meant (most checks off, a flag on most deals, limits at defaults beside won deals)."""
    context, sparse = signal_context(fetched.deals, config, as_of, None, fetched.unsupported)
    open_deals = [d for d in fetched.deals if d.is_open]
    by_data = off_for_the_data(context.unsupported, sparse)
    off = [
        s.title
        for s in SIGNALS.values()
        if not config.signals.section(s.code).enabled or s in by_data
    ]
    if off:
        yield Check(
            "signals",
            True,
            f"{len(off)} of {len(SIGNALS)} checks off (switched off, or the data cannot support "
            f"them): {', '.join(off)}",
            warn=len(off) * 2 > len(SIGNALS),
        )
    limits = limits_in_use(context, open_deals)
    if limits:
        yield Check("signals", True, "stuck-in-stage limits: " + "; ".join(limits))
    stuck = config.signals.of(StuckInStageSettings)
    learned = context.limits.by_stage or context.limits.cycle
    if limits and stuck.learn and not learned and context.limits.won:
        yield Check(
            "signals",
            True,
            f"stuck-in-stage limits are defaults although the data holds "
            f"{context.limits.won:,} won deal(s): {stuck.min_sample} won deals with a "
            "created_at and a close date (or dated stage history) are needed to learn them; map "
            "created_at in crm.file.columns, or pin a limit (signals.stuck_in_stage.days)",
            warn=True,
        )
    if not open_deals:
        return
    counts: dict[str, int] = {}
    for deal in open_deals:
        for code in {f.code for f in evaluate(deal, context) if f.shown != RIDER}:
            counts[code] = counts.get(code, 0) + 1
    for code, count in sorted(counts.items(), key=lambda item: -item[1]):
        if widespread(count, len(open_deals)):  # the sheets' own rule for a shared line
            yield Check(
                "signals",
                True,
                f"{SIGNALS[code].title} on {count:,} of {len(open_deals):,} open deals: the sheets "
                f"state it once as a gap most deals share; if it is not real, adjust "
                f"signals.{code} in the config (docs/signals.md)",
                warn=True,
            )


def _state(config: Config) -> Check:
    from leadprep.store import Store
    from leadprep.store.migrations import written_by

    path = config.state_path()
    if not path.exists():
        return Check("state", True, f"{path} (created on the first run)")
    try:
        with Store.open(path, readonly=True) as store:
            size = store.size()
            store.commitments.all(status="open")  # reads a table, so a damaged file shows here
            older = store.older_schema
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    except LeadprepError as exc:
        return Check("state", False, str(exc))
    if not writable:
        return Check("state", False, f"{path} is read-only: prep, send and commit need to write it")
    if older is not None:  # read through an upgraded copy in memory: its size is not the file's
        return Check(
            "state",
            True,
            f"{path} ({size.runs} run(s) recorded, {path.stat().st_size / 1e6:,.1f} MB), written "
            f"by {written_by(older)}: the next `leadprep prep` upgrades it, losing nothing",
        )
    return Check(
        "state",
        True,
        f"{path} ({size.runs} run(s) recorded, {size.total / 1e6:,.1f} MB, "
        f"{size.free / 1e6:,.1f} MB free; `leadprep state vacuum` gives free space back)",
    )


def _email(config: Config) -> Check:
    """What `send` would refuse or warn about, without sending anything."""
    assert config.email is not None
    smtp = config.email.smtp
    try:
        config.require_env("email.")
    except LeadprepError as exc:
        return Check("email", False, str(exc))
    warning = smtp.cleartext_warning()
    if warning:
        return Check("email", False, warning)
    return Check(
        "email", True, f"{smtp.host}:{smtp.port} ({smtp.security}), from {config.email.from_}"
    )


def _templates(config: Config) -> Check:
    from leadprep.render import Renderer

    try:
        renderer = Renderer(config)
        bank = renderer.question_bank()
    except LeadprepError as exc:
        return Check("templates", False, str(exc))
    where = ", ".join(str(p) for p in renderer.search_path)
    detail = f"{len(bank.all_questions())} questions; searched {where}"
    if bank.borrowed:
        detail += (
            f"; your questions.yaml has none for {', '.join(bank.borrowed)}: the packaged ones "
            "are used (copy them in to change them)"
        )
    return Check("templates", True, detail, warn=bool(bank.borrowed))


def _output(config: Config) -> Check:
    folder = (config.output.dir or Path("prep-sheets")).resolve()
    probe = (
        folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("/"))
    )
    try:
        with tempfile.NamedTemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return Check("output", False, f"{folder} is not writable ({exc.strerror})")
    return Check(
        "output", True, f"{folder} ({', '.join(config.output.formats)}, {config.output.paper})"
    )


def _pdf(config: Config) -> Check:
    wanted = "pdf" in config.output.formats
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as exc:
        return Check(
            "pdf",
            not wanted,
            f"WeasyPrint not usable ({exc}); install leadprep[pdf] for --format pdf",
        )
    return Check("pdf", True, "WeasyPrint available")


_SLACK_HOSTS = ("hooks.slack.com",)
_TEAMS_HOSTS = (
    ".logic.azure.com",
    ".webhook.office.com",
    ".powerplatform.com",
    ".powerautomate.com",
)


def _chat(config: Config, online: bool) -> Iterator[Check]:
    """Each team's chat webhooks: set, shaped like the service's, and (``--online``) known to
    the service, without posting anything."""
    from urllib.parse import urlsplit

    from leadprep.config import is_loopback_host

    for path, variable in sorted(config.missing_env.items()):
        if path.startswith("chat.") or ".chat." in path:
            yield Check("chat", False, f"{path}: environment variable {variable} is not set")
    # Each team's own webhooks or the default; with no teams, the default is what every
    # manager's post goes to (managers come from the CRM then), so it is checked on its own.
    owners: list[tuple[str, ChatSettings | None]] = [
        (team.manager.name, config.chat_for(team.manager.email)) for team in config.teams
    ]
    if not config.teams or not all(t.chat is not None and t.chat.any for t in config.teams):
        owners.append(("chat (the default)", config.chat))
    seen: set[tuple[str, str]] = set()
    for owner, chat in owners:
        if chat is None or not chat.any:
            continue
        for kind in ("slack", "teams"):
            secret = getattr(chat, kind)
            if secret is None:
                continue
            url = secret.get_secret_value()
            if (kind, url) in seen:
                continue
            seen.add((kind, url))
            host = urlsplit(url).hostname or ""
            hosts = _SLACK_HOSTS if kind == "slack" else _TEAMS_HOSTS
            known = host in hosts or host.endswith(tuple(h for h in hosts if h.startswith(".")))
            where = f"{owner}: {kind} webhook"
            if not known and not is_loopback_host(host):
                service = "hooks.slack.com" if kind == "slack" else "a Teams Workflows address"
                yield Check("chat", False, f"{where} is not {service} ({host})")
                continue
            yield Check("chat", True, f"{where} ({host})")
            if online:
                yield _reachable(kind, url, where)


def _reachable(kind: str, url: str, where: str) -> Check:
    """Slack answers a POST with no message "invalid_payload" (400) when it knows the webhook,
    and posts nothing; Teams Workflows has no request that posts nothing."""
    if kind != "slack":
        return Check(
            "chat",
            True,
            f"{where}: Teams Workflows webhooks have no check that posts nothing: not checked",
        )
    import httpx

    try:
        response = httpx.post(url, content=b"", timeout=10)
    except httpx.HTTPError as exc:
        return Check("chat", False, f"{where}: cannot reach Slack ({type(exc).__name__})")
    answer = response.text.strip()[:60]
    if response.status_code == 400 and answer in ("invalid_payload", "no_text"):
        return Check("chat", True, f"{where}: Slack knows this webhook (nothing was posted)")
    return Check("chat", False, f"{where}: Slack answered {response.status_code} {answer}")
