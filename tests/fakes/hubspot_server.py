"""A fake HubSpot API on 127.0.0.1 for tests and benchmarks.

It serves the documented shapes of the endpoints leadprep uses and enforces their documented
limits (search page size, 10,000-result cap, filter counts, 50 ids with history, 100 ids per batch
read, 1,000 association inputs, search 4/s, 100 requests per 10 s), pages per-deal associations,
injects 429s and 5xx on demand, and counts every request.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.loopback import LoopbackServer, Response

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
HISTORY_LIMIT_MESSAGE = (
    "The maximum number of inputs supported in a batch request for property histories is 50. "
    "Please reduce the number of items and try again"
)

STAGES = [
    ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", "false"),
    ("presentationscheduled", "Presentation Scheduled", "0.6", "false"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"),
    ("contractsent", "Contract Sent", "0.9", "false"),
    ("closedwon", "Closed Won", "1.0", "true"),
    ("closedlost", "Closed Lost", "0.0", "true"),
]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class FakeDeal:
    id: str
    properties: dict[str, str | None]
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # newest first
    contacts: list[tuple[str, list[str]]] = field(default_factory=list)  # (contact id, labels)
    companies: list[tuple[str, bool]] = field(default_factory=list)  # (company id, primary)


@dataclass
class Portal:
    owners: list[dict[str, Any]] = field(default_factory=list)
    archived_owners: list[dict[str, Any]] = field(default_factory=list)
    deals: dict[str, FakeDeal] = field(default_factory=dict)
    contacts: dict[str, dict[str, str | None]] = field(default_factory=dict)
    companies: dict[str, dict[str, str | None]] = field(default_factory=dict)
    portal_id: int = 4242
    time_zone: str = "America/New_York"

    def pipelines(self) -> dict[str, Any]:
        return {
            "results": [
                {
                    "id": "default",
                    "label": "Sales Pipeline",
                    "displayOrder": 0,
                    "archived": False,
                    "stages": [
                        {
                            "id": sid,
                            "label": label,
                            "displayOrder": i,
                            "archived": False,
                            "metadata": {"isClosed": closed, "probability": prob},
                        }
                        for i, (sid, label, prob, closed) in enumerate(STAGES)
                    ],
                }
            ]
        }


def build_portal(
    open_per_owner: list[int],
    *,
    closed: int = 0,
    today: date = date(2026, 11, 30),
    seed: int = 1,
    max_contacts: int = 5,
    archived_owner: bool = False,
) -> Portal:
    """A seeded portal: one owner per entry with that many open deals, plus ``closed`` closed ones."""
    rng = random.Random(seed)
    portal = Portal()
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    for n, _ in enumerate(open_per_owner):
        owner = {
            "id": str(1000 + n),
            "email": f"rep{n}@example.com",
            "firstName": f"Rep{n}",
            "lastName": "Seller",
            "userId": 9000 + n,
            "archived": False,
        }
        (portal.archived_owners if archived_owner and n == 0 else portal.owners).append(
            {**owner, "archived": archived_owner and n == 0}
        )
    contact_id = 50_000
    company_id = 80_000
    company_rng = random.Random(seed + 7)  # its own stream: the deals stay what they were
    deal_id = 10_000
    labels = ["Decision Maker", "Champion", "Economic Buyer", None, None]
    plan = [(n, False) for n, count in enumerate(open_per_owner) for _ in range(count)]
    plan += [(rng.randrange(len(open_per_owner)), True) for _ in range(closed)]
    rng.shuffle(plan)
    for owner_index, is_closed in plan:
        deal_id += rng.randint(1, 7)
        stage_id, _, prob, _ = (
            STAGES[rng.randrange(5)] if not is_closed else STAGES[rng.choice([5, 6])]
        )
        close = today + timedelta(days=rng.randint(-20, 90))
        created = now - timedelta(days=rng.randint(40, 200))
        history: dict[str, list[dict[str, Any]]] = {}
        closes = [
            close - timedelta(days=15 * k) for k in range(rng.choice([0, 0, 1, 2, 3]), -1, -1)
        ]
        history["closedate"] = [
            {
                "value": iso(
                    datetime.combine(c, datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
                ),
                "timestamp": iso(created + timedelta(days=10 * i)),
                "sourceType": "CRM_UI",
                "sourceId": "userId:1",
            }
            for i, c in enumerate(closes)
        ][::-1]
        amount = str(rng.randint(5, 250) * 1000)
        history["amount"] = [{"value": amount, "timestamp": iso(created), "sourceType": "CRM_UI"}]
        history["dealstage"] = [
            {
                "value": stage_id,
                "timestamp": iso(created + timedelta(days=5)),
                "sourceType": "CRM_UI",
            }
        ]
        next_step = rng.choice([None, "Pricing call", "Security review", "Send MSA"])
        history["hs_next_step"] = (
            [
                {
                    "value": next_step,
                    "timestamp": iso(now - timedelta(days=rng.randint(1, 30))),
                    "sourceType": "CRM_UI",
                }
            ]
            if next_step
            else []
        )
        owners = portal.owners + portal.archived_owners
        owner = next(o for o in owners if o["id"] == str(1000 + owner_index))
        props = {
            "hs_object_id": str(deal_id),
            "dealname": f"Deal {deal_id}",
            "amount": amount,
            "deal_currency_code": "USD",
            "closedate": history["closedate"][0]["value"],
            "dealstage": stage_id,
            "pipeline": "default",
            "hubspot_owner_id": owner["id"],
            "hs_next_step": next_step,
            "notes_last_updated": iso(now - timedelta(days=rng.randint(0, 40))),
            "notes_last_contacted": None,
            "notes_next_activity_date": None,
            "hs_forecast_category": rng.choice(["pipeline", "best_case", "commit"]),
            "hs_deal_stage_probability": prob,
            "createdate": iso(created),
            "hs_is_closed": "true" if is_closed else "false",
            "hs_is_closed_won": "true" if stage_id == "closedwon" else "false",
            "hs_v2_date_entered_current_stage": iso(created + timedelta(days=5)),
        }
        deal = FakeDeal(str(deal_id), props, history)
        for _ in range(rng.randint(0, max_contacts)):
            contact_id += 1
            cid = str(contact_id)
            portal.contacts[cid] = {
                "firstname": f"First{cid}",
                "lastname": f"Last{cid}",
                "email": f"c{cid}@buyer.example",
                "jobtitle": rng.choice(["VP Finance", "IT Manager", "Analyst", None]),
            }
            label = rng.choice(labels)
            deal.contacts.append((cid, [label] if label else []))
        # Most deals have a company; a few have two, the primary one listed second.
        draw = company_rng.random()
        for primary in [True] if draw < 0.8 else [False, True] if draw < 0.9 else []:
            company_id += 1
            portal.companies[str(company_id)] = {
                "name": f"Company {company_id} Inc.",
                "domain": f"c{company_id}.example",
            }
            deal.companies.append((str(company_id), primary))
        portal.deals[deal.id] = deal
    return portal


class FakeHubSpot(LoopbackServer):
    """The server; use as a context manager. ``url`` is its base URL."""

    def __init__(
        self,
        portal: Portal,
        *,
        token: str = TOKEN,
        association_page_size: int = 500,
        search_max_limit: int = 200,
        search_per_second: int | None = 4,
        burst_per_10s: int | None = 100,
        latency: float = 0.0,
        missing_scopes: bool = False,
        forbidden: frozenset[str] = frozenset(),
    ) -> None:
        self.portal = portal
        self.token = token
        self.association_page_size = association_page_size
        self.search_max_limit = search_max_limit
        self.search_per_second = search_per_second
        self.burst_per_10s = burst_per_10s
        self.latency = latency
        self.missing_scopes = missing_scopes
        self.forbidden = forbidden  # request kinds refused for a missing scope
        self.result_cap = 10_000
        self.rate_limited = 0
        self.rate_limited_kinds: Counter[str] = Counter()
        self.fault: (
            Callable[[int, str], tuple[int, dict[str, str], dict[str, Any]] | None] | None
        ) = None
        self._requests = 0
        self._lock = threading.Lock()
        self._search_times: deque[float] = deque()
        self._burst_times: deque[float] = deque()
        self._daily = 250_000
        self.task_api = FakeTasks(portal)
        self.scopes = {  # the private app's scopes, as access-token-info says them
            "crm.objects.deals.read", "crm.objects.contacts.read", "crm.objects.owners.read",
            "crm.objects.companies.read", "crm.objects.contacts.write",
        }  # fmt: skip
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- fault helpers --------------------------------------------------------------------------

    def inject(
        self,
        *,
        rate_429: float = 0.0,
        fail_5xx: set[int] = frozenset(),
        seed: int = 3,
        retry_after: str | None = "0.01",
    ) -> None:
        """Answer a share of requests with 429 and the given request numbers with 503."""
        rng = random.Random(seed)

        def fault(n: int, path: str):
            if n in fail_5xx:
                return (
                    503,
                    {},
                    {
                        "status": "error",
                        "message": "Service Unavailable",
                        "category": "INTERNAL_ERROR",
                    },
                )
            if rng.random() < rate_429:
                headers = {"Retry-After": retry_after} if retry_after else {}
                return (
                    429,
                    headers,
                    {
                        "status": "error",
                        "message": "You have reached your ten_secondly_rolling limit.",
                        "errorType": "RATE_LIMIT",
                        "policyName": "TEN_SECONDLY_ROLLING",
                    },
                )
            return None

        self.fault = fault

    # --- request handling -----------------------------------------------------------------------

    def respond(self, method: str, target: str, headers: Any, raw: bytes) -> Response:
        status, extra, body = self.handle(method, target, headers, raw)
        return status, body, extra, "text/html" if isinstance(body, bytes) else "application/json"

    def handle(
        self, method: str, target: str, headers: Any, raw: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if self.latency:
            time.sleep(self.latency)
        url = urlparse(target)
        path, query = url.path, parse_qs(url.query)
        kind = self._kind(method, path)
        with self._lock:
            self._requests += 1
            number = self._requests
            self.counts[kind] += 1
            self._daily -= 1
            limit_hit = self._rate_limited(kind)
        budget = {
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": str(self._daily),
        }
        if headers.get("Authorization") != f"Bearer {self.token}":
            return (
                401,
                budget,
                {
                    "status": "error",
                    "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
                    "category": "INVALID_AUTHENTICATION",
                    "correlationId": "c0ffee",
                },
            )
        if (self.missing_scopes and kind != "owners") or kind in self.forbidden:
            return (
                403,
                budget,
                {
                    "status": "error",
                    "message": "This app hasn't been granted all required scopes to make this call.",
                    "category": "MISSING_SCOPES",
                    "errors": [
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": ["crm.objects.deals.read"]},
                        }
                    ],
                },
            )
        if limit_hit:
            self.rate_limited += 1
            self.rate_limited_kinds[kind] += 1
            policy = "SECONDLY" if kind == "search" else "TEN_SECONDLY_ROLLING"
            return (
                429,
                budget,
                {
                    "status": "error",
                    "message": f"You have reached your {policy.lower()} limit.",
                    "errorType": "RATE_LIMIT",
                    "policyName": policy,
                },
            )
        if self.fault is not None:
            injected = self.fault(number, path)
            if injected is not None:
                status, extra, body = injected
                return status, {**budget, **extra}, body
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return (
                400,
                budget,
                {
                    "status": "error",
                    "message": "Invalid input JSON",
                    "category": "VALIDATION_ERROR",
                },
            )
        status, payload = self._route(kind, path, query, body)
        if self.task_api.loses_answer(kind, status):
            # acted, then the answer was lost (a gateway timed out after HubSpot wrote it)
            return 504, budget, {"status": "error", "message": "Gateway Timeout"}
        return status, budget, payload

    @staticmethod
    def _kind(method: str, path: str) -> str:
        if path.endswith("/deals/search"):
            return "search"
        if path == "/crm/v3/objects/tasks/search":
            return "task search"
        if path == "/oauth/v2/private-apps/get/access-token-info":
            return "token"
        if path.startswith("/crm/v3/objects/tasks/batch/"):
            return "tasks " + path.rsplit("/", 1)[1]  # create, update, archive
        if "/associations/deals/companies/" in path and path.endswith("/batch/read"):
            return "company associations"
        if "/associations/" in path and path.endswith("/batch/read"):
            return "associations"
        if path.endswith("/companies/batch/read") or path == "/crm/v3/objects/companies":
            return "companies"
        if "/associations/" in path and path.endswith("/labels"):
            return "labels"
        if path.endswith("/deals/batch/read"):
            return "deal history"
        if path.endswith("/contacts/batch/read"):
            return "contacts"
        if path == "/crm/v3/objects/contacts":
            return "contacts"
        if path.startswith("/crm/v3/objects/contacts/"):
            return "contact (one)"
        if path.startswith("/crm/v3/objects/deals/") and method == "GET":
            return "deal (one)"
        if path.startswith("/crm/v4/objects/deals/"):
            return "associations (one deal)"
        if path.startswith("/crm/v3/owners"):
            return "owners"
        if path.startswith("/crm/v3/pipelines"):
            return "pipelines"
        if path.startswith("/account-info"):
            return "account"
        return f"{method} {path}"

    def _rate_limited(self, kind: str) -> bool:
        now = time.monotonic()
        if kind in ("search", "task search") and self.search_per_second:
            window, limit, times = 1.0, self.search_per_second, self._search_times
        elif kind not in ("search", "task search") and self.burst_per_10s:
            window, limit, times = 10.0, self.burst_per_10s, self._burst_times
        else:
            return False
        while times and now - times[0] >= window:
            times.popleft()
        if len(times) >= limit:
            return True
        times.append(now)
        return False

    def _route(
        self, kind: str, path: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if kind.startswith("task"):
            return self.task_api.route(kind, body)
        if kind == "token":
            if body.get("tokenKey") != self.token:
                return 404, _error("token not found")
            return 200, {"userId": 7, "hubId": self.portal.portal_id, "appId": 42,
                         "scopes": sorted(self.scopes)}  # fmt: skip
        if kind == "owners":
            archived = query.get("archived", ["false"])[0].lower() == "true"
            owners = self.portal.archived_owners if archived else self.portal.owners
            limit = int(query.get("limit", ["100"])[0])
            if limit > 500:
                return 400, _error("limit must be at most 500")
            start = int(query.get("after", ["0"])[0])
            page = owners[start : start + limit]
            out: dict[str, Any] = {"results": page}
            if start + limit < len(owners):
                out["paging"] = {"next": {"after": str(start + limit), "link": "?after=..."}}
            return 200, out
        if kind == "pipelines":
            return 200, self.portal.pipelines()
        if kind == "account":
            return 200, {
                "portalId": self.portal.portal_id,
                "accountType": "STANDARD",
                "timeZone": self.portal.time_zone,
                "companyCurrency": "USD",
                "additionalCurrencies": [],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18000000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        if kind == "search":
            return self._search(body)
        if kind == "deal history":
            return self._read_deals(body)
        if kind == "associations":
            return self._associations(body, "contacts")
        if kind == "company associations":
            return self._associations(body, "companies")
        if kind == "companies" and path == "/crm/v3/objects/companies":
            first = next(iter(self.portal.companies.items()), None)
            return 200, {"results": [{"id": first[0], "properties": {}}] if first else []}
        if kind == "companies":
            return self._read_companies(body)
        if kind == "contacts" and path == "/crm/v3/objects/contacts":
            first = next(iter(self.portal.contacts.items()), None)
            return 200, {"results": [{"id": first[0], "properties": {}}] if first else []}
        if kind == "contacts":
            return self._read_contacts(body)
        if kind == "deal (one)":  # GET /crm/v3/objects/deals/{id}?propertiesWithHistory=...
            deal = self.portal.deals.get(path.rsplit("/", 1)[-1])
            if deal is None:
                return 404, _error("not found")
            record = _record(deal, query.get("properties", [""])[0].split(","))
            wanted = query.get("propertiesWithHistory", [""])[0].split(",")
            record["propertiesWithHistory"] = {p: deal.history.get(p, []) for p in wanted if p}
            return 200, record
        if (
            kind == "associations (one deal)"
        ):  # GET /crm/v4/objects/deals/{id}/associations/contacts
            deal = self.portal.deals.get(path.split("/")[5])
            targets = deal.contacts if deal else []
            return 200, {
                "results": [
                    {
                        "toObjectId": int(cid),
                        "associationTypes": [
                            {"category": "USER_DEFINED", "typeId": 1, "label": label}
                            for label in labels
                        ],
                    }
                    for cid, labels in targets
                ]
            }
        if kind == "contact (one)":
            cid = path.rsplit("/", 1)[-1]
            props = self.portal.contacts.get(cid)
            return (200, {"id": cid, "properties": props}) if props else (404, _error("not found"))
        if kind == "labels":
            return 200, {
                "results": [
                    {"category": "USER_DEFINED", "typeId": 1, "label": "Decision Maker"},
                    {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None},
                ]
            }
        return 404, _error(f"no route for {path}")

    def _search(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        limit = int(body.get("limit", 10))
        if limit > self.search_max_limit:
            return 400, _error(f"limit must be at most {self.search_max_limit}; got {limit}")
        groups = body.get("filterGroups") or []
        if (
            len(groups) > 5
            or any(len(g.get("filters", [])) > 10 for g in groups)
            or sum(len(g.get("filters", [])) for g in groups) > 25
        ):
            return 400, _error("too many filters (max 5 groups, 10 filters per group, 25 in total)")
        matches = [
            d
            for d in self.portal.deals.values()
            if not groups or any(_match(d, g["filters"]) for g in groups)
        ]
        sorts = body.get("sorts") or []
        if sorts and sorts[0].get("propertyName") == "hs_object_id":
            matches.sort(key=lambda d: int(d.id), reverse=sorts[0].get("direction") == "DESCENDING")
        after = int(body.get("after") or 0)
        if after + limit > self.result_cap:
            return 400, _error(
                f"The search API can return at most {self.result_cap:,} results for a query."
            )
        page = matches[after : after + limit]
        wanted = body.get("properties") or [
            "dealname",
            "amount",
            "closedate",
            "pipeline",
            "dealstage",
        ]
        out: dict[str, Any] = {"total": len(matches), "results": [_record(d, wanted) for d in page]}
        if after + limit < len(matches):
            out["paging"] = {"next": {"after": str(after + limit), "link": "?after=..."}}
        return 200, out

    def _read_deals(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for key in ("inputs", "properties", "propertiesWithHistory"):
            if key not in body:
                return 400, _error(f"{key} is required")
        inputs = body["inputs"]
        if body["propertiesWithHistory"] and len(inputs) > 50:
            return 400, {
                "status": "error",
                "message": HISTORY_LIMIT_MESSAGE,
                "correlationId": "c0ffee",
                "category": "VALIDATION_ERROR",
            }
        if len(inputs) > 100:
            return 400, _error("The maximum number of inputs supported in a batch request is 100.")
        results = []
        for item in inputs:
            deal = self.portal.deals.get(str(item["id"]))
            if deal is None:
                continue
            record = _record(deal, body["properties"])
            record["propertiesWithHistory"] = {
                p: deal.history.get(p, []) for p in body["propertiesWithHistory"]
            }
            results.append(record)
        return (200 if len(results) == len(inputs) else 207), _batch(
            results, len(inputs) - len(results)
        )

    def _associations(self, body: dict[str, Any], to: str) -> tuple[int, dict[str, Any]]:
        """A v4 association batch read from deals to contacts or companies, paged per deal."""
        inputs = body.get("inputs") or []
        if len(inputs) > 1000:
            return 400, _error("The maximum number of inputs supported in a batch request is 1000.")
        results = []
        for item in inputs:
            deal = self.portal.deals.get(str(item["id"]))
            targets = _association_targets(deal, to) if deal is not None else []
            if not targets:
                continue
            start = int(item.get("after") or 0)
            chunk = targets[start : start + self.association_page_size]
            result: dict[str, Any] = {
                "from": {"id": deal.id},
                "to": [{"toObjectId": int(t), "associationTypes": kinds} for t, kinds in chunk],
            }
            if start + self.association_page_size < len(targets):
                result["paging"] = {
                    "next": {"after": str(start + self.association_page_size), "link": None}
                }
            results.append(result)
        return 200, _batch(results, 0)

    def _read_companies(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        inputs = body.get("inputs") or []
        if len(inputs) > 100:
            return 400, _error("The maximum number of inputs supported in a batch request is 100.")
        wanted = body.get("properties") or []
        results = [
            {"id": str(item["id"]), "properties": {k: props.get(k) for k in wanted}}
            for item in inputs
            if (props := self.portal.companies.get(str(item["id"]))) is not None
        ]
        return 200, _batch(results, 0)

    def _read_contacts(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        inputs = body.get("inputs") or []
        if len(inputs) > 100:
            return 400, _error("The maximum number of inputs supported in a batch request is 100.")
        results = []
        for item in inputs:
            props = self.portal.contacts.get(str(item["id"]))
            if props is not None:
                wanted = body.get("properties") or []
                results.append(
                    {
                        "id": str(item["id"]),
                        "properties": {k: props.get(k) for k in wanted},
                        "createdAt": "2026-01-01T00:00:00Z",
                        "updatedAt": "2026-01-01T00:00:00Z",
                        "archived": False,
                    }
                )
        return 200, _batch(results, 0)


def _association_targets(deal: FakeDeal, to: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """(target id, association types) as HubSpot lists them: every contact with the unlabeled
    type 3 plus its labels; every company with type 341, plus type 5 "Primary" for the primary."""
    if to == "contacts":
        return [
            (
                cid,
                [{"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]
                + [
                    {"category": "USER_DEFINED", "typeId": 100 + i, "label": label}
                    for i, label in enumerate(labels)
                ],
            )
            for cid, labels in deal.contacts
        ]
    return [
        (
            cid,
            ([{"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"}] if primary else [])
            + [{"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None}],
        )
        for cid, primary in deal.companies
    ]


def _error(message: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": "c0ffee",
        "category": "VALIDATION_ERROR",
    }


def _batch(results: list[dict[str, Any]], errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": "2026-11-30T09:00:00.000Z",
        "completedAt": "2026-11-30T09:00:00.050Z",
    }
    if errors:
        out["numErrors"] = errors
        out["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some DEAL objects",
            }
        ]
    return out


def _record(deal: FakeDeal, wanted: list[str]) -> dict[str, Any]:
    props = {k: deal.properties.get(k) for k in wanted if k in deal.properties}
    props["hs_object_id"] = deal.id
    return {
        "id": deal.id,
        "properties": props,
        "createdAt": deal.properties.get("createdate"),
        "updatedAt": "2026-11-29T10:00:00.000Z",
        "archived": False,
    }


def _match(deal: FakeDeal, filters: list[dict[str, Any]]) -> bool:
    for f in filters:
        name, op = f["propertyName"], f["operator"]
        value = deal.id if name == "hs_object_id" else deal.properties.get(name)
        if op == "EQ" and str(value) != str(f.get("value")):
            return False
        if op == "NEQ" and str(value) == str(f.get("value")):
            return False
        if op == "IN" and str(value) not in [str(v) for v in f.get("values", [])]:
            return False
        if op == "NOT_IN" and str(value) in [str(v) for v in f.get("values", [])]:
            return False
        if op == "GT" and not (value is not None and int(value) > int(f["value"])):
            return False
        if op not in {"EQ", "NEQ", "IN", "NOT_IN", "GT"}:
            raise ValueError(f"fake does not support operator {op}")
    return True


class FakeTasks:
    """HubSpot's task objects as the write-back uses them: batch create (at most 100 inputs,
    ``hs_timestamp`` required, a known owner, an existing deal for the task→deal association
    216), batch update and archive, and a search that finds a task only ``index_delay`` seconds
    after it was created (HubSpot's search is eventually consistent). ``lose(share)`` makes that
    share of batch creates act and then answer 504, as a gateway timing out after the write."""

    BATCH = 100

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.tasks: dict[str, dict[str, Any]] = {}  # id -> {properties, deal, created}
        self.index_delay = 0.0
        self._next = 9_000_000
        self._lose = 0.0
        self._rng = random.Random(5)
        self._lock = threading.Lock()
        self.creates = 0  # tasks created, duplicates included
        self.lost = 0  # batch creates that acted and then lost their answer

    def lose(self, share: float, seed: int = 5) -> None:
        self._lose, self._rng = share, random.Random(seed)

    def loses_answer(self, kind: str, status: int) -> bool:
        with self._lock:
            lost = kind == "tasks create" and status < 300 and self._rng.random() < self._lose
            self.lost += lost
            return lost

    def route(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        inputs = body.get("inputs")
        if kind != "task search" and (not isinstance(inputs, list) or not inputs):
            return 400, _error("inputs is required")
        if kind != "task search" and len(inputs) > self.BATCH:
            return 400, _error(f"Batch input limit is {self.BATCH}")
        with self._lock:
            if kind == "tasks create":
                return self._create(inputs)
            if kind == "tasks update":
                return self._update(inputs)
            if kind == "tasks archive":
                for item in inputs:
                    self.tasks.pop(str(item.get("id")), None)
                return 204, {}
            if kind == "task search":
                return self._search(body)
        return 404, _error(f"no route for {kind}")

    def _problems(self, props: dict[str, Any], associations: list[Any]) -> list[str]:
        owners = {o["id"] for o in self.portal.owners}
        problems = []
        if not props.get("hs_timestamp"):
            problems.append("Property hs_timestamp is required")
        if props.get("hubspot_owner_id") and str(props["hubspot_owner_id"]) not in owners:
            problems.append(f"{props['hubspot_owner_id']} is not a valid owner id")
        status = props.get("hs_task_status")
        if status and status not in (
            "NOT_STARTED",
            "IN_PROGRESS",
            "WAITING",
            "COMPLETED",
            "DEFERRED",
        ):
            problems.append(f"{status} is not a valid hs_task_status")
        for link in associations:
            deal = str((link.get("to") or {}).get("id"))
            types = [t.get("associationTypeId") for t in link.get("types", [])]
            if deal not in self.portal.deals:
                problems.append(f"deal {deal} does not exist")
            if types != [216]:
                problems.append(f"association type {types} is not task to deal")
        return problems

    def _create(self, inputs: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        for item in inputs:  # HubSpot refuses the whole batch for one bad input
            problems = self._problems(item.get("properties") or {}, item.get("associations") or [])
            if problems:
                return 400, {**_error("; ".join(problems)), "category": "VALIDATION_ERROR"}
        results = []
        for item in inputs:
            self._next += 1
            task_id = str(self._next)
            deals = [str(a["to"]["id"]) for a in item.get("associations") or []]
            self.tasks[task_id] = {
                "properties": dict(item["properties"]),
                "deals": deals,
                "created": time.monotonic(),
            }
            self.creates += 1
            results.append({"id": task_id, "properties": dict(item["properties"])})
        return 201, {"status": "COMPLETE", "results": results}

    def _update(self, inputs: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        results, missing = [], []
        for item in inputs:
            task = self.tasks.get(str(item.get("id")))
            if task is None:
                missing.append(str(item.get("id")))
                continue
            task["properties"].update(item.get("properties") or {})
            results.append({"id": str(item["id"]), "properties": task["properties"]})
        out: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            out["errors"] = [
                {"status": "error", "category": "OBJECT_NOT_FOUND",
                 "message": "Could not find objects", "context": {"ids": missing}}
            ]  # fmt: skip
            return 207, out
        return 200, out

    def _search(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        groups = body.get("filterGroups") or []
        if len(groups) > 5:
            return 400, _error("at most 5 filterGroups")
        wanted = set()
        for group in groups:
            for f in group.get("filters", []):
                if (
                    f.get("propertyName") != "hs_task_subject"
                    or f.get("operator") != "CONTAINS_TOKEN"
                ):
                    return 400, _error("the fake searches hs_task_subject CONTAINS_TOKEN only")
                wanted.add(str(f.get("value")))
        seen = time.monotonic() - self.index_delay
        results = [
            {"id": task_id, "properties": task["properties"]}
            for task_id, task in self.tasks.items()
            if task["created"] <= seen
            and any(key in task["properties"].get("hs_task_subject", "") for key in wanted)
        ]
        return 200, {"total": len(results), "results": results}
