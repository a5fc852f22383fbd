"""HubSpot: every rep's open deals with contacts and history, in the fewest API calls.

Calls go through the official ``hubspot-api-client`` with ``_preload_content=False`` so that every
response, success or error, is handled here in one place (:meth:`HubSpotClient.call`): throttling,
retries for 429/5xx/timeouts (POST included), and the mapping of 401/403 to clear errors. Parsing
of the JSON into the canonical model is done by pure functions (``parse_*``).

Calls per run: owners (active and archived), pipelines, account details; searches (page of 200,
owners batched into one IN filter); history batch reads (50 ids, the API's cap with history);
deal→contact association batch reads (1,000 ids) plus per-deal pages; contact batch reads (100
ids); deal→company association batch reads (1,000 ids); company batch reads (100 ids).
"""

from __future__ import annotations

import html
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator

from leadprep.connectors import Check, FetchResult
from leadprep.connectors.fields import read_amount, read_day, read_float, read_timestamp
from leadprep.connectors.kit import reads_answers_of
from leadprep.connectors.ratelimit import SlidingWindowLimiter
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
    parse_retry_after,
    walk_batches,
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


class HubSpotSettings(Section):
    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"
    pipelines: list[str] = Field(
        default_factory=list, description="Pipeline ids or labels to include; empty: all."
    )
    role_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Deal-contact association label -> role (e.g. 'Budget Owner': Economic Buyer).",
    )
    requests_per_10s: int = Field(100, ge=1, description="Your portal's burst limit (100, or 190).")
    search_per_second: int = Field(4, ge=1, le=10)
    search_page_size: int = Field(200, ge=10, le=200)
    concurrency: int = Field(
        8, ge=1, le=16, description="Requests in flight at once (within the limits)."
    )
    retry: RetrySettings = RetrySettings()
    write_back: WriteBackSettings = WriteBackSettings()

    WHEN_MISSING: ClassVar[str] = "crm.kind is 'hubspot' but crm.hubspot.access_token is not set"

    def problems_in_use(self) -> list[str]:
        """What keeps these settings from being used (the kind is hubspot)."""
        return [] if self.access_token is not None else [self.WHEN_MISSING]

    @model_validator(mode="after")
    def _https(self) -> HubSpotSettings:
        self.base_url = api_base_url(self.base_url, "base_url")
        return self


log = logging.getLogger(__name__)

SEARCH_RESULT_CAP = 10_000  # the search API refuses to page past this many results of one query
HISTORY_BATCH = 50  # batch read with propertiesWithHistory
READ_BATCH = 100  # batch read without history
ASSOCIATION_BATCH = 1_000  # v4 associations batch read
IN_FILTER_VALUES = 100  # owner ids per IN filter
OWNERS_PAGE = 500

SCOPES = ("crm.objects.deals.read", "crm.objects.contacts.read", "crm.objects.owners.read")
COMPANY_SCOPE = "crm.objects.companies.read"  # optional: without it, sheets show no company names
PRIMARY_COMPANY = 5  # HubSpot's association type id for a deal's primary company
DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "closedate",
    "dealstage",
    "pipeline",
    "hubspot_owner_id",
    "hs_next_step",
    "notes_last_updated",
    "notes_last_contacted",
    "hs_last_sales_activity_timestamp",
    "notes_next_activity_date",
    "hs_forecast_category",
    "hs_manual_forecast_category",
    "hs_deal_stage_probability",
    "createdate",
    "hs_is_closed",
    "hs_is_closed_won",
    "hs_v2_date_entered_current_stage",
    "hs_object_id",
)
HISTORY_PROPERTIES = ("closedate", "amount", "dealstage", "hs_next_step")
CONTACT_PROPERTIES = ("firstname", "lastname", "email", "jobtitle")
FORECAST_LABELS = {
    "pipeline": "Pipeline",
    "best_case": "Best Case",
    "commit": "Commit",
    "omit": "Omitted",
    "closed": "Closed",
}


# --- parsing (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Portal:
    portal_id: int | None
    ui_domain: str
    timezone: ZoneInfo

    def deal_url(self, deal_id: str) -> str | None:
        if self.portal_id is None:
            return None
        return f"https://{self.ui_domain}/contacts/{self.portal_id}/record/0-3/{deal_id}"


def _flag(value: Any) -> bool:
    """HubSpot metadata booleans are strings ("true"/"false")."""
    return str(value).strip().lower() == "true"


def parse_day(value: Any, tz: ZoneInfo) -> date | None:
    """A date property (stored as a datetime) as the calendar day in the portal's time zone."""
    return read_day(value, tz)


def parse_owners(pages: Iterable[dict[str, Any]]) -> dict[str, Rep]:
    """Owner id -> Rep, from owner list pages (active and archived)."""
    owners: dict[str, Rep] = {}
    for page in pages:
        for item in page.get("results", []):
            email = (item.get("email") or "").strip().lower()
            name = " ".join(p for p in (item.get("firstName"), item.get("lastName")) if p) or email
            owners[str(item["id"])] = Rep(id=str(item["id"]), name=name, email=email)
    return owners


