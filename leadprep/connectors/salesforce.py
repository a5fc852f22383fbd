"""Salesforce: open opportunities with contact roles and history in one paged SOQL query.

Built on ``simple-salesforce``. Retries live in one place, :class:`RetryingSession` (the
``requests`` session the SDK sends everything through): REQUEST_LIMIT_EXCEEDED, 5xx and network
errors are retried with backoff, then reported as CRMUnavailableError. Authentication and query
errors come back as the SDK's exceptions and are mapped in :func:`_sdk_errors`. Parsing of records
into the canonical model is done by pure functions (``parse_*``).

Calls per run: login (except session auth); one composite batch with the describes, stages and
users; the opportunity query (``ceil(N / batch size)`` pages) plus one call per child subquery
page Salesforce truncated.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote_plus

import requests
from pydantic import Field, SecretStr, model_validator

from leadprep.connectors import Check, FetchResult
from leadprep.connectors.fields import read_amount, read_day, read_timestamp
from leadprep.connectors.kit import reads_answers_of
from leadprep.errors import CRMAuthError, CRMUnavailableError, LeadprepError
from leadprep.http import (
    Fail,
    Ok,
    Retry,
    RetrySettings,
    Usage,
    Verdict,
    api_base_url,
    chunks,
    walk_pages,
    with_retries,
)
from leadprep.model import AMOUNT, CLOSE_DATE, STAGE, Change, Contact, Deal, Rep
from leadprep.redact import register_secret
from leadprep.registry import connector
from leadprep.settings import Section
from leadprep.stages import StageInfo
from leadprep.tasks import LostAnswer, Refused, TaskSpec, WriteBackSettings, Written

if TYPE_CHECKING:
    from leadprep.config import Config


_SF_REQUIRED = {
    "password": ("username", "password"),
    "session": ("instance_url", "access_token"),
    "jwt": ("username", "consumer_key", "private_key_file"),
    "client_credentials": ("consumer_key", "consumer_secret"),
}


class SalesforceSettings(Section):
    auth: Literal["password", "session", "jwt", "client_credentials"] = "password"
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    domain: str = "login"  # login, test, or your My Domain (e.g. acme.my)
    instance_url: str | None = None
    access_token: SecretStr | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    private_key_file: Path | None = None
    api_version: str = "59.0"
    batch_size: int = Field(2000, ge=200, le=2000)
    ca_bundle: Path | None = Field(
        default=None, description="CA bundle for a TLS-inspecting proxy (else the system's)."
    )
    retry: RetrySettings = RetrySettings()
    write_back: WriteBackSettings = WriteBackSettings()

    WHEN_MISSING: ClassVar[str] = "crm.kind is 'salesforce' but there is no crm.salesforce section"

    def problems_in_use(self) -> list[str]:
        """What keeps these settings from being used (the kind is salesforce)."""
        problems = self.missing_for_auth()
        return ["crm.salesforce: " + "; ".join(problems)] if problems else []

    def missing_for_auth(self) -> list[str]:
        """Problems with the fields the chosen auth mode needs (checked when Salesforce is in use)."""
        problems = []
        missing = [name for name in _SF_REQUIRED[self.auth] if getattr(self, name) in (None, "")]
        if missing:
            problems.append(f"auth '{self.auth}' needs {', '.join(missing)}")
        if self.auth == "client_credentials" and self.domain in ("login", "test"):
            problems.append(
                "auth 'client_credentials' needs domain set to your My Domain (e.g. acme.my)"
            )
        return problems

    @model_validator(mode="after")
    def _https(self) -> SalesforceSettings:
        if self.instance_url is not None:
            if not self.instance_url.strip().lower().startswith("https://"):
                raise ValueError(
                    "instance_url must start with https:// (Salesforce only speaks https)"
                )
            self.instance_url = api_base_url(self.instance_url, "instance_url")
        # The domain becomes the login host (https://DOMAIN.salesforce.com): a host name only.
        if not re.fullmatch(
            r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*", self.domain
        ):
            raise ValueError(
                f"domain {self.domain!r} must be login, test or your My Domain name (e.g. acme.my)"
            )
        return self


log = logging.getLogger(__name__)

IDS_PER_QUERY = 200  # keeps a SOQL IN list far below the 100,000-character query limit
BASE_FIELDS = (
    "Id",
    "Name",
    "StageName",
    "Amount",
    "CloseDate",
    "Probability",
    "ForecastCategoryName",
    "NextStep",
    "LastActivityDate",
    "CreatedDate",
    "IsClosed",
    "IsWon",
    "OwnerId",
    "Owner.Name",
    "Owner.Email",
    "Account.Name",
)
OPTIONAL_FIELDS = ("LastStageChangeDate", "CurrencyIsoCode")  # only when describe() shows them
ROLE_FIELDS = ("Role", "IsPrimary", "Contact.Name", "Contact.Email", "Contact.Title")
HISTORY_FIELDS = ("StageName", "CloseDate", "Amount", "CreatedDate")
OPTIONAL_HISTORY_FIELDS = ("PrevCloseDate",)
_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)'")
STAGES_SOQL = "SELECT ApiName, MasterLabel, IsClosed, IsWon, DefaultProbability, SortOrder FROM OpportunityStage"


# --- parsing (pure) ------------------------------------------------------------------------------


def parse_stages(records: Iterable[dict[str, Any]]) -> dict[str, StageInfo]:
    """Stage API name -> stage, from ``OpportunityStage`` rows."""
    ordered = sorted(records, key=lambda r: (r.get("SortOrder") is None, r.get("SortOrder") or 0))
    out = {}
    for index, row in enumerate(ordered):
        probability = row.get("DefaultProbability")
        stage = StageInfo(
            name=row.get("MasterLabel") or row["ApiName"],
            order=index,
            probability=float(probability) / 100 if probability is not None else None,
            closed=bool(row.get("IsClosed")),
            won=bool(row.get("IsWon")),
            key=row["ApiName"],
        )
        out[row["ApiName"]] = stage
        out.setdefault(stage.name, stage)
    return out


def _day(value: Any) -> date | None:
    return read_day(value)


def _moment(value: Any) -> datetime | None:
    """Salesforce datetimes (``2026-11-20T14:03:12.000+0000``) and dates, as UTC."""
    return read_timestamp(value)


def _money(value: Any) -> Decimal | None:
    return read_amount(value)


def children(record: dict[str, Any], relationship: str) -> list[dict[str, Any]]:
    """A child subquery's rows; an empty subquery comes back as null."""
    value = record.get(relationship)
    return list(value.get("records", [])) if isinstance(value, dict) else []


