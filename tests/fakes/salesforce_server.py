"""A fake Salesforce REST API over HTTPS on 127.0.0.1 for tests and benchmarks.

It answers the SOQL leadprep sends (parent fields, child subqueries, IN/=/AND filters), checks
every field against the org's fields (INVALID_FIELD otherwise), pages the top level at the batch
size and child subqueries at their own page size with their own nextRecordsUrl, returns null for
empty child sets, errors in Salesforce's JSON array shape, injects REQUEST_LIMIT_EXCEEDED and 5xx
on demand, sends Sforce-Limit-Info, accepts a SOAP password login, and counts every request.
"""

from __future__ import annotations

import json
import random
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import trustme

from tests.fakes.loopback import LoopbackServer, Response

TOKEN = "00DFAKE0000000!AQ0AQFAKESESSIONTOKEN1234567890"
VERSION = "59.0"
STAGES = [
    ("Prospecting", 10, False, False),
    ("Qualification", 20, False, False),
    ("Needs Analysis", 30, False, False),
    ("Proposal/Price Quote", 60, False, False),
    ("Negotiation/Review", 80, False, False),
    ("Closed Won", 100, True, True),
    ("Closed Lost", 0, True, False),
]
ROLES = [
    "Decision Maker",
    "Economic Buyer",
    "Technical Buyer",
    "Influencer",
    "Evaluator",
    "Business User",
]
OPPORTUNITY_FIELDS = {
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
    "AccountId",
    "LastStageChangeDate",
    "PushCount",
    "Owner.Name",
    "Owner.Email",
    "Account.Name",
}
HISTORY_FIELDS = {"StageName", "CloseDate", "Amount", "CreatedDate", "PrevCloseDate", "PrevAmount"}
ROLE_FIELDS = {"Role", "IsPrimary", "Contact.Name", "Contact.Email", "Contact.Title"}
STAGE_FIELDS = {
    "ApiName",
    "MasterLabel",
    "IsClosed",
    "IsWon",
    "DefaultProbability",
    "SortOrder",
    "IsActive",
}
USER_FIELDS = {"Id", "Name", "Email", "IsActive", "ManagerId", "Manager.Email", "Manager.Name"}


def sf_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class Org:
    users: list[dict[str, Any]] = field(default_factory=list)
    opportunities: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    opportunity_fields: set[str] = field(default_factory=lambda: set(OPPORTUNITY_FIELDS))


def build_org(
    open_per_owner: list[int],
    *,
    closed: int = 0,
    today: date = date(2026, 11, 30),
    seed: int = 1,
    max_roles: int = 4,
    history_rows: tuple[int, int] = (1, 4),
    manager_email: str = "dana@example.com",
) -> Org:
    """A seeded org: one rep (reporting to one manager) per entry, with that many open opportunities."""
    rng = random.Random(seed)
    org = Org()
    org.users.append(
        {
            "Id": "005000000000MGR",
            "Name": "Dana Kim",
            "Email": manager_email,
            "IsActive": True,
            "ManagerId": None,
        }
    )
    for n, _ in enumerate(open_per_owner):
        org.users.append(
            {
                "Id": f"0050000000{n:05d}",
                "Name": f"Rep {n}",
                "Email": f"rep{n}@example.com",
                "IsActive": True,
                "ManagerId": "005000000000MGR",
            }
        )
    plan = [(n, False) for n, count in enumerate(open_per_owner) for _ in range(count)]
    plan += [(rng.randrange(len(open_per_owner)), True) for _ in range(closed)]
    rng.shuffle(plan)
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    for i, (owner, is_closed) in enumerate(plan):
        opp_id = f"006{i:012d}AAA"
        stage, prob, closed_flag, won = (
            STAGES[rng.randrange(5)] if not is_closed else STAGES[rng.choice([5, 6])]
        )
        created = now - timedelta(days=rng.randint(40, 200))
        close = today + timedelta(days=rng.randint(-15, 100))
        amount = float(rng.randint(5, 300) * 1000)
        rows = []
        steps = rng.randint(*history_rows)
        closes = [close - timedelta(days=20 * k) for k in range(steps - 1, -1, -1)]
        prev = None
        for k, c in enumerate(closes):
            rows.append(
                {
                    "StageName": stage
                    if k == steps - 1
                    else STAGES[max(0, STAGES.index((stage, prob, closed_flag, won)) - 1)][0],
                    "CloseDate": c.isoformat(),
                    "Amount": amount,
                    "CreatedDate": sf_datetime(created + timedelta(days=9 * k)),
                    "PrevCloseDate": prev.isoformat() if prev else None,
                    "PrevAmount": amount if prev else None,
                }
            )
            prev = c
        org.histories[opp_id] = rows
        org.roles[opp_id] = [
            {
                "Role": rng.choice([*ROLES, None]),
                "IsPrimary": j == 0,
                "Contact": {
                    "Name": f"Contact {opp_id[-6:]}-{j}",
                    "Email": f"c{j}.{opp_id[-6:]}@buyer.example",
                    "Title": rng.choice(["VP Operations", "Analyst", "IT Manager", None]),
                },
            }
            for j in range(rng.randint(0, max_roles))
        ]
        org.opportunities[opp_id] = {
            "Id": opp_id,
            "Name": f"Opportunity {i}",
            "StageName": stage,
            "Amount": amount,
            "CloseDate": close.isoformat(),
            "Probability": float(prob),
            "ForecastCategoryName": rng.choice(["Pipeline", "Best Case", "Commit"])
            if not is_closed
            else "Closed",
            "NextStep": rng.choice([None, "Demo with IT", "Send order form"]),
            "LastActivityDate": (today - timedelta(days=rng.randint(0, 40))).isoformat(),
            "CreatedDate": sf_datetime(created),
            "IsClosed": closed_flag,
            "IsWon": won,
            "OwnerId": f"0050000000{owner:05d}",
            "AccountId": f"001{i:012d}AAA",
            "Account": {"Name": f"Account {i}"} if rng.random() > 0.05 else None,
            "LastStageChangeDate": rows[-1]["CreatedDate"],
            "PushCount": rng.randint(0, 9),  # deliberately unrelated to the history
        }
    return org