def parse_pipelines(data: dict[str, Any]) -> dict[str, StageInfo]:
    """Stage id -> stage, from ``GET /crm/v3/pipelines/deals``."""
    stages: dict[str, StageInfo] = {}
    for pipeline in data.get("results", []):
        ordered = sorted(pipeline.get("stages", []), key=lambda s: s.get("displayOrder", 0))
        for index, stage in enumerate(ordered):
            meta = stage.get("metadata") or {}
            probability = read_float(meta.get("probability"))
            closed = _flag(meta.get("isClosed"))
            stages[str(stage["id"])] = StageInfo(
                name=stage.get("label") or str(stage["id"]),
                order=index,
                probability=probability,
                closed=closed,
                won=closed and probability == 1.0,
                key=str(stage["id"]),
                pipeline=str(pipeline.get("id")),
            )
    return stages


def parse_portal(data: dict[str, Any] | None) -> Portal:
    """Portal id, UI domain and time zone from ``GET /account-info/v3/details``."""
    data = data or {}
    try:
        tz = ZoneInfo(data.get("timeZone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    portal = data.get("portalId")
    return Portal(
        portal_id=int(portal) if portal is not None else None,
        ui_domain=data.get("uiDomain") or "app.hubspot.com",
        timezone=tz,
    )


def parse_history(
    entries: list[dict[str, Any]], field_name: str, convert: Callable[[Any], Any]
) -> list[Change]:
    """``propertiesWithHistory`` entries (any order) as Changes, oldest first."""
    dated = sorted(
        ((read_timestamp(e.get("timestamp")), e.get("value")) for e in entries or []),
        key=lambda item: item[0] or datetime.min.replace(tzinfo=UTC),
    )
    changes = []
    for (_, old), (at, new) in itertools.pairwise(dated):
        old_value, new_value = convert(old), convert(new)
        if old_value != new_value:
            changes.append(Change(field_name, old_value, new_value, at))
    return changes


@dataclass
class AssociationPage:
    """Contacts found for deals in one associations response, and the per-deal cursors left."""

    contacts: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)


def parse_associations(data: dict[str, Any]) -> AssociationPage:
    """Deal id -> [(contact id, labels)] from a v4 associations batch response."""
    page = AssociationPage()
    for result in data.get("results", []):
        deal_id = str((result.get("from") or {}).get("id"))
        targets = page.contacts.setdefault(deal_id, [])
        for to in result.get("to", []):
            labels = [t["label"] for t in to.get("associationTypes", []) if t.get("label")]
            targets.append((str(to["toObjectId"]), labels))
        after = ((result.get("paging") or {}).get("next") or {}).get("after")
        if after:
            page.cursors[deal_id] = str(after)
    return page


def parse_company_links(data: dict[str, Any]) -> dict[str, str]:
    """Deal id -> its primary company id (else the first listed) from a v4 deal→company batch."""
    out = {}
    for result in data.get("results", []):
        deal_id = str((result.get("from") or {}).get("id"))
        targets = result.get("to") or []
        primary = [
            t
            for t in targets
            if any(a.get("typeId") == PRIMARY_COMPANY for a in t.get("associationTypes", []))
        ]
        chosen = (primary or targets)[:1]
        if chosen:
            out[deal_id] = str(chosen[0]["toObjectId"])
    return out


def parse_companies(data: dict[str, Any]) -> dict[str, str]:
    """Company id -> name from a companies batch read (nameless companies left out)."""
    out = {}
    for item in data.get("results", []):
        name = ((item.get("properties") or {}).get("name") or "").strip()
        if name:
            out[str(item["id"])] = name
    return out


def parse_contacts(data: dict[str, Any]) -> dict[str, tuple[str, str | None, str | None]]:
    """Contact id -> (name, email, job title) from a contacts batch read."""
    out = {}
    for item in data.get("results", []):
        props = item.get("properties") or {}
        email = (props.get("email") or "").strip().lower() or None
        name = " ".join(
            p.strip() for p in (props.get("firstname"), props.get("lastname")) if p and p.strip()
        )
        out[str(item["id"])] = (
            name or email or f"Contact {item['id']}",
            email,
            props.get("jobtitle") or None,
        )
    return out


def contact_role(labels: list[str], role_labels: dict[str, str]) -> str | None:
    """The role a deal-contact association label stands for (mapped, else the label itself)."""
    lowered = {k.lower(): v for k, v in role_labels.items()}
    for label in labels:
        if label.lower() in lowered:
            return lowered[label.lower()]
    return labels[0] if labels else None


def _changes(
    history: dict[str, list[dict[str, Any]]], stages: dict[str, StageInfo], tz: Any
) -> list[Change]:
    """The close date, amount and stage changes in a deal's property history."""

    def stage_label(value: Any) -> str | None:
        found = stages.get(str(value)) if value is not None else None
        return found.name if found else (str(value) if value else None)

    return [
        *parse_history(history.get("closedate", []), CLOSE_DATE, lambda v: parse_day(v, tz)),
        *parse_history(history.get("amount", []), AMOUNT, read_amount),
        *parse_history(history.get("dealstage", []), STAGE, stage_label),
    ]


def parse_deal(
    record: dict[str, Any],
    *,
    owners: dict[str, Rep],
    stages: dict[str, StageInfo],
    portal: Portal,
    contacts: tuple[Contact, ...] = (),
    history: dict[str, list[dict[str, Any]]] | None = None,
) -> Deal:
    """One deal (search result or batch-read record) as a canonical Deal."""
    props = record.get("properties") or {}
    deal_id = str(record.get("id") or props.get("hs_object_id"))
    stage_id = str(props.get("dealstage") or "")
    stage = stages.get(stage_id)
    owner_id = str(props.get("hubspot_owner_id") or "")
    owner = owners.get(owner_id) or Rep(
        id=owner_id, name=f"HubSpot owner {owner_id or 'none'}", email=""
    )
    history = history or {}
    tz = portal.timezone
    changes = _changes(history, stages, tz)
    next_step_history = sorted(
        (
            read_timestamp(e.get("timestamp"))
            for e in history.get("hs_next_step", [])
            if e.get("value")
        ),
        key=lambda t: t or datetime.min.replace(tzinfo=UTC),
    )
    activity = [
        t
        for t in (
            read_timestamp(props.get("notes_last_updated")),
            read_timestamp(props.get("notes_last_contacted")),
            read_timestamp(props.get("hs_last_sales_activity_timestamp")),
        )
        if t is not None
    ]
    forecast = props.get("hs_manual_forecast_category") or props.get("hs_forecast_category")
    closed = (
        _flag(props.get("hs_is_closed"))
        if props.get("hs_is_closed") is not None
        else bool(stage and stage.closed)
    )
    won = (
        _flag(props.get("hs_is_closed_won"))
        if props.get("hs_is_closed_won") is not None
        else bool(stage and stage.won)
    )
    probability = (
        stage.probability
        if stage and stage.probability is not None
        else read_float(props.get("hs_deal_stage_probability"))
    )
    return Deal(
        id=deal_id,
        name=props.get("dealname") or f"Deal {deal_id}",
        owner=owner,
        stage=stage.name if stage else (stage_id or "unknown"),
        account=None,
        amount=read_amount(props.get("amount")),
        currency=(props.get("deal_currency_code") or "USD").upper(),
        close_date=parse_day(props.get("closedate"), tz),
        probability=probability,
        stage_order=stage.order if stage else None,
        forecast_category=FORECAST_LABELS.get(str(forecast).lower(), forecast)
        if forecast
        else None,
        created_at=read_timestamp(props.get("createdate")),
        stage_entered_at=read_timestamp(props.get("hs_v2_date_entered_current_stage")),
        last_activity_at=max(activity) if activity else None,
        next_activity_at=read_timestamp(props.get("notes_next_activity_date")),
        next_step=(props.get("hs_next_step") or "").strip() or None,
        next_step_updated_at=next_step_history[-1] if next_step_history else None,
        is_closed=closed,
        is_won=won and closed,
        url=portal.deal_url(deal_id),
        contacts=contacts,
        history=tuple(changes),
    )


# --- transport -----------------------------------------------------------------------------------


class HubSpotHTTPError(LeadprepError):
    """A HubSpot answer that is neither success nor retriable."""

    def __init__(self, status: int, body: dict[str, Any], what: str) -> None:
        self.status = status
        self.body = body
        message = body.get("message") or json.dumps(body)[:300]
        super().__init__(f"HubSpot refused {what} ({status} {body.get('category', '')}): {message}")


def _body(raw: bytes | str | None) -> dict[str, Any]:
    """The JSON object of an answer; a non-JSON body (a proxy's HTML error page) as its text."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "replace")
    raw = raw or b"{}"
    try:
        data = json.loads(raw)
    except ValueError:
        return {"message": raw[:300].decode("utf-8", "replace")}
    return data if isinstance(data, dict) else {"results": data}


class HubSpotClient:
    """The SDK behind a single ``call`` that throttles, retries and classifies every response."""

    def __init__(
        self, settings: HubSpotSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        # The SDK's API modules are large; load them here, not inside the first timed requests.
        import hubspot.crm.associations.v4
        import hubspot.crm.companies
        import hubspot.crm.contacts
        import hubspot.crm.deals  # noqa: F401
        import urllib3
        from hubspot import HubSpot

        token = settings.access_token.get_secret_value() if settings.access_token else ""
        register_secret(token)
        self.settings = settings
        # urllib3's own retries are off: every retry decision is made in call(), POSTs included.
        self.sdk = HubSpot(
            access_token=token,
            host=settings.base_url,
            base_url=settings.base_url,
            retry=urllib3.util.Retry(total=False),
        )
        self.sleep = sleep
        # Slack on each window: HubSpot counts arrivals, we count departures, and a busy
        # interpreter can hold a request back a little between the two.
        self.search_limiter = SlidingWindowLimiter(settings.search_per_second, 1.25, sleep=sleep)
        self.burst_limiter = SlidingWindowLimiter(settings.requests_per_10s, 11.0, sleep=sleep)
        self.usage = Usage("HubSpot")

    def call(
        self,
        kind: str,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        acts: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run one SDK call; returns the JSON body. Raises CRMAuthError, CRMUnavailableError,
        HubSpotHTTPError. ``acts``: the call writes and may not be repeated blindly, so a lost
        answer (a network error, a timeout, a 5xx) raises LostAnswer instead of retrying; a 429
        (nothing was done) is still waited out and retried."""
        import urllib3

        retry = self.settings.retry
        limiter = self.search_limiter if kind in ("search", "task search") else self.burst_limiter

        def attempt(number: int) -> Verdict[dict[str, Any]]:
            verdict = sent(number)
            if acts and isinstance(verdict, Retry) and "rate limit" not in verdict.problem:
                return Fail(LostAnswer(f"HubSpot did not answer {what} ({verdict.problem})."))
            return verdict

        def sent(number: int) -> Verdict[dict[str, Any]]:
            self.usage.count(kind, waited=limiter.acquire())
            try:
                response = fn(
                    *args, _preload_content=False, _request_timeout=retry.timeout, **kwargs
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                return Retry(f"network error: {type(exc).__name__}")
            except Exception as exc:
                # Each SDK module raises its own ApiException for non-2xx answers; all carry these.
                if not hasattr(exc, "status") or not hasattr(exc, "body"):
                    raise
                if not exc.status:
                    return Retry(f"connection failed: {getattr(exc, 'reason', exc)}")
                headers = getattr(exc, "headers", None) or {}
                return self.classify(exc.status, exc.body or b"", headers, what)
            return self.classify(response.status, response.data, response.headers, what)

        def gave_up(problem: str, attempts: int) -> LeadprepError:
            return CRMUnavailableError(
                f"HubSpot did not answer {what}: {problem}, still after {attempts} attempts.",
                hint="Nothing was written. Try again later; if this repeats, lower "
                "crm.hubspot.requests_per_10s or check HubSpot's status page.",
            )

        return with_retries(
            attempt, policy=retry, usage=self.usage, gave_up=gave_up, sleep=self.sleep
        )

    def classify(
        self, status: int, raw: bytes | str | None, headers: Any, what: str
    ) -> Verdict[dict[str, Any]]:
        """One HubSpot answer: its body, a reason to ask again (and when), or the error to raise."""
        self._note_budget(headers)
        body = _body(raw)
        if 200 <= status < 300:
            return Ok(body)
        if status == 429:
            policy = body.get("policyName") or "rate limit"
            after = parse_retry_after(headers.get("Retry-After"))
            if after is None:
                after = (
                    1.0 if str(policy).upper() == "SECONDLY" else self.settings.retry.window_wait
                )
            return Retry(f"rate limit {policy} (429)", after)
        if status >= 500:
            return Retry(f"server error {status}")
        if status == 401:
            return Fail(
                CRMAuthError(
                    f"HubSpot rejected the access token (401 {body.get('category', '')}).",
                    hint="Check that HUBSPOT_ACCESS_TOKEN holds a current private-app token "
                    "(HubSpot: Settings → Integrations → Private Apps → your app → Access token).",
                )
            )
        if status == 403:
            return Fail(
                CRMAuthError(
                    f"HubSpot token may not {what} (403 {body.get('category', '')}): {body.get('message', '')}",
                    hint=f"Give the private app these scopes: {', '.join(SCOPES)}.",
                )
            )
        return Fail(HubSpotHTTPError(status, body, what))

    def _note_budget(self, headers: Any) -> None:
        remaining = headers.get("X-HubSpot-RateLimit-Daily-Remaining")
        if remaining is not None:
            limit = headers.get("X-HubSpot-RateLimit-Daily") or "?"
            self.usage.budget = f"daily budget {remaining}/{limit} remaining"

    # --- endpoints --------------------------------------------------------------------------------

    def owners(self, archived: bool) -> Iterator[dict[str, Any]]:
        api = self.sdk.crm.owners.owners_api

        def page(after: str | None) -> dict[str, Any]:
            kwargs: dict[str, Any] = {"limit": OWNERS_PAGE, "archived": archived}
            if after:
                kwargs["after"] = after
            return self.call("owners", "list owners", api.get_page, **kwargs)

        return walk_pages(page, _next_after, "HubSpot owners", CRMUnavailableError)

    def pipelines(self) -> dict[str, Any]:
        return self.call(
            "pipelines",
            "list deal pipelines",
            self.sdk.crm.pipelines.pipelines_api.get_all,
            "deals",
        )

    def account(self) -> dict[str, Any] | None:
        """Portal details; None when the token may not read them (URLs are then left out)."""
        try:
            return self.call("account", "read the account details", self._account_request)
        except (CRMAuthError, HubSpotHTTPError) as exc:
            log.warning(
                "HubSpot account details unavailable (%s); deal links are left out", exc.message
            )
            return None

    def _account_request(self, *, _preload_content: bool, _request_timeout: float) -> Any:
        # The SDK has no account-info API; its generic call_api keeps host, auth and transport.
        api_client = self.sdk.crm.owners.owners_api.api_client
        return api_client.call_api(
            "/account-info/v3/details",
            "GET",
            header_params={"Accept": "application/json"},
            auth_settings=["oauth2"],
            _preload_content=_preload_content,
            _request_timeout=_request_timeout,
        )

    def token_scopes(self) -> set[str]:
        """The scopes of a private app's token (HubSpot's access-token-info)."""
        token = self.sdk.access_token if hasattr(self.sdk, "access_token") else ""
        api_client = self.sdk.crm.owners.owners_api.api_client

        def request(*, _preload_content: bool, _request_timeout: float) -> Any:
            return api_client.call_api(
                "/oauth/v2/private-apps/get/access-token-info",
                "POST",
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body={"tokenKey": token},
                auth_settings=["oauth2"],
                _preload_content=_preload_content,
                _request_timeout=_request_timeout,
            )

        return {
            str(s) for s in self.call("token", "read the token's scopes", request).get("scopes", [])
        }

    def tasks(self, action: str, body: dict[str, Any], *, acts: bool = False) -> dict[str, Any]:
        """A task endpoint: ``search``, or a batch ``create``, ``update`` or ``archive``."""
        path = "/crm/v3/objects/tasks/" + ("search" if action == "search" else f"batch/{action}")
        kind = "task search" if action == "search" else f"tasks {action}"
        api_client = self.sdk.crm.owners.owners_api.api_client

        def request(*, _preload_content: bool, _request_timeout: float) -> Any:
            # The SDK's generic call_api keeps host, auth and transport; the body is ours.
            return api_client.call_api(
                path,
                "POST",
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                auth_settings=["oauth2"],
                _preload_content=_preload_content,
                _request_timeout=_request_timeout,
            )

        return self.call(kind, f"{action} tasks", request, acts=acts)

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        from hubspot.crm.deals import PublicObjectSearchRequest

        request = PublicObjectSearchRequest(**body)
        return self.call("search", "search deals", self.sdk.crm.deals.search_api.do_search, request)

    def read_deals(self, ids: list[str]) -> dict[str, Any]:
        from hubspot.crm.deals import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        request = BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in ids],
            properties=list(DEAL_PROPERTIES),
            properties_with_history=list(HISTORY_PROPERTIES),
        )
        return self.call(
            "deal history", "read deal history", self.sdk.crm.deals.batch_api.read, request
        )

    def associations(self, inputs: list[dict[str, str]], to: str = "contacts") -> dict[str, Any]:
        from hubspot.crm.associations.v4 import (
            BatchInputPublicFetchAssociationsBatchRequest,
            PublicFetchAssociationsBatchRequest,
        )

        request = BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(**i) for i in inputs]
        )
        api = self.sdk.crm.associations.v4.batch_api
        kind = "associations" if to == "contacts" else f"{to} associations"
        what = f"read deal-{to[:-1]} associations"
        return self.call(kind, what, api.get_page, "deals", to, request)

    def read_companies(self, ids: list[str]) -> dict[str, Any]:
        from hubspot.crm.companies import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        request = BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in ids],
            properties=["name"],
            properties_with_history=[],
        )
        return self.call(
            "companies", "read companies", self.sdk.crm.companies.batch_api.read, request
        )

    def read_contacts(self, ids: list[str]) -> dict[str, Any]:
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        request = BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in ids],
            properties=list(CONTACT_PROPERTIES),
            properties_with_history=[],
        )
        return self.call("contacts", "read contacts", self.sdk.crm.contacts.batch_api.read, request)

    def sample_contacts(self) -> dict[str, Any]:
        api = self.sdk.crm.contacts.basic_api
        return self.call("contacts", "read contacts", api.get_page, limit=1)

    def sample_companies(self) -> dict[str, Any]:
        api = self.sdk.crm.companies.basic_api
        return self.call("companies", "read companies", api.get_page, limit=1)

    def association_labels(self) -> dict[str, Any]:
        api = self.sdk.crm.associations.v4.schema.definitions_api
        return self.call("labels", "read association labels", api.get_all, "deals", "contacts")


