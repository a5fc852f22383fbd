"""Configuration: find the YAML file, resolve ``${VAR}`` references from the environment and
validate everything with pydantic, reporting every problem at once with its key path."""

from __future__ import annotations

import os
import re
import string
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

import yaml
from platformdirs import user_data_path
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from leadprep.errors import ConfigError
from leadprep.http import RetrySettings, api_base_url, is_loopback_host
from leadprep.measures import parse_target
from leadprep.redact import register_secret
from leadprep.registry import SOURCES
from leadprep.sanitize import UnsafeValue, email_address
from leadprep.settings import Section
from leadprep.signals import SignalSettings

CONFIG_ENV = "LEADPREP_CONFIG"
STATE_ENV = "LEADPREP_STATE"
DEFAULT_CONFIG_NAME = "leadprep.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NOT_IN_LINKS = set('<>|"`\\{}^')  # would end or break a Slack <url|text> or a Markdown link
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _email(value: str) -> str:
    # The same rule as every address leadprep sends to (sanitize.email_address), so that an
    # address the config accepts can never stop `send` halfway.
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address")
    if not value.isascii():
        raise ValueError(
            f"{value!r} has characters outside ASCII, which leadprep cannot send to "
            "(no SMTPUTF8): give the mailbox's ASCII address"
        )
    try:
        return email_address(value) or ""
    except UnsafeValue as exc:
        raise ValueError(str(exc)) from None


Email = Annotated[str, AfterValidator(_email)]


# --- CRM -----------------------------------------------------------------------------------------


class CRMSection(Section):
    """The ``crm`` section: ``kind``, and a section per registered source that takes settings
    (its fields are generated from :data:`leadprep.registry.SOURCES`)."""

    kind: str = "demo"

    @model_validator(mode="after")
    def _section_for_kind(self) -> CRMSection:
        entry = SOURCES.get(self.kind)
        if entry is None or entry.settings is None:
            return self  # the kind's own Literal refuses an unknown one
        section = getattr(self, self.kind, None)
        if section is None:
            missing = getattr(entry.settings, "WHEN_MISSING", None)
            raise ValueError(
                missing or f"crm.kind is {self.kind!r} but there is no crm.{self.kind} section"
            )
        problems = section.problems_in_use() if hasattr(section, "problems_in_use") else []
        if problems:
            raise ValueError("; ".join(problems))
        return self


def crm_settings_model() -> type[CRMSection]:
    """The ``crm`` section's model, from the sources registered now."""
    entries = SOURCES.entries()
    fields: dict[str, Any] = {"kind": (Literal[tuple(entries)], "demo")}
    for kind, entry in entries.items():
        if entry.settings is not None:
            fields[kind] = (entry.settings | None, None)
    return create_model("CRMSettings", __base__=CRMSection, **fields)


if TYPE_CHECKING:  # the sections' names are the registered kinds: known at run time only
    CRMSettings = CRMSection
else:
    CRMSettings = crm_settings_model()


# --- teams ---------------------------------------------------------------------------------------


def _targets(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("give each target as name: value, e.g. kept_rate: 70%")
    targets, problems = {}, []
    for key, raw in value.items():
        try:
            targets[str(key)] = parse_target(str(key), raw)
        except ValueError as problem:
            problems.append(str(problem))
    if problems:
        raise ValueError("; ".join(problems))
    return targets


# A team's targets for the rollup's numbers ("kept_rate: 70%"), by the measures' stable names.
Targets = Annotated[dict[str, float], BeforeValidator(_targets)]


class Person(Section):
    name: str
    email: Email


_NAMED_ADDRESS = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>]+)>\s*$")


class Team(Section):
    manager: Person
    reps: list[Email] = []
    chat: ChatSettings | None = None  # else the top-level chat section
    targets: Targets = {}  # over the top-level targets, for this team
    # Set from ``reps`` entries written "Alex Morgan <alex@example.com>" or {name, email}: how
    # an export that names owners (not their emails) is matched to the team.
    rep_names: dict[str, str] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _named_reps(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("reps"), list):
            return data
        emails, names = [], {}
        for entry in data["reps"]:
            name, email = None, entry
            if isinstance(entry, dict) and set(entry) <= {"name", "email"}:
                name, email = entry.get("name"), entry.get("email")
            elif isinstance(entry, str) and (match := _NAMED_ADDRESS.match(entry)):
                name, email = match.group("name"), match.group("email")
            emails.append(email)
            if isinstance(name, str) and name.strip() and isinstance(email, str):
                names[email.strip().lower()] = name.strip()
        return {**data, "reps": emails, "rep_names": names}


# --- review, output, state, email, schedule ------------------------------------------------------

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class ReviewSettings(Section):
    focus_deals: int = Field(3, ge=1, le=10)
    weekday: Weekday = "monday"


def _web_parts(value: str, key: str, what: str) -> SplitResult:
    """``value`` split as an http(s) address with a host, or the ValueError naming ``key``."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{key} must be an http(s) address with a host, {what}")
    return parts


class OutputSettings(Section):
    dir: Path | None = None
    # where the output folder is published (a file share, an intranet page): chat messages link
    # to the sheets there; without it they carry no link (never a local path)
    base_url: str | None = None

    @field_validator("base_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = value.strip()
        parts = _web_parts(value, "base_url", "where the sheets are published")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "base_url must not carry a user name or password: it is posted in every chat "
                "message's links"
            )
        bad = sorted({ch for ch in value if ch in _NOT_IN_LINKS or not ch.isprintable()})
        if bad or any(ch.isspace() for ch in value):
            raise ValueError(
                f"base_url has characters a chat link cannot carry ({' '.join(map(repr, bad)) or 'a space'}); "
                "percent-encode them"
            )
        return value.rstrip("/")

    formats: list[Literal["html", "md", "json", "pdf"]] = ["html", "md"]
    paper: Literal["letter", "a4"] = "letter"
    templates: Path | None = None


class StateSettings(Section):
    path: Path | None = None
    keep_reviews: int = Field(
        26,
        ge=2,
        le=520,
        description="Deal snapshots kept for this many review dates; older ones are pruned "
        "(runs, commitments and deliveries are always kept).",
    )


class SMTPSettings(Section):
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = Field(30, gt=0)

    @property
    def password_in_clear(self) -> bool:
        """Whether a login would send the password unencrypted across a network."""
        return (
            self.security == "none"
            and self.password is not None
            and not is_loopback_host(self.host)
        )

    def cleartext_warning(self) -> str | None:
        if not self.password_in_clear:
            return None
        return (
            f"email.smtp has security: none, so the SMTP password goes to {self.host} "
            "unencrypted; set security: starttls (port 587) or ssl (port 465)"
        )


SUBJECT_FIELDS = {
    "week": "the review week, e.g. 'week of Nov 30'",
    "reps": "how many reps' sheets the email carries",
    "date": "the review date, e.g. 2026-11-30",
}


def check_subject(subject: str) -> str:
    """``subject`` when its only placeholders are plain ``{week}``, ``{reps}`` and ``{date}``
    (``{{`` and ``}}`` for literal braces); raises ValueError naming what is wrong."""
    try:
        parts = list(string.Formatter().parse(subject))
    except ValueError as exc:
        raise ValueError(
            f"subject {subject!r} has an unbalanced brace ({exc}); write {{{{ or }}}} for a literal one"
        ) from None
    known = ", ".join("{" + name + "}" for name in SUBJECT_FIELDS)
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in SUBJECT_FIELDS or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise ValueError(f"subject placeholder {shown} is not one of {known}")
    if "\n" in subject or "\r" in subject:
        raise ValueError("subject must be one line")
    return subject


def format_subject(subject: str, **values: str | int) -> str:
    """The subject with its (already checked) placeholders filled in."""
    return check_subject(subject).format_map({k: values[k] for k in SUBJECT_FIELDS})


class EmailSettings(Section):
    smtp: SMTPSettings
    from_: str = Field(alias="from")
    to_reps: bool = False
    subject: Annotated[str, AfterValidator(check_subject)] = "Pipeline review prep · {week}"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _sender(self) -> EmailSettings:
        from email.utils import parseaddr

        _, address = parseaddr(self.from_)
        if not address or not _EMAIL.match(address):
            raise ValueError(
                f"from: {self.from_!r} is not an address like 'Pipeline prep <prep@example.com>'"
            )
        return self


class ChatSettings(Section):
    """Chat webhooks a team's prep is posted to: a Slack incoming webhook and/or a Microsoft
    Teams Workflows webhook. Both are secrets (anyone with the URL can post), so the config
    names an environment variable: ``slack: "${SLACK_WEBHOOK_DANA}"``."""

    slack: SecretStr | None = None
    teams: SecretStr | None = None
    retry: RetrySettings = RetrySettings(max_attempts=4, base_delay=1.0, timeout=15.0)

    @model_validator(mode="after")
    def _https(self) -> ChatSettings:
        for name in ("slack", "teams"):
            value = getattr(self, name)
            if value is not None:
                api_base_url(value.get_secret_value(), f"chat.{name}", query=True)
        return self

    @property
    def any(self) -> bool:
        return self.slack is not None or self.teams is not None


class ScheduleSettings(Section):
    cron: str = "0 7 * * MON"
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _valid(self) -> ScheduleSettings:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from croniter import croniter

        if not croniter.is_valid(self.cron):
            raise ValueError(
                f"cron {self.cron!r} is not a cron expression (minute hour day month weekday)"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {self.timezone!r} is not an IANA zone like America/New_York"
            ) from None
        return self


# --- the org server ------------------------------------------------------------------------------


class ProxySignIn(Section):
    """Behind a reverse proxy that authenticates (oauth2-proxy, any SSO proxy): the signed-in
    person's email in one header, believed only from the proxy's own addresses."""

    header: str = "X-Forwarded-Email"
    trusted: list[str] = Field(
        default_factory=list, description="The proxy's addresses (CIDRs); nothing else is believed."
    )

    @field_validator("header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        value = value.strip()
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
            raise ValueError(f"{value!r} is not an HTTP header name (letters, digits, '-')")
        return value

    @field_validator("trusted")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        if not value:
            raise ValueError(
                "list the proxy's addresses (e.g. [127.0.0.1/32]): the identity header is "
                "believed only from them"
            )
        networks = []
        for entry in value:
            try:
                network = ipaddress.ip_network(str(entry).strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or a network (CIDR)") from None
            if network.prefixlen == 0:
                raise ValueError(
                    f"{entry} trusts every address: anyone could then claim to be anyone; "
                    "list the proxy's own addresses"
                )
            networks.append(str(network))
        return networks


class LinkSettings(Section):
    days: int = Field(90, ge=1, le=400, description="How long a new access link is valid.")


class ServerSettings(Section):
    """``leadprep serve``: how people sign in, and the address links to it start with."""

    sign_in: Literal["links", "proxy"] = "links"
    url: str | None = None  # the address people open (https://leadprep.example.com)
    proxy: ProxySignIn | None = None
    links: LinkSettings = LinkSettings()

    @field_validator("url")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return value
        value = value.strip()
        parts = _web_parts(value, "url", "as people open it")
        if parts.username is not None or parts.password is not None or parts.query:
            raise ValueError("url is the server's address only: no user name, password or query")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _proxy_when_asked(self) -> ServerSettings:
        if self.sign_in == "proxy" and self.proxy is None:
            raise ValueError(
                "sign_in: proxy needs a proxy section: {header: X-Forwarded-Email, "
                "trusted: [the proxy's address]}"
            )
        return self

    @property
    def secure(self) -> bool:
        """Whether people reach the server over https (its cookies are then Secure)."""
        return bool(self.url and self.url.startswith("https://"))


class Config(Section):
    crm: CRMSettings = CRMSettings()
    teams: list[Team] = []
    signals: SignalSettings = SignalSettings()
    review: ReviewSettings = ReviewSettings()
    output: OutputSettings = OutputSettings()
    state: StateSettings = StateSettings()
    email: EmailSettings | None = None
    chat: ChatSettings | None = None  # the default for teams without their own
    schedule: ScheduleSettings | None = None
    targets: Targets = {}  # every team's, unless the team sets its own
    directors: list[Email] = []  # see every team and the rollup on `leadprep serve`
    server: ServerSettings = ServerSettings()

    source_path: Path | None = Field(default=None, exclude=True)
    missing_env: dict[str, str] = Field(default_factory=dict, exclude=True)  # key path -> variable

    @model_validator(mode="after")
    def _each_person_once(self) -> Config:
        # A rep under two managers would get one of them silently (the first listed); a manager
        # on two entries would get one entry's chat for both teams.
        managers: dict[str, list[str]] = {}
        for team in self.teams:
            for rep in dict.fromkeys(team.reps):
                managers.setdefault(rep, []).append(team.manager.email)
        heads = [team.manager.email for team in self.teams]
        repeated = sorted({m for m in heads if heads.count(m) > 1})
        if repeated:
            raise ValueError(
                f"teams: {', '.join(repeated)} manage{'s' if len(repeated) == 1 else ''} more "
                "than one team entry; list each manager once, with all their reps (and one chat)"
            )
        twice = {rep: m for rep, m in managers.items() if len(m) > 1}
        if twice:
            listed = "; ".join(f"{rep} under {' and '.join(m)}" for rep, m in twice.items())
            raise ValueError(
                f"teams: a rep is listed under more than one manager ({listed}); each rep's "
                "sheet goes to one manager, so list each rep once"
            )
        return self

    def targets_for(self, manager_email: str) -> dict[str, float]:
        """A team's targets: the top-level ones, with the team's own over them."""
        team = next((t for t in self.teams if t.manager.email == manager_email), None)
        return {**self.targets, **(team.targets if team else {})}

    def chat_for(self, manager_email: str) -> ChatSettings | None:
        """The webhooks a manager's team posts to: the team's own, else the top-level ones."""
        team = next((t for t in self.teams if t.manager.email == manager_email), None)
        own = team.chat if team is not None else None
        return (
            own
            if own is not None and own.any
            else self.chat
            if self.chat and self.chat.any
            else None
        )

    @property
    def has_chat(self) -> bool:
        return bool((self.chat and self.chat.any) or any(t.chat and t.chat.any for t in self.teams))

    @property
    def chat_configured(self) -> bool:
        """Chat is set up, even if a webhook's variable is not set in this environment yet."""
        return self.has_chat or any(
            p.startswith("chat.") or ".chat." in p for p in self.missing_env
        )

    def require_chat_env(self) -> None:
        """Chat webhooks are read from the environment when sending: say which are unset."""
        missing = {
            p: v for p, v in self.missing_env.items() if p.startswith("chat.") or ".chat." in p
        }
        if missing:
            raise ConfigError(
                "Chat delivery needs these environment variables:",
                problems=[f"{p}: environment variable {v} is not set" for p, v in missing.items()],
            )

    def require_env(self, prefix: str) -> None:
        """Raise ConfigError naming every unset ``${VAR}`` under ``prefix`` (e.g. ``email.``)."""
        missing = {p: v for p, v in self.missing_env.items() if p.startswith(prefix)}
        if missing:
            raise ConfigError(
                "Environment variables the config refers to are not set:",
                problems=[f"{p}: environment variable {v} is not set" for p, v in missing.items()],
            )

    def state_path(self) -> Path:
        """Where the SQLite state lives: ``$LEADPREP_STATE``, else ``state.path``, else the user data dir."""
        env = os.environ.get(STATE_ENV)
        if env:
            return Path(env).expanduser()
        if self.state.path is not None:
            return self.state.path.expanduser()
        return user_data_path("leadprep", appauthor=False) / "state.db"

    def manager_of(self, rep_email: str) -> Person | None:
        """The manager whose team lists this rep, if any."""
        for team in self.teams:
            if rep_email.lower() in team.reps:
                return team.manager
        return None

    def team_reps(self) -> set[str]:
        """Emails of every rep named in ``teams`` (empty: everyone)."""
        return {rep for team in self.teams for rep in team.reps}

    def rep_names(self) -> dict[str, str]:
        """Rep email -> the name the teams give (``"Alex Morgan <alex@example.com>"``)."""
        return {email: name for team in self.teams for email, name in team.rep_names.items()}

    def whole_teams(self) -> set[str]:
        """Managers whose team lists no reps: their direct reports (per the CRM) are the team."""
        return {team.manager.email for team in self.teams if not team.reps}

    def manager_named(self, email: str) -> Person | None:
        """The configured manager with this email, if any."""
        return next((t.manager for t in self.teams if t.manager.email == email.lower()), None)


# --- loading -------------------------------------------------------------------------------------


def find_config_path(explicit: Path | None) -> Path | None:
    """``--config``, else ``$LEADPREP_CONFIG``, else ``./leadprep.yaml``; None when there is none."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(
                f"Config file {explicit} does not exist.",
                hint="Create one with `leadprep init` or pass the right path to --config.",
            )
        return explicit
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"${CONFIG_ENV} points to {path}, which does not exist.",
                hint=f"Fix or unset {CONFIG_ENV}.",
            )
        return path
    default = Path.cwd() / DEFAULT_CONFIG_NAME
    return default if default.is_file() else None


MAX_CONFIG_NODES = 100_000  # a config is a page of settings; more is an alias bomb


def _resolve_env(
    node: Any, path: str, missing: list[tuple[str, str]], budget: list[int] | None = None
) -> Any:
    """Replace ``${VAR}`` in every string; remember (key path, var) for each unset variable.

    YAML aliases can make a document refer to itself or expand exponentially: walking more
    than MAX_CONFIG_NODES values, or nesting deeper than 50, is refused."""
    budget = budget if budget is not None else [MAX_CONFIG_NODES]
    budget[0] -= 1
    if budget[0] < 0 or path.count(".") + path.count("[") > 50:
        raise ConfigError(
            "The config is too large or refers to itself (a YAML alias like &a … *a inside "
            "itself?).",
            hint="A leadprep config is a page of settings: remove the anchors (&) and aliases (*).",
        )
    if isinstance(node, dict):
        return {
            k: _resolve_env(v, f"{path}.{k}" if path else str(k), missing, budget)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_resolve_env(v, f"{path}[{i}]", missing, budget) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            value = os.environ.get(name)
            if value is None:
                missing.append((path, name))
                return ""
            register_secret(value)
            return value

        resolved = _ENV_REF.sub(substitute, node)
        return resolved if resolved != "" else None
    return node


def _literal_webhooks(raw: dict[str, Any]) -> list[str]:
    """A chat webhook URL is a password to the channel: it may only come from the environment."""
    sections: list[tuple[str, Any]] = [("chat", raw.get("chat"))]
    teams = raw.get("teams")
    if isinstance(teams, list):
        sections += [
            (f"teams[{i}].chat", t.get("chat")) for i, t in enumerate(teams) if isinstance(t, dict)
        ]
    problems = []
    for where, section in sections:
        if not isinstance(section, dict):
            continue
        for name in ("slack", "teams"):
            value = section.get(name)
            if isinstance(value, str) and not _ENV_REF.fullmatch(value.strip()):
                problems.append(
                    f'{where}.{name}: write the webhook as "${{VARIABLE}}" and set the variable '
                    "in the environment; a webhook URL is a secret and never goes in the file"
                )
    return problems


def _drop_empty(node: Any) -> Any:
    """An empty value (``state:`` with only comments under it) means "use the defaults"."""
    if isinstance(node, dict):
        return {k: _drop_empty(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_drop_empty(v) for v in node]
    return node


def _relevant(path: str, kind: str) -> bool:
    """Whether an unset variable at ``path`` matters for this config (other CRMs' sections do not)."""
    if path.startswith("crm."):
        return path.startswith(f"crm.{kind}.")
    # delivery secrets (email, chat) are checked when sending
    return not (path.startswith(("email.", "chat.")) or ".chat." in path)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def refresh_crm_section() -> None:
    """Regenerate the ``crm`` section when sources were registered since it was made (a plugin,
    a test's own source): the config then knows their kinds and settings."""
    current: Any = Config.model_fields["crm"].annotation
    if tuple(SOURCES.entries()) == typing.get_args(current.model_fields["kind"].annotation):
        return
    model = crm_settings_model()
    Config.model_fields["crm"] = FieldInfo.from_annotated_attribute(model, model())
    Config.model_rebuild(force=True)


def parse_config(raw: Any, *, source: Path | None = None) -> Config:
    """Validate an already-parsed YAML document; raises ConfigError listing every problem."""
    refresh_crm_section()
    where = str(source) if source else "config"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of sections (crm, teams, …).")
    missing: list[tuple[str, str]] = []
    problems: list[str] = _literal_webhooks(raw)
    resolved = _drop_empty(_resolve_env(raw, "", missing))
    config: Config | None = None
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _format_loc(tuple(p for p in err["loc"] if not str(p).startswith("function-")))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling against config.example.yaml)"
            problems.append(f"{loc}: {msg}")
    kind = (resolved.get("crm") or {}).get("kind", "demo") if isinstance(resolved, dict) else "demo"
    for path, var in missing:
        if _relevant(path, str(kind)):
            problems.append(f"{path}: environment variable {var} is not set")
    if problems:
        raise ConfigError(
            f"{where} has {len(problems)} problem{'s' if len(problems) > 1 else ''}:",
            problems=sorted(set(problems), key=problems.index),
        )
    assert config is not None
    config.missing_env = dict(missing)
    if source is not None:
        config = _relative_to(config, source.parent)
        config.source_path = source
    return config


def _relative_to(config: Config, base: Path) -> Config:
    """Paths in the file are relative to the file's folder, not to wherever the command runs."""

    def fix(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else base / p

    for kind in SOURCES.entries():
        section = getattr(config.crm, kind, None)
        for name in type(section).model_fields if section is not None else ():
            value = getattr(section, name)
            if isinstance(value, Path):  # a file the source reads (the export, a key, a CA)
                setattr(section, name, fix(value))
    if config.output.dir is not None:
        config.output.dir = fix(config.output.dir)
    if config.output.templates is not None:
        config.output.templates = fix(config.output.templates)
    if config.state.path is not None:
        config.state.path = fix(config.state.path)
    return config


def load_config(path: Path) -> Config:
    """Read and validate the YAML config at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason}).") from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}.") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}.") from exc
    return parse_config(raw, source=path)


def default_config() -> Config:
    """The configuration used when no file exists: the bundled demo pipeline."""
    return Config()