# --- SOQL --------------------------------------------------------------------------------------


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses and quotes (case-insensitive for words)."""
    parts, depth, quote, start, i = [], 0, False, 0, 0
    low, sep_low = text.lower(), sep.lower()
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == "'":
                quote = False
        elif ch == "'":
            quote = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and low.startswith(sep_low, i):
            parts.append(text[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _literal(token: str) -> Any:
    token = token.strip()
    if token.startswith("'"):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    if token.lower() == "null":
        return None
    return token


@dataclass
class Query:
    fields: list[str]
    subqueries: list[Query]
    sobject: str
    where: list[tuple[str, str, Any]]


def parse_soql(soql: str) -> Query:
    soql = " ".join(soql.split())
    if not soql.upper().startswith("SELECT "):
        raise ValueError("query must start with SELECT")
    head, *rest = _split_top(soql[7:], " FROM ")
    if not rest:
        raise ValueError("no FROM")
    tail = rest[0]
    order = _split_top(tail, " ORDER BY ")
    where_parts = _split_top(order[0], " WHERE ")
    sobject = where_parts[0].strip()
    fields, subs = [], []
    for item in _split_top(head, ","):
        if item.startswith("("):
            subs.append(parse_soql(item[1:-1]))
        else:
            fields.append(item)
    conditions = []
    if len(where_parts) > 1:
        for cond in _split_top(where_parts[1], " AND "):
            match = re.match(r"^([\w.]+)\s+IN\s*\((.*)\)$", cond, re.IGNORECASE)
            if match:
                conditions.append(
                    (match.group(1), "IN", [_literal(v) for v in _split_top(match.group(2), ",")])
                )
                continue
            likes = re.findall(r"([\w.]+)\s+LIKE\s+('(?:[^'\\]|\\.)*')", cond, re.IGNORECASE)
            if likes:  # Field LIKE '…' (OR Field LIKE '…')*, in brackets when more than one
                conditions.append((likes[0][0], "LIKE", [_literal(v) for _, v in likes]))
                continue
            match = re.match(r"^([\w.]+)\s*=\s*(.+)$", cond)
            if not match:
                raise ValueError(f"unsupported condition {cond!r}")
            conditions.append((match.group(1), "=", _literal(match.group(2))))
    return Query(fields, subs, sobject, conditions)


# --- the server ----------------------------------------------------------------------------------


class SalesforceError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message


class FakeSalesforce(LoopbackServer):
    """The server; use as a context manager. ``instance_url`` and ``ca_path`` configure the client."""

    def __init__(
        self,
        org: Org,
        tmp_path: Path,
        *,
        token: str = TOKEN,
        child_page_size: int = 200,
        username: str = "integration@example.com",
        password: str = "hunter2",
        security_token: str = "TOKENX",
        latency: float = 0.0,
    ) -> None:
        self.org = org
        self.latency = latency
        self.token = token
        self.child_page_size = child_page_size
        self.credentials = (username, password + security_token)
        self.fault: Any = None
        self.queries: list[str] = []
        self._cursors: dict[str, tuple[str, list[dict[str, Any]], int]] = {}
        self._lock = threading.Lock()
        self._requests = 0
        ca = trustme.CA()
        self.ca_path = tmp_path / "fake-salesforce-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        super().__init__(ssl_context=context)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def instance_url(self) -> str:
        return f"https://{self.host}"

    def inject(
        self,
        *,
        limit_exceeded: set[int] = frozenset(),
        fail_5xx: set[int] = frozenset(),
        always: str | None = None,
    ) -> None:
        """Answer the given request numbers with REQUEST_LIMIT_EXCEEDED / 503, or every request with ``always``."""

        def fault(n: int):
            if always == "limit" or n in limit_exceeded:
                return 403, [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ]
            if always == "5xx" or n in fail_5xx:
                return 503, [
                    {
                        "message": "Service temporarily unavailable",
                        "errorCode": "SERVER_UNAVAILABLE",
                    }
                ]
            return None

        self.fault = fault

    def respond(self, method: str, target: str, headers: Any, raw: bytes) -> Response:
        status, body, *rest = self.handle(method, target, headers, raw)
        limits = {"Sforce-Limit-Info": f"api-usage={self._requests}/15000"}
        return status, body, limits, rest[0] if rest else "application/json"

    def handle(
        self, method: str, target: str, headers: Any, raw: bytes
    ) -> tuple[int, Any] | tuple[int, Any, str]:
        if self.latency:
            time.sleep(self.latency)
        url = urlparse(target)
        with self._lock:
            self._requests += 1
            number = self._requests
        if url.path.startswith("/services/Soap/u/"):
            self.counts["login"] += 1
            return self._soap_login(raw)
        kind = (
            "query_more"
            if re.search(r"/query/[^/]+$", url.path)
            else url.path.rstrip("/").rsplit("/", 1)[-1]
        )
        self.counts[kind] += 1
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, [
                {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
            ]
        if self.fault is not None:
            injected = self.fault(number)
            if injected is not None:
                return injected
        if url.path.rstrip("/").endswith("composite/sobjects"):
            status, body = self._collections(method, url, json.loads(raw or b"{}") if raw else {})
            if method == "POST" and status == 200 and self._lose_answer():
                return 502, [{"message": "Bad Gateway", "errorCode": "SERVER_UNAVAILABLE"}]
            return status, body
        if url.path.rstrip("/").endswith("composite/batch") and method == "POST":
            try:
                return 200, self._composite(json.loads(raw or b"{}"), headers)
            except SalesforceError as exc:
                return exc.status, [{"message": exc.message, "errorCode": exc.code}]
        return self._dispatch(method, url, headers)

    def _dispatch(self, method: str, url: Any, headers: Any) -> tuple[int, Any]:
        try:
            match = re.match(rf"^/services/data/v{re.escape(VERSION)}/(.*)$", url.path)
            if not match:
                raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
            rest = match.group(1)
            if rest.startswith("sobjects/") and rest.endswith("/describe"):
                return 200, self._describe(rest.split("/")[1])
            if rest == "query" or rest == "query/":
                batch = self._batch_size(headers.get("Sforce-Query-Options"))
                soql = parse_qs(url.query)["q"][0]
                self.queries.append(soql)
                return 200, self._query(soql, batch)
            if rest.startswith("query/"):
                return 200, self._more(rest.split("/", 1)[1])
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        except SalesforceError as exc:
            return exc.status, [{"message": exc.message, "errorCode": exc.code}]
        except (ValueError, KeyError) as exc:
            return 400, [{"message": f"unexpected token: {exc}", "errorCode": "MALFORMED_QUERY"}]

    task_writable = True  # the integration user may create and edit Tasks

    def lose(self, share: float, seed: int = 5) -> None:
        """That share of task creates act, then answer 502 (a gateway timing out after them)."""
        self._lose, self._lose_rng = share, random.Random(seed)

    def _lose_answer(self) -> bool:
        with self._lock:
            lost = getattr(self, "_lose", 0.0) and self._lose_rng.random() < self._lose
            self.lost = getattr(self, "lost", 0) + bool(lost)
            return bool(lost)

    def _collections(self, method: str, url: Any, body: dict[str, Any]) -> tuple[int, Any]:
        """sObject Collections for Task: create (POST), update (PATCH), delete (DELETE ?ids=);
        at most 200 records, each answered in order with {id, success, errors}."""
        if method == "DELETE":
            ids = (parse_qs(url.query).get("ids") or [""])[0].split(",")
            with self._lock:
                out = [
                    {"id": i, "success": self.org.tasks.pop(i, None) is not None,
                     "errors": [] if i else [{"statusCode": "MALFORMED_ID"}]}
                    for i in ids
                ]  # fmt: skip
            return 200, out
        records = body.get("records") or []
        if len(records) > 200:
            return 400, [{"message": "too many records", "errorCode": "EXCEEDED_ID_LIMIT"}]
        out = []
        with self._lock:
            for record in records:
                out.append(self._task_write(method, record))
        return 200, out

    def _task_write(self, method: str, record: dict[str, Any]) -> dict[str, Any]:
        def refused(code: str, message: str, fields: list[str]) -> dict[str, Any]:
            return {"success": False,
                    "errors": [{"statusCode": code, "message": message, "fields": fields}]}  # fmt: skip

        if (record.get("attributes") or {}).get("type") != "Task":
            return refused("INVALID_TYPE", "only Task in this fake", [])
        fields = {k: v for k, v in record.items() if k not in ("attributes", "id")}
        users = {u["Id"] for u in self.org.users}
        if "WhatId" in fields and fields["WhatId"] not in self.org.opportunities:
            return refused("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["WhatId"])
        if "OwnerId" in fields and fields["OwnerId"] not in users:
            return refused("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["OwnerId"])
        if fields.get("Status") not in (None, "Not Started", "In Progress", "Completed"):
            return refused("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value", ["Status"])
        if len(fields.get("Subject") or "") > 255:
            return refused("STRING_TOO_LONG", "Subject: data value too large", ["Subject"])
        if method == "PATCH":
            task = self.org.tasks.get(str(record.get("id")))
            if task is None:
                return refused("ENTITY_IS_DELETED", "entity is deleted", [])
            task.update(fields)
            return {"id": task["Id"], "success": True, "errors": []}
        if not fields.get("Subject") or not fields.get("OwnerId"):
            return refused("REQUIRED_FIELD_MISSING", "Required fields are missing", ["Subject"])
        self.task_creates = getattr(self, "task_creates", 0) + 1
        task_id = f"00T{len(self.org.tasks) + 1:09d}{self.task_creates:03d}"
        self.org.tasks[task_id] = {"Id": task_id, **fields}
        return {"id": task_id, "success": True, "errors": []}

    def _composite(self, body: dict[str, Any], headers: Any) -> dict[str, Any]:
        """Composite batch: up to 25 GET subrequests answered in one response."""
        requests = body.get("batchRequests") or []
        if len(requests) > 25:
            raise SalesforceError(
                400, "INVALID_BATCH_REQUEST", "A batch can contain at most 25 requests"
            )
        results, errors = [], False
        for item in requests:
            url = urlparse("/services/data/" + item["url"])
            status, result = self._dispatch("GET", url, headers)[:2]
            errors = errors or status >= 400
            results.append({"statusCode": status, "result": result})
        return {"hasErrors": errors, "results": results}

    def _soap_login(self, raw: bytes) -> tuple[int, bytes, str]:
        text = raw.decode("utf-8", "replace")
        user = re.search(r"<n1:username>(.*?)</n1:username>", text)
        pw = re.search(r"<n1:password>(.*?)</n1:password>", text)
        if not user or not pw or (user.group(1), pw.group(1)) != self.credentials:
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault><faultcode>INVALID_LOGIN</faultcode>'
                "<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>"
                "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
            )
            return 500, fault.encode(), "text/xml"
        ok = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<serverUrl>https://{self.host}/services/Soap/u/{VERSION}/00DFAKE</serverUrl>"
            f"<sessionId>{self.token}</sessionId><userId>005FAKE</userId></result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return 200, ok.encode(), "text/xml"

    @staticmethod
    def _batch_size(option: str | None) -> int:
        match = re.search(r"batchSize=(\d+)", option or "")
        return max(200, min(2000, int(match.group(1)))) if match else 2000

    def _describe(self, sobject: str) -> dict[str, Any]:
        fields = {
            "Opportunity": self.org.opportunity_fields,
            "OpportunityHistory": HISTORY_FIELDS,
            "OpportunityContactRole": {"Role", "IsPrimary", "ContactId", "OpportunityId"},
            "OpportunityStage": STAGE_FIELDS,
            "User": {"Id", "Name", "Email", "IsActive", "ManagerId"},
            "Task": {"Id", "Subject", "Description", "ActivityDate", "Status", "WhatId", "OwnerId"},
        }.get(sobject)
        if fields is None:
            raise SalesforceError(
                404, "NOT_FOUND", f"The requested resource does not exist: {sobject}"
            )
        writable = sobject != "Task" or self.task_writable
        return {
            "name": sobject,
            "createable": writable,
            "updateable": writable,
            "fields": [{"name": f} for f in sorted(fields) if "." not in f],
        }

    def _check(self, fields: list[str], allowed: set[str], sobject: str) -> None:
        for name in fields:
            if name not in allowed:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"\nSELECT {name} FROM {sobject}\n       ^\nERROR at Row:1:Column:8\n"
                    f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom field, "
                    "be sure to append the '__c' after the custom field name.",
                )

    def _query(self, soql: str, batch: int) -> dict[str, Any]:
        query = parse_soql(soql)
        if query.sobject == "OpportunityStage":
            self._check(query.fields, STAGE_FIELDS, "OpportunityStage")
            rows = [
                {
                    "attributes": {"type": "OpportunityStage"},
                    "ApiName": n,
                    "MasterLabel": n,
                    "IsClosed": c,
                    "IsWon": w,
                    "DefaultProbability": float(p),
                    "SortOrder": i + 1,
                    "IsActive": True,
                }
                for i, (n, p, c, w) in enumerate(STAGES)
            ]
            return self._page(
                "stages", [{k: r[k] for k in ("attributes", *query.fields)} for r in rows], batch
            )
        if query.sobject == "User":
            self._check(query.fields, USER_FIELDS, "User")
            users = [u for u in self.org.users if self._user_matches(u, query.where)]
            return self._page("users", [self._user_record(u, query.fields) for u in users], batch)
        if query.sobject == "Opportunity":
            self._check(query.fields, self.org.opportunity_fields, "Opportunity")
            for sub in query.subqueries:
                allowed = {
                    "OpportunityContactRoles": ROLE_FIELDS,
                    "OpportunityHistories": HISTORY_FIELDS,
                }.get(sub.sobject)
                if allowed is None:
                    raise SalesforceError(
                        400, "INVALID_TYPE", f"Didn't understand relationship '{sub.sobject}'"
                    )
                self._check(sub.fields, allowed, sub.sobject)
            opps = [o for o in self.org.opportunities.values() if self._opp_matches(o, query.where)]
            opps.sort(key=lambda o: o["Id"])
            return self._page("opps", [self._opp_record(o, query) for o in opps], batch)
        if query.sobject == "Task":
            self._check(query.fields, {"Id", "Subject", "Status", "WhatId", "OwnerId"}, "Task")
            rows = [
                {"attributes": {"type": "Task"}, **{f: t.get(f) for f in query.fields}}
                for t in self.org.tasks.values()
                if _task_matches(t, query.where)
            ]
            return self._page("tasks", rows, batch)
        raise SalesforceError(
            400, "INVALID_TYPE", f"sObject type '{query.sobject}' is not supported."
        )

    def _user_matches(self, user: dict[str, Any], where: list[tuple[str, str, Any]]) -> bool:
        managers = {u["Id"]: u for u in self.org.users}
        for name, op, value in where:
            actual = (
                (managers.get(user["ManagerId"]) or {}).get("Email")
                if name == "Manager.Email"
                else user.get(name)
            )
            if op == "IN" and actual not in value:
                return False
            if op == "=" and actual != value:
                return False
        return True

    def _user_record(self, user: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        managers = {u["Id"]: u for u in self.org.users}
        out: dict[str, Any] = {
            "attributes": {
                "type": "User",
                "url": f"/services/data/v{VERSION}/sobjects/User/{user['Id']}",
            }
        }
        for name in fields:
            if name.startswith("Manager."):
                manager = managers.get(user["ManagerId"])
                out["Manager"] = (
                    {
                        "attributes": {"type": "User"},
                        **({name.split(".")[1]: manager[name.split(".")[1]]} if manager else {}),
                    }
                    if manager
                    else None
                )
            else:
                out[name] = user.get(name)
        return out

    @staticmethod
    def _opp_matches(opp: dict[str, Any], where: list[tuple[str, str, Any]]) -> bool:
        for name, op, value in where:
            if op == "IN" and opp.get(name) not in value:
                return False
            if op == "=" and opp.get(name) != value:
                return False
        return True

    def _opp_record(self, opp: dict[str, Any], query: Query) -> dict[str, Any]:
        users = {u["Id"]: u for u in self.org.users}
        out: dict[str, Any] = {
            "attributes": {
                "type": "Opportunity",
                "url": f"/services/data/v{VERSION}/sobjects/Opportunity/{opp['Id']}",
            }
        }
        for name in query.fields:
            if name.startswith("Owner."):
                owner = users.get(opp["OwnerId"])
                out.setdefault("Owner", {"attributes": {"type": "User"}})[name.split(".")[1]] = (
                    owner[name.split(".")[1]] if owner else None
                )
            elif name.startswith("Account."):
                account = opp.get("Account")
                if account is None:
                    out["Account"] = None
                else:
                    out.setdefault("Account", {"attributes": {"type": "Account"}})[
                        name.split(".")[1]
                    ] = account[name.split(".")[1]]
            else:
                out[name] = opp.get(name)
        for sub in query.subqueries:
            source = (
                self.org.roles if sub.sobject == "OpportunityContactRoles" else self.org.histories
            )
            rows = source.get(opp["Id"], [])
            if sub.sobject == "OpportunityContactRoles":
                rows = sorted(rows, key=lambda r: not r["IsPrimary"])
            records = [self._child(r, sub) for r in rows]
            out[sub.sobject] = self._child_page(records) if records else None
        return out

    @staticmethod
    def _child(row: dict[str, Any], sub: Query) -> dict[str, Any]:
        kind = (
            "OpportunityContactRole"
            if sub.sobject == "OpportunityContactRoles"
            else "OpportunityHistory"
        )
        out: dict[str, Any] = {"attributes": {"type": kind}}
        for name in sub.fields:
            if name.startswith("Contact."):
                out.setdefault("Contact", {"attributes": {"type": "Contact"}})[
                    name.split(".")[1]
                ] = row["Contact"][name.split(".")[1]]
            else:
                out[name] = row.get(name)
        return out

    def _child_page(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        size = self.child_page_size
        out: dict[str, Any] = {
            "totalSize": len(records),
            "done": len(records) <= size,
            "records": records[:size],
        }
        if len(records) > size:
            out["nextRecordsUrl"] = self._cursor("child", records, size, size)
        return out

    def _cursor(self, kind: str, records: list[dict[str, Any]], position: int, size: int) -> str:
        with self._lock:
            locator = f"01gFAKE{len(self._cursors):06d}"
            self._cursors[locator] = (kind, records, size)
        return f"/services/data/v{VERSION}/query/{locator}-{position}"

    def _page(
        self, kind: str, records: list[dict[str, Any]], batch: int, position: int = 0
    ) -> dict[str, Any]:
        page = records[position : position + batch]
        out: dict[str, Any] = {
            "totalSize": len(records),
            "done": position + batch >= len(records),
            "records": page,
        }
        if not out["done"]:
            out["nextRecordsUrl"] = self._cursor(kind, records, position + batch, batch)
        return out

    def _more(self, locator: str) -> dict[str, Any]:
        key, _, position = locator.rpartition("-")
        if key not in self._cursors:
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        kind, records, size = self._cursors[key]
        start = int(position)
        if kind == "child":
            page = records[start : start + size]
            out: dict[str, Any] = {
                "totalSize": len(records),
                "done": start + size >= len(records),
                "records": page,
            }
            if not out["done"]:
                out["nextRecordsUrl"] = self._cursor("child", records, start + size, size)
            return out
        return self._page(kind, records, size, start)


def _task_matches(task: dict[str, Any], where: list[tuple[str, str, Any]]) -> bool:
    for name, op, value in where:
        if op == "LIKE":
            text = str(task.get(name) or "")
            if not any(_like(text, pattern) for pattern in value):
                return False
        elif (op == "IN" and task.get(name) not in value) or (
            op == "=" and task.get(name) != value
        ):
            return False
    return True


def _like(text: str, pattern: str) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, text, re.S) is not None