def _next_after(page: dict[str, Any]) -> str | None:
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after else None


# --- the connector -------------------------------------------------------------------------------


@dataclass
class Gathered:
    """What the concurrent reads of one pull found."""

    open_ids: list[str]
    deals: dict[str, Deal]
    links: dict[str, list[tuple[str, list[str]]]]  # deal id -> [(contact id, labels)]
    people: dict[str, tuple[str, str | None, str | None]]  # contact id -> (name, email, title)
    companies: dict[str, str]  # deal id -> primary company name
    companies_readable: bool = True


TASK_TO_DEAL = 216  # HubSpot-defined association type: task to deal
TASK_SCOPE = "crm.objects.contacts.write"  # HubSpot files tasks under the contacts scopes
TASK_BATCH = 100
SEARCH_GROUPS = 5  # filter groups a search may OR together


class HubSpotTaskWriter:
    """Commitments as HubSpot tasks (``crm.objects.tasks``): batch create with the task→deal
    association inline, batch update to close them, archive to cancel, and a search by key."""

    crm = "hubspot"
    batch_size = TASK_BATCH

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client
        self._owners: dict[str, str] | None = None

    def _owner_id(self, email: str) -> str | None:
        if self._owners is None:
            owners = parse_owners(self.client.owners(archived=False))
            self._owners = {rep.email: owner_id for owner_id, rep in owners.items() if rep.email}
        return self._owners.get(email.strip().lower())

    def _properties(self, spec: TaskSpec) -> dict[str, str]:
        props = {
            "hs_task_subject": spec.subject,
            # HubSpot shows a task's body as HTML: the text is escaped, its lines kept as lines
            "hs_task_body": "<br>".join(html.escape(line) for line in spec.body.splitlines()),
            # the due day at noon UTC: the same calendar day in every US and European zone
            "hs_timestamp": f"{spec.due.isoformat()}T12:00:00Z",
            "hs_task_status": "COMPLETED" if spec.completed else "NOT_STARTED",
            "hs_task_type": "TODO",
        }
        owner = self._owner_id(spec.rep_email)
        if owner is not None:
            props["hubspot_owner_id"] = owner
        return props

    def find(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for group in chunks(keys, SEARCH_GROUPS):
            body = {
                "filterGroups": [
                    {"filters": [{"propertyName": "hs_task_subject", "operator": "CONTAINS_TOKEN",
                                  "value": key}]}
                    for key in group
                ],
                "properties": ["hs_task_subject"],
                "limit": 100,
            }  # fmt: skip
            for task in self.client.tasks("search", body).get("results", []):
                subject = str((task.get("properties") or {}).get("hs_task_subject") or "")
                for key in group:
                    if f"[{key}]" in subject:
                        found.setdefault(key, str(task["id"]))
        return found

    def create(self, specs: list[TaskSpec]) -> dict[str, Written | Refused]:
        inputs = []
        for spec in specs:
            item: dict[str, Any] = {"properties": self._properties(spec)}
            if spec.deal_id:
                item["associations"] = [
                    {"to": {"id": spec.deal_id},
                     "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": TASK_TO_DEAL}]}
                ]  # fmt: skip
            inputs.append(item)
        try:
            answer = self.client.tasks("create", {"inputs": inputs}, acts=True)
        except HubSpotHTTPError as exc:
            if exc.status != 400:
                raise
            if len(specs) > 1:  # one bad input refuses the batch: find it by sending each alone
                out: dict[str, Written | Refused] = {}
                for spec in specs:
                    out.update(self.create([spec]))
                return out
            return {specs[0].key: Refused(_said(exc.body))}
        return self._by_key(answer, specs)

    def update(self, items: list[tuple[str, TaskSpec]]) -> dict[str, Written | Refused]:
        inputs = [{"id": rid, "properties": self._properties(spec)} for rid, spec in items]
        answer = self.client.tasks("update", {"inputs": inputs})
        gone = {
            str(i)
            for e in answer.get("errors", [])
            for i in (e.get("context") or {}).get("ids", [])
        }
        return {
            spec.key: Refused("the task is no longer in HubSpot") if rid in gone else Written(rid)
            for rid, spec in items
        }

    def delete(self, remote_ids: list[str]) -> None:
        self.client.tasks("archive", {"inputs": [{"id": rid} for rid in remote_ids]})

    @staticmethod
    def _by_key(answer: dict[str, Any], specs: list[TaskSpec]) -> dict[str, Written | Refused]:
        # a batch's results come in no promised order: each is matched by the key in its subject
        out: dict[str, Written | Refused] = {}
        for result in answer.get("results", []):
            subject = str((result.get("properties") or {}).get("hs_task_subject") or "")
            for spec in specs:
                if f"[{spec.key}]" in subject:
                    out[spec.key] = Written(str(result["id"]))
        return out