def parse_history(rows: list[dict[str, Any]]) -> list[Change]:
    """Close date, amount and stage changes from ``OpportunityHistory`` rows (any order)."""
    ordered = sorted(
        rows, key=lambda r: _moment(r.get("CreatedDate")) or datetime.min.replace(tzinfo=UTC)
    )
    changes: list[Change] = []
    previous: dict[str, Any] | None = None
    for row in ordered:
        at = _moment(row.get("CreatedDate"))
        close = _day(row.get("CloseDate"))
        before = _day(row.get("PrevCloseDate")) or (
            _day(previous.get("CloseDate")) if previous else None
        )
        if before is not None and close is not None and before != close:
            changes.append(Change(CLOSE_DATE, before, close, at))
        if previous is not None:
            old_amount, new_amount = _money(previous.get("Amount")), _money(row.get("Amount"))
            if old_amount != new_amount:
                changes.append(Change(AMOUNT, old_amount, new_amount, at))
            if previous.get("StageName") != row.get("StageName"):
                changes.append(Change(STAGE, previous.get("StageName"), row.get("StageName"), at))
        previous = row
    return changes


def _stage_entered(record: dict[str, Any], history: list[Change]) -> datetime | None:
    explicit = _moment(record.get("LastStageChangeDate"))
    if explicit is not None:
        return explicit
    moves = [c.at for c in history if c.field == STAGE and c.at is not None]
    return moves[-1] if moves else _moment(record.get("CreatedDate"))


def parse_opportunity(
    record: dict[str, Any],
    *,
    stages: dict[str, StageInfo],
    instance_url: str,
    roles: list[dict[str, Any]] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> Deal:
    """One Opportunity row (with its child rows) as a canonical Deal."""
    owner = record.get("Owner") or {}
    account = record.get("Account") or {}
    stage = stages.get(record.get("StageName") or "")
    changes = parse_history(
        history if history is not None else children(record, "OpportunityHistories")
    )
    contacts = []
    for role in roles if roles is not None else children(record, "OpportunityContactRoles"):
        person = role.get("Contact") or {}
        contacts.append(
            Contact(
                name=person.get("Name") or "Unnamed contact",
                email=(person.get("Email") or "").lower() or None,
                role=role.get("Role") or None,
                title=person.get("Title") or None,
            )
        )
    probability = record.get("Probability")
    deal_id = str(record["Id"])
    return Deal(
        id=deal_id,
        name=record.get("Name") or deal_id,
        owner=Rep(
            id=str(record.get("OwnerId") or ""),
            name=owner.get("Name") or "Unknown owner",
            email=(owner.get("Email") or "").lower(),
        ),
        stage=stage.name if stage else (record.get("StageName") or "unknown"),
        account=account.get("Name"),
        amount=_money(record.get("Amount")),
        currency=(record.get("CurrencyIsoCode") or "USD").upper(),
        close_date=_day(record.get("CloseDate")),
        probability=float(probability) / 100
        if probability is not None
        else (stage.probability if stage else None),
        stage_order=stage.order if stage else None,
        forecast_category=record.get("ForecastCategoryName"),
        created_at=_moment(record.get("CreatedDate")),
        stage_entered_at=_stage_entered(record, changes),
        last_activity_at=_moment(record.get("LastActivityDate")),
        next_step=(record.get("NextStep") or "").strip() or None,
        is_closed=bool(record.get("IsClosed")),
        is_won=bool(record.get("IsWon")),
        url=f"{instance_url}/lightning/r/Opportunity/{deal_id}/view",
        contacts=tuple(contacts),
        history=tuple(changes),
    )


def soql_quote(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def opportunity_soql(fields: Iterable[str], history_fields: Iterable[str], where: str) -> str:
    """The one query: opportunities with their contact roles and history as child subqueries."""
    return (
        f"SELECT {', '.join(fields)}, "
        f"(SELECT {', '.join(ROLE_FIELDS)} FROM OpportunityContactRoles ORDER BY IsPrimary DESC), "
        f"(SELECT {', '.join(history_fields)} FROM OpportunityHistories ORDER BY CreatedDate) "
        f"FROM Opportunity WHERE {where} ORDER BY Id"
    )


# --- transport -----------------------------------------------------------------------------------


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode") or "")
    return ""


class RetryingSession(requests.Session):
    """Every HTTP call simple-salesforce makes: counted, and retried when Salesforce says "later"."""

    def __init__(
        self, settings: SalesforceSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        super().__init__()
        self.policy = settings.retry
        self.sleep_fn = sleep
        self.usage = Usage("Salesforce")
        self.ca_bundle = str(settings.ca_bundle) if settings.ca_bundle is not None else None

    # simple-salesforce passes requests' many named parameters as keywords; this override
    # hands every one on unchanged.
    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        # ``acts``: the request writes and may not be repeated blindly: a lost answer (network
        # error, timeout, 5xx) raises LostAnswer; the org's limit or a 429 is still waited out
        acts = bool(kwargs.pop("acts", False))
        kwargs.setdefault("timeout", self.policy.timeout)
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle  # per request, or $REQUESTS_CA_BUNDLE would win

        def attempt(number: int) -> Verdict[requests.Response]:
            self.usage.count("requests")
            try:
                response = super(RetryingSession, self).request(method, url, *args, **kwargs)
            except requests.exceptions.SSLError as exc:
                raise CRMUnavailableError(
                    f"TLS to Salesforce failed: {exc}",
                    hint="Behind a TLS-inspecting proxy, set crm.salesforce.ca_bundle to its CA file.",
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                verdict: Verdict[requests.Response] = Retry(f"network error: {type(exc).__name__}")
            else:
                verdict = self.classify(response)
            if acts and isinstance(verdict, Retry) and not _nothing_done(verdict.problem):
                return Fail(LostAnswer(f"Salesforce did not answer a write ({verdict.problem})."))
            return verdict

        def gave_up(problem: str, attempts: int) -> LeadprepError:
            return CRMUnavailableError(
                f"Salesforce did not answer: {problem}, still after {attempts} attempts.",
                hint="Nothing was written. Try again later; Setup → Company Information shows the org's API usage.",
            )

        return with_retries(
            attempt, policy=self.policy, usage=self.usage, gave_up=gave_up, sleep=self.sleep_fn
        )

    def classify(self, response: requests.Response) -> Verdict[requests.Response]:
        """Salesforce's "later" (the org's request limit, 5xx, 429) is retried; anything else is
        the SDK's to read, so its exceptions map to ours in :func:`_sdk_errors`."""
        limit_info = response.headers.get("Sforce-Limit-Info")
        if limit_info:
            used = limit_info.removeprefix("api-usage=").split(";")[0]
            self.usage.budget = f"org API usage {used} in the last 24 h"
        code = _error_code(response) if response.status_code >= 400 else ""
        login_fault = b"<faultcode" in response.content[:2000]  # SOAP login refused: final
        if response.status_code == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            return Retry("the org's API request limit (REQUEST_LIMIT_EXCEEDED)")
        if (response.status_code >= 500 or response.status_code == 429) and not login_fault:
            return Retry(f"server error {response.status_code}")
        return Ok(response)


def _nothing_done(problem: str) -> bool:
    """A "later" that says the request was not carried out: the org's limit, a 429."""
    return "limit" in problem or "429" in problem


@contextmanager
def _sdk_errors(settings: SalesforceSettings) -> Iterator[None]:
    """Map simple-salesforce's exceptions to leadprep's, with how to fix."""
    from simple_salesforce import exceptions as sfx

    try:
        yield
    except sfx.SalesforceAuthenticationFailed as exc:
        raise CRMAuthError(
            f"Salesforce login failed: {getattr(exc, 'auth_message', '') or exc}",
            hint=_login_hint(settings),
        ) from None
    except sfx.SalesforceExpiredSession:
        raise CRMAuthError(
            "Salesforce session expired or invalid (401 INVALID_SESSION_ID).",
            hint=_login_hint(settings),
        ) from None
    except sfx.SalesforceRefusedRequest as exc:
        raise CRMAuthError(
            f"Salesforce refused the request (403): {_messages(exc.content)}",
            hint="The user needs API Enabled and read access to Opportunity, OpportunityContactRole, "
            "OpportunityHistory, OpportunityStage and User.",
        ) from None
    except sfx.SalesforceError as exc:
        raise CRMUnavailableError(
            f"Salesforce answered {exc.status} to {exc.resource_name}: {_messages(exc.content)}"
        ) from None


def _login_hint(settings: SalesforceSettings) -> str:
    if settings.auth == "session":
        return "Get a fresh access token and instance URL (`sf org display --target-org <alias>`) and update the environment."
    if settings.auth == "password":
        return "Check the username, password and security token (reset it under Settings → Reset My Security Token); sandboxes need domain: test."
    if settings.auth == "jwt":
        return "Check the connected app's consumer key, the private key file and that the user is pre-authorized."
    return "Check the connected app's consumer key and secret, and domain (your My Domain)."


def _messages(content: Any) -> str:
    if isinstance(content, list):
        return "; ".join(
            f"{e.get('errorCode', '')}: {e.get('message', '')}".strip()
            for e in content
            if isinstance(e, dict)
        )
    return str(content)[:300]


def connect(settings: SalesforceSettings, session: requests.Session) -> Any:
    """A logged-in ``simple_salesforce.Salesforce`` for the configured auth mode."""
    from simple_salesforce import Salesforce

    def secret(value: Any) -> str | None:
        if value is None:
            return None
        text = value.get_secret_value()
        register_secret(text)
        return text

    common: dict[str, Any] = {
        "version": settings.api_version,
        "session": session,
        "object_pairs_hook": dict,
    }
    with _sdk_errors(settings):
        if settings.auth == "session":
            return Salesforce(
                instance_url=settings.instance_url,
                session_id=secret(settings.access_token),
                **common,
            )
        if settings.auth == "password":
            return Salesforce(
                username=settings.username,
                password=secret(settings.password),
                security_token=secret(settings.security_token) or "",
                domain=settings.domain,
                **common,
            )
        if settings.auth == "jwt":
            return Salesforce(
                username=settings.username,
                consumer_key=settings.consumer_key,
                privatekey_file=str(settings.private_key_file),
                domain=settings.domain,
                **common,
            )
        return Salesforce(
            consumer_key=settings.consumer_key,
            consumer_secret=secret(settings.consumer_secret),
            domain=settings.domain,
            **common,
        )


# --- the connector -------------------------------------------------------------------------------


@dataclass
class _Query:
    fields: list[str]
    history_fields: list[str]
    dropped: list[str] = field(default_factory=list)


TASK_BATCH = 200  # sObject Collections' limit
STATUS = {False: "Not Started", True: "Completed"}


class SalesforceTaskWriter:
    """Commitments as Salesforce Tasks through sObject Collections (200 a request): WhatId the
    opportunity, OwnerId its owner (else the rep's user), ActivityDate the due date; found by the
    key in the Subject (a Description cannot be searched)."""

    crm = "salesforce"
    batch_size = TASK_BATCH

    def __init__(self, connector: SalesforceConnector) -> None:
        self.connector = connector

    @property
    def sf(self) -> Any:
        return self.connector.sf

    def _owners(self, specs: list[TaskSpec]) -> tuple[dict[str, str], dict[str, str]]:
        """Opportunity id -> its owner, and rep email -> their user (for habits, and as the
        fallback), in two queries."""
        opp_ids = sorted({s.deal_id for s in specs if s.deal_id})
        emails = sorted({s.rep_email.lower() for s in specs})
        by_opp: dict[str, str] = {}
        if opp_ids:
            where = ", ".join(soql_quote(i) for i in opp_ids)
            for row in self._rows(f"SELECT Id, OwnerId FROM Opportunity WHERE Id IN ({where})"):
                by_opp[str(row["Id"])] = str(row["OwnerId"])
        by_email: dict[str, str] = {}
        if emails:
            where = ", ".join(soql_quote(e) for e in emails)
            for row in self._rows(f"SELECT Id, Email FROM User WHERE Email IN ({where})"):
                by_email[str(row.get("Email") or "").lower()] = str(row["Id"])
        return by_opp, by_email

    def _rows(self, soql: str) -> list[dict[str, Any]]:
        with _sdk_errors(self.connector.settings):
            result = self.sf.query(soql)
        return self.connector._all_rows(result, "task query")

    def _record(
        self, spec: TaskSpec, owners: tuple[dict[str, str], dict[str, str]]
    ) -> dict[str, Any]:
        by_opp, by_email = owners
        record: dict[str, Any] = {
            "attributes": {"type": "Task"},
            "Subject": spec.subject,
            "Description": spec.body,
            "ActivityDate": spec.due.isoformat(),
            "Status": STATUS[spec.completed],
        }
        owner = (by_opp.get(spec.deal_id) if spec.deal_id else None) or by_email.get(
            spec.rep_email.lower()
        )
        if owner:
            record["OwnerId"] = owner
        if spec.deal_id:
            record["WhatId"] = spec.deal_id
        return record

    def find(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for group in chunks(keys, 50):
            likes = " OR ".join(f"Subject LIKE {soql_quote(f'%[{k}]%')}" for k in group)
            for row in self._rows(f"SELECT Id, Subject FROM Task WHERE ({likes})"):
                for key in group:
                    if f"[{key}]" in str(row.get("Subject") or ""):
                        found.setdefault(key, str(row["Id"]))
        return found

    def create(self, specs: list[TaskSpec]) -> dict[str, Written | Refused]:
        owners = self._owners(specs)
        body = {"allOrNone": False, "records": [self._record(s, owners) for s in specs]}
        with _sdk_errors(self.connector.settings):
            answer = self.sf.restful("composite/sobjects", method="POST", json=body, acts=True)
        return self._by_key(answer or [], specs)

    def update(self, items: list[tuple[str, TaskSpec]]) -> dict[str, Written | Refused]:
        owners = self._owners([spec for _, spec in items])
        records = [{**self._record(spec, owners), "id": rid} for rid, spec in items]
        with _sdk_errors(self.connector.settings):
            answer = self.sf.restful(
                "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}
            )
        return self._by_key(answer or [], [spec for _, spec in items])

    def delete(self, remote_ids: list[str]) -> None:
        with _sdk_errors(self.connector.settings):
            self.sf.restful(
                "composite/sobjects", method="DELETE", params={"ids": ",".join(remote_ids)}
            )

    @staticmethod
    def _by_key(
        answer: list[dict[str, Any]], specs: list[TaskSpec]
    ) -> dict[str, Written | Refused]:
        # sObject Collections answer in the order of the records sent
        out: dict[str, Written | Refused] = {}
        for spec, result in zip(specs, answer, strict=False):
            if result.get("success"):
                out[spec.key] = Written(str(result["id"]))
            else:
                errors = result.get("errors") or [{}]
                said = "; ".join(
                    f"{e.get('statusCode', 'error')}: {e.get('message', '')}".strip(": ")
                    for e in errors
                )
                out[spec.key] = Refused(" ".join(said.split())[:200])
        return out


@connector("salesforce", settings=SalesforceSettings, capabilities={"api", "write_tasks"})
class SalesforceConnector:
    """Pulls the open opportunities of the configured reps (or of everyone) from Salesforce."""

    source = "salesforce"

    @classmethod
    def from_config(cls, settings: SalesforceSettings, config: Config) -> SalesforceConnector:
        return cls(settings, managers=config.whole_teams())

    def task_writer(self) -> SalesforceTaskWriter | None:
        """Writes commitments as Tasks, when ``write_back.tasks`` asks for it."""
        return SalesforceTaskWriter(self) if self.settings.write_back.tasks else None

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        managers: Iterable[str] = (),
        session: RetryingSession | None = None,
    ) -> None:
        self.settings = settings
        self.managers = sorted(set(managers))  # emails of managers whose direct reports to pull
        self.session = session or RetryingSession(settings)
        self._sf: Any = None
        self._manager_of: dict[str, str] = {}  # user id -> manager email, for manager-only teams

    @property
    def sf(self) -> Any:
        if self._sf is None:
            self._sf = connect(self.settings, self.session)
        return self._sf

    @property
    def instance_url(self) -> str:
        return f"https://{self.sf.sf_instance}"

    @reads_answers_of("Salesforce")
    def fetch(
        self, reps: set[str] | None, as_of: date, known_ids: frozenset[str] = frozenset()
    ) -> FetchResult:
        notes: list[str] = []
        with _sdk_errors(self.settings):
            query, stages, owner_ids = self._setup(reps, notes)
            instance = self.instance_url

            def convert(row: dict[str, Any]) -> Deal:
                return parse_opportunity(
                    row,
                    stages=stages,
                    instance_url=instance,
                    roles=row["_roles"],
                    history=row["_history"],
                )

            deals: list[Deal] = []
            if owner_ids is None:
                deals = self._opportunities(query, "IsClosed = false", convert)
            else:
                for chunk in chunks(owner_ids, IDS_PER_QUERY):
                    where = f"IsClosed = false AND OwnerId IN ({', '.join(map(soql_quote, chunk))})"
                    deals += self._opportunities(query, where, convert)
            extra = sorted(set(known_ids) - {d.id for d in deals})
            for chunk in chunks(extra, IDS_PER_QUERY):
                where = f"Id IN ({', '.join(map(soql_quote, chunk))})"
                deals += self._opportunities(query, where, convert)
            deals = [
                replace(d, manager_email=self._manager_of[d.owner.id])
                if d.owner.id in self._manager_of
                else d
                for d in deals
            ]
        if query.dropped:
            notes.append(f"fields this org does not have were left out: {', '.join(query.dropped)}")
        log.info(self.session.usage.summary())
        return FetchResult(source=self.source, deals=deals, notes=notes)

    # --- pieces ----------------------------------------------------------------------------------

    def _describe(self, sobject: str) -> set[str]:
        data = self.sf.restful(f"sobjects/{sobject}/describe")
        return {f["name"] for f in data.get("fields", [])}

    def _setup(
        self, reps: set[str] | None, notes: list[str]
    ) -> tuple[_Query, dict[str, StageInfo], list[str] | None]:
        """Field availability, stage metadata and the team's user ids in one composite request."""
        version = f"v{self.settings.api_version}"
        subrequests = [
            f"{version}/sobjects/Opportunity/describe",
            f"{version}/sobjects/OpportunityHistory/describe",
            f"{version}/query/?q=" + quote_plus(STAGES_SOQL),
        ]
        if reps:
            emails = ", ".join(soql_quote(e) for e in sorted(reps))
            subrequests.append(
                f"{version}/query/?q="
                + quote_plus(f"SELECT Id, Name, Email FROM User WHERE Email IN ({emails})")
            )
        if self.managers:
            emails = ", ".join(soql_quote(e) for e in self.managers)
            soql = f"SELECT Id, Name, Email, Manager.Email FROM User WHERE IsActive = true AND Manager.Email IN ({emails})"
            subrequests.append(f"{version}/query/?q=" + quote_plus(soql))
        body = {"batchRequests": [{"method": "GET", "url": url} for url in subrequests]}
        answer = self.sf.restful("composite/batch", method="POST", data=json.dumps(body))
        results = [
            self._subresult(entry, url)
            for entry, url in zip(answer.get("results", []), subrequests, strict=True)
        ]
        opportunity = {f["name"] for f in results[0].get("fields", [])}
        history = {f["name"] for f in results[1].get("fields", [])}
        query = _Query(
            fields=[*BASE_FIELDS, *(f for f in OPTIONAL_FIELDS if f in opportunity)],
            history_fields=[*HISTORY_FIELDS, *(f for f in OPTIONAL_HISTORY_FIELDS if f in history)],
        )
        stages = parse_stages(self._all_rows(results[2]))
        if not reps and not self.managers:
            return query, stages, None  # nothing configured: every owner
        ids: set[str] = set()
        position = 3
        if reps:
            users = self._all_rows(results[position])
            position += 1
            found = {(u.get("Email") or "").lower(): str(u["Id"]) for u in users}
            missing = sorted(e for e in reps if e not in found)
            if missing:
                notes.append(
                    f"not Salesforce users (no opportunities pulled): {', '.join(missing)}"
                )
            ids.update(found.values())
        if self.managers:
            users = self._all_rows(results[position])
            if not users:
                notes.append(f"no active direct reports found for {', '.join(self.managers)}")
            for user in users:
                ids.add(str(user["Id"]))
                manager = ((user.get("Manager") or {}).get("Email") or "").lower()
                self._manager_of[str(user["Id"])] = manager
        return query, stages, sorted(ids)

    def _subresult(self, entry: dict[str, Any], url: str) -> dict[str, Any]:
        status = int(entry.get("statusCode", 500))
        result = entry.get("result")
        if status < 300 and isinstance(result, dict):
            return result
        what = url.split("?")[0].split("/", 1)[-1]
        if status == 401:
            raise CRMAuthError(
                "Salesforce session expired or invalid (401 INVALID_SESSION_ID).",
                hint=_login_hint(self.settings),
            )
        if status == 403:
            raise CRMAuthError(
                f"Salesforce refused {what} (403): {_messages(result)}",
                hint="The user needs API Enabled and read access to Opportunity, OpportunityContactRole, "
                "OpportunityHistory, OpportunityStage and User.",
            )
        raise CRMUnavailableError(f"Salesforce answered {status} to {what}: {_messages(result)}")

    def _rows_of(self, soql: str, headers: dict[str, str]) -> Iterator[dict[str, Any]]:
        """The rows of a query, page after page through the kit's paginator (a nextRecordsUrl
        handed out twice stops it), as they arrive."""

        def page(url: str | None) -> dict[str, Any]:
            if url is None:
                return self.sf.query(soql, headers=headers)
            return self.sf.query_more(url, identifier_is_url=True, headers=headers)

        def next_url(page: dict[str, Any]) -> str | None:
            return None if page.get("done", True) else page.get("nextRecordsUrl")

        for answer in walk_pages(page, next_url, "Salesforce opportunities", CRMUnavailableError):
            yield from answer.get("records", [])

    def _all_rows(self, result: dict[str, Any], what: str = "query") -> list[dict[str, Any]]:
        """A query result's rows, following nextRecordsUrl (rare for stages and users; Salesforce
        truncates child subqueries too, and those pages are counted)."""

        def page(url: str | None) -> dict[str, Any]:
            if url is None:
                return result
            if what != "query":
                self.session.usage.tally("child-record pages")
            return self.sf.query_more(url, identifier_is_url=True)

        def next_url(page: dict[str, Any]) -> str | None:
            return None if page.get("done", True) else page.get("nextRecordsUrl")

        pages = walk_pages(page, next_url, f"Salesforce {what}", CRMUnavailableError)
        return [row for page in pages for row in page.get("records", [])]

    def _opportunities(
        self, query: _Query, where: str, convert: Callable[[dict[str, Any]], Deal]
    ) -> list[Deal]:
        """Run the opportunity query; each row is completed and converted while the next page loads."""
        from simple_salesforce.exceptions import SalesforceMalformedRequest

        while True:
            soql = opportunity_soql(query.fields, query.history_fields, where)
            options = {"Sforce-Query-Options": f"batchSize={self.settings.batch_size}"}
            deals: list[Deal] = []
            try:
                for row in _prefetched(self._rows_of(soql, options)):
                    row["_roles"] = self._all_children(row, "OpportunityContactRoles")
                    row["_history"] = self._all_children(row, "OpportunityHistories")
                    deals.append(convert(row))
            except SalesforceMalformedRequest as exc:
                bad = self._optional_culprit(exc.content, query)
                if bad is None:
                    raise CRMUnavailableError(
                        f"Salesforce rejected leadprep's query: {_messages(exc.content)}",
                        hint="The field named above is required; give the integration user read access to it.",
                    ) from None
                query.dropped.append(bad)
                continue
            return deals

    @staticmethod
    def _optional_culprit(content: Any, query: _Query) -> str | None:
        match = _NO_SUCH_COLUMN.search(json.dumps(content))
        if not match:
            return None
        name = match.group(1).split(".")[-1]
        for fields, optional in (
            (query.fields, OPTIONAL_FIELDS),
            (query.history_fields, OPTIONAL_HISTORY_FIELDS),
        ):
            if name in optional and name in fields:
                fields.remove(name)
                return name
        return None

    def _all_children(self, record: dict[str, Any], relationship: str) -> list[dict[str, Any]]:
        """Every child row, following the subquery's own nextRecordsUrl when Salesforce cut it short."""
        value = record.get(relationship)
        if not isinstance(value, dict):
            return []
        return self._all_rows(value, f"{relationship} child pages")

    def diagnose(self) -> Iterator[Check]:
        """``leadprep doctor``: login, object access and API usage, one line each."""
        try:
            with _sdk_errors(self.settings):
                instance = self.instance_url
        except LeadprepError as exc:
            yield Check("salesforce login", False, str(exc))
            return
        yield Check("salesforce login", True, f"{self.settings.auth} auth to {instance}")
        for sobject in (
            "Opportunity",
            "OpportunityContactRole",
            "OpportunityHistory",
            "OpportunityStage",
            "User",
        ):
            try:
                with _sdk_errors(self.settings):
                    self._describe(sobject)
            except LeadprepError as exc:
                yield Check(f"salesforce {sobject}", False, str(exc))
            else:
                yield Check(f"salesforce {sobject}", True, "readable")
        if self.settings.write_back.tasks:
            yield self._write_access()
        yield Check("salesforce API usage", True, self.session.usage.budget or "not reported")

    def _write_access(self) -> Check:
        """Whether the integration user may create and edit Tasks (write_back.tasks)."""
        try:
            with _sdk_errors(self.settings):
                data = self.sf.restful("sobjects/Task/describe")
        except LeadprepError as exc:
            return Check("salesforce write-back", False, str(exc))
        if not (data.get("createable") and data.get("updateable")):
            return Check(
                "salesforce write-back",
                False,
                "write_back.tasks is on but this user may not create and edit Tasks: give its "
                "profile or a permission set Create and Edit on Tasks, or turn write_back.tasks off",
            )
        return Check("salesforce write-back", True, "Tasks can be created and edited")


def _prefetched(records: Iterator[dict[str, Any]], depth: int = 4000) -> Iterator[dict[str, Any]]:
    """Iterate ``records`` on a helper thread, so the next page is fetched while this one is
    processed; exceptions come out where the caller iterates."""
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()

    def pump() -> None:
        try:
            for record in records:
                buffer.put(record)
        except BaseException as exc:  # handed to the consumer below
            buffer.put(exc)
        buffer.put(done)

    threading.Thread(target=pump, name="salesforce-pages", daemon=True).start()
    while (item := buffer.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