def _said(body: dict[str, Any]) -> str:
    """HubSpot's own words for a refusal, one line, cut short."""
    return " ".join(str(body.get("message") or "refused").split())[:200]


@connector("hubspot", settings=HubSpotSettings, capabilities={"api", "write_tasks"})
class HubSpotConnector:
    """Pulls the open deals of the configured reps (or of every owner) from HubSpot."""

    source = "hubspot"

    @classmethod
    def from_config(cls, settings: HubSpotSettings, config: Config) -> HubSpotConnector:
        return cls(settings)

    def task_writer(self) -> HubSpotTaskWriter | None:
        """Writes commitments as tasks, when ``write_back.tasks`` asks for it."""
        return HubSpotTaskWriter(self.client) if self.settings.write_back.tasks else None

    def __init__(self, settings: HubSpotSettings, *, client: HubSpotClient | None = None) -> None:
        self.settings = settings
        self.client = client or HubSpotClient(settings)

    @reads_answers_of("HubSpot")
    def fetch(
        self, reps: set[str] | None, as_of: date, known_ids: frozenset[str] = frozenset()
    ) -> FetchResult:
        client = self.client
        notes: list[str] = []
        with ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="hubspot"
        ) as pool:
            # Four independent metadata reads: one round trip instead of four.
            active_job = pool.submit(lambda: parse_owners(client.owners(archived=False)))
            archived_job = pool.submit(lambda: parse_owners(client.owners(archived=True)))
            stages_job = pool.submit(lambda: parse_pipelines(client.pipelines()))
            portal_job = pool.submit(lambda: parse_portal(client.account()))
            all_owners = {**archived_job.result(), **active_job.result()}
            stages, portal = stages_job.result(), portal_job.result()
        pipelines = self._pipeline_ids(stages)

        owner_ids: list[str] | None = None
        if reps is not None:
            by_email = {o.email: oid for oid, o in all_owners.items() if o.email}
            owner_ids = sorted({by_email[e] for e in reps if e in by_email}, key=int_or_str)
            missing = sorted(e for e in reps if e not in by_email)
            if missing:
                notes.append(f"not HubSpot owners (no deals pulled): {', '.join(missing)}")

        def convert(record: dict[str, Any]) -> Deal:
            history = record.get("propertiesWithHistory") or {}
            return parse_deal(
                record, owners=all_owners, stages=stages, portal=portal, history=history
            )

        gathered = self._gather(owner_ids, pipelines, known_ids, convert)
        open_ids, parsed = gathered.open_ids, gathered.deals
        contact_links, people = gathered.links, gathered.people
        if not gathered.companies_readable:
            notes.append(
                f"company names left out: the token may not read companies (add the scope "
                f"{COMPANY_SCOPE} to the private app)"
            )
        extra = sorted(set(known_ids) - set(open_ids), key=int_or_str)
        deals: list[Deal] = []
        for deal_id in [*open_ids, *extra]:
            deal = parsed.pop(deal_id, None)
            if deal is None:
                continue  # deleted since the search, or a known deal HubSpot no longer has: "gone"
            contacts = tuple(
                Contact(
                    name=people[cid][0],
                    email=people[cid][1],
                    role=contact_role(labels, self.settings.role_labels),
                    title=people[cid][2],
                )
                for cid, labels in contact_links.get(deal_id, [])
                if cid in people
            )
            account = gathered.companies.get(deal_id)
            deals.append(replace(deal, contacts=contacts, account=account or deal.account))
        unowned = sum(1 for d in deals if not d.owner.email and d.is_open)
        if unowned:
            notes.append(f"{unowned} open deal(s) have no HubSpot owner and get no sheet")
        log.info(client.usage.summary())
        return FetchResult(source=self.source, deals=deals, notes=notes)

    def diagnose(self) -> Iterator[Check]:
        """``leadprep doctor``: token, scopes, pipelines and portal, one line each."""
        client = self.client
        try:
            owners = parse_owners(client.owners(archived=False))
        except LeadprepError as exc:
            yield Check("hubspot token", False, str(exc))
            return
        yield Check(
            "hubspot token",
            True,
            f"accepted by {self.settings.base_url} ({len(owners)} active owners)",
        )
        try:
            client.search({"filter_groups": [], "properties": ["dealname"], "limit": 1})
            client.sample_contacts()
        except LeadprepError as exc:
            yield Check("hubspot scopes", False, str(exc))
        else:
            yield Check("hubspot scopes", True, ", ".join(SCOPES))
        try:
            client.sample_companies()
        except CRMAuthError:
            yield Check(
                "hubspot companies",
                True,
                f"company names left out: add the scope {COMPANY_SCOPE} to show them",
            )
        except LeadprepError as exc:
            yield Check("hubspot companies", False, str(exc))
        else:
            yield Check("hubspot companies", True, f"readable ({COMPANY_SCOPE})")
        try:
            data = client.pipelines()
            stages = parse_pipelines(data)
            self._pipeline_ids(stages)
        except LeadprepError as exc:
            yield Check("hubspot pipelines", False, str(exc))
        else:
            names = [
                f"{p.get('label')} ({len(p.get('stages', []))} stages)"
                for p in data.get("results", [])
            ]
            yield Check("hubspot pipelines", True, "; ".join(names) or "none")
        try:
            definitions = client.association_labels().get("results", [])
        except LeadprepError as exc:
            yield Check("hubspot labels", False, str(exc))
        else:
            labels = sorted({d["label"] for d in definitions if d.get("label")})
            mapped = {k.lower(): v for k, v in self.settings.role_labels.items()}
            shown = [f"{x} → {mapped[x.lower()]}" if x.lower() in mapped else x for x in labels]
            yield Check(
                "hubspot labels",
                True,
                ", ".join(shown) or "no deal-contact labels: roles come from job titles",
            )
        if self.settings.write_back.tasks:
            yield self._write_scope()
        portal = parse_portal(client.account())
        yield Check(
            "hubspot portal",
            True,
            f"portal {portal.portal_id or 'unknown'}, time zone {portal.timezone}",
        )
        yield Check("hubspot usage", True, client.usage.summary())

    def _write_scope(self) -> Check:
        """Whether the token may write tasks: its scopes, as HubSpot says them for a private
        app's token (an OAuth token cannot be asked, and is then only warned about)."""
        try:
            scopes = self.client.token_scopes()
        except LeadprepError as exc:
            return Check(
                "hubspot write-back",
                True,
                f"the token's scopes cannot be read ({exc.message}); tasks need {TASK_SCOPE}",
                warn=True,
            )
        if TASK_SCOPE not in scopes:
            return Check(
                "hubspot write-back",
                False,
                f"write_back.tasks is on but the token lacks {TASK_SCOPE}: add it to the "
                "private app (Scopes tab), or turn write_back.tasks off",
            )
        return Check("hubspot write-back", True, f"tasks can be written ({TASK_SCOPE})")

    def _gather(
        self,
        owner_ids: list[str] | None,
        pipelines: list[str],
        known_ids: frozenset[str],
        convert: Callable[[dict[str, Any]], Deal],
    ) -> Gathered:
        """Search pages feed history and association batches as they arrive, so the two rate-limit
        buckets (search, and everything else) are used at the same time. History batches are
        parsed into deals by the worker that read them, so raw JSON never piles up."""
        open_ids: list[str] = []
        history_jobs: list[Future[list[Deal]]] = []
        link_jobs: list[Future[dict[str, list[tuple[str, list[str]]]]]] = []
        company_jobs: list[Future[dict[str, str] | None]] = []
        for_history: list[str] = []
        for_links: list[str] = []
        for_companies: list[str] = []

        def read_and_parse(ids: list[str]) -> list[Deal]:
            return [convert(record) for record in self.client.read_deals(ids).get("results", [])]

        with ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="hubspot"
        ) as pool:

            def submit(done: bool = False) -> None:
                while len(for_history) >= HISTORY_BATCH or (done and for_history):
                    chunk = for_history[:HISTORY_BATCH]
                    del for_history[:HISTORY_BATCH]
                    history_jobs.append(pool.submit(read_and_parse, chunk))
                while len(for_links) >= ASSOCIATION_BATCH or (done and for_links):
                    chunk = for_links[:ASSOCIATION_BATCH]
                    del for_links[:ASSOCIATION_BATCH]
                    link_jobs.append(pool.submit(self._associations, chunk))
                while len(for_companies) >= ASSOCIATION_BATCH or (done and for_companies):
                    chunk = for_companies[:ASSOCIATION_BATCH]
                    del for_companies[:ASSOCIATION_BATCH]
                    company_jobs.append(pool.submit(self._company_links, chunk))

            if owner_ids != []:
                for record in self._search_open(owner_ids, pipelines):
                    deal_id = str(record["id"])
                    open_ids.append(deal_id)
                    for_history.append(deal_id)
                    for_links.append(deal_id)
                    for_companies.append(deal_id)
                    submit()
            for_history.extend(sorted(set(known_ids) - set(open_ids), key=int_or_str))
            submit(done=True)
            deals = {deal.id: deal for job in history_jobs for deal in job.result()}
            links: dict[str, list[tuple[str, list[str]]]] = {}
            for job in link_jobs:
                links.update(job.result())
            contact_ids = sorted(
                {cid for targets in links.values() for cid, _ in targets}, key=int_or_str
            )
            contact_jobs = [
                pool.submit(self.client.read_contacts, chunk)
                for chunk in chunks(contact_ids, READ_BATCH)
            ]
            company_of: dict[str, str] = {}
            readable = True
            for company_job in company_jobs:
                found = company_job.result()
                readable = readable and found is not None
                company_of.update(found or {})
            company_ids = sorted(set(company_of.values()), key=int_or_str)
            name_jobs = [
                pool.submit(self.client.read_companies, chunk)
                for chunk in chunks(company_ids, READ_BATCH)
            ]
            people: dict[str, tuple[str, str | None, str | None]] = {}
            for job in contact_jobs:
                people.update(parse_contacts(job.result()))
            names: dict[str, str] = {}
            for name_job in name_jobs:
                names.update(parse_companies(name_job.result()))
        companies = {d: names[c] for d, c in company_of.items() if c in names}
        return Gathered(open_ids, deals, links, people, companies, readable)

    def _company_links(self, deal_ids: list[str]) -> dict[str, str] | None:
        """Deal id -> primary company id; None when the token may not read companies (the
        sheets then show no company names; nothing else changes)."""
        try:
            return parse_company_links(
                self.client.associations([{"id": i} for i in deal_ids], to="companies")
            )
        except CRMAuthError:
            return None

    def _pipeline_ids(self, stages: dict[str, StageInfo]) -> list[str]:
        wanted = self.settings.pipelines
        if not wanted:
            return []
        known = {s.pipeline for s in stages.values() if s.pipeline}
        resolved = [p for p in wanted if p in known]
        if len(resolved) != len(wanted):
            from leadprep.errors import ConfigError

            missing = [p for p in wanted if p not in known]
            raise ConfigError(
                f"crm.hubspot.pipelines: {', '.join(missing)} not found in HubSpot.",
                hint=f"Pipeline ids in this portal: {', '.join(sorted(known)) or 'none'}.",
            )
        return resolved

    def _search_open(
        self, owner_ids: list[str] | None, pipelines: list[str]
    ) -> Iterator[dict[str, Any]]:
        """Every open deal of the owners, paging with ``after`` and restarting past the result cap."""
        groups = list(chunks(owner_ids, IN_FILTER_VALUES)) if owner_ids is not None else [None]
        for group in groups:
            yield from self._search_group(group, pipelines)

    def _search_group(
        self, owner_ids: list[str] | None, pipelines: list[str]
    ) -> Iterator[dict[str, Any]]:
        page_size = self.settings.search_page_size
        base: list[dict[str, Any]] = [
            {"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"}
        ]
        if owner_ids is not None:
            base.append({"propertyName": "hubspot_owner_id", "operator": "IN", "values": owner_ids})
        if pipelines:
            base.append({"propertyName": "pipeline", "operator": "IN", "values": pipelines})
        last_id: str | None = None
        while True:  # one query per 10,000 results, continuing above the last id seen
            filters = list(base)
            if last_id is not None:
                filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": last_id})

            def page(after: str | None, filters: list[dict[str, Any]] = filters) -> dict[str, Any]:
                nonlocal page_size
                body: dict[str, Any] = {
                    "filter_groups": [{"filters": filters}],
                    "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                    # Only ids: the history batch read returns every property anyway.
                    "properties": ["hs_object_id"],
                    "limit": page_size,
                }
                if after:
                    body["after"] = after
                try:
                    return self.client.search(body)
                except HubSpotHTTPError as exc:
                    if (
                        exc.status == 400
                        and page_size > 100
                        and "limit" in json.dumps(exc.body).lower()
                    ):
                        page_size = 100  # older portals cap search pages at 100
                        return page(after)
                    raise

            fetched = 0
            for answer in walk_pages(page, _next_after, "HubSpot search", CRMUnavailableError):
                batch = answer.get("results", [])
                yield from batch
                fetched += len(batch)
                if not batch or not _next_after(answer):
                    return
                last_id = str(batch[-1]["id"])
                if fetched + page_size > SEARCH_RESULT_CAP:
                    break  # the next page would pass the cap: restart above last_id
            else:
                return

    def _associations(self, deal_ids: list[str]) -> dict[str, list[tuple[str, list[str]]]]:
        links: dict[str, list[tuple[str, list[str]]]] = {}

        def read(batch: list[tuple[str, str | None]]) -> AssociationPage:
            inputs = [{"id": i, "after": a} if a else {"id": i} for i, a in batch]
            return parse_associations(self.client.associations(inputs))

        def more(page: AssociationPage) -> list[tuple[str, str | None]]:
            return list(page.cursors.items())

        first: list[tuple[str, str | None]] = [(i, None) for i in deal_ids]
        pages = walk_batches(
            first,
            ASSOCIATION_BATCH,
            read,
            more,
            "HubSpot associations",
            CRMUnavailableError,
        )
        for page in pages:
            for deal_id, targets in page.contacts.items():
                links.setdefault(deal_id, []).extend(targets)
        return links


def int_or_str(value: str) -> tuple[int, str]:
    """Sort key for HubSpot ids: numeric order when numeric."""
    return (int(value), "") if value.isdigit() else (0, value)
