"""The bundled demo pipeline: one manager, four reps, about forty open deals.

Every date is stored as an offset from the review date, so the demo looks current whenever it
runs. It also carries last week's snapshot and open commitments, so the first run already shows
"what changed" and a Deliver section. Every risk signal fires somewhere; some deals are healthy.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from leadprep.config import Config, Person, Team
from leadprep.connectors import FetchResult
from leadprep.model import CLOSE_DATE, Change, Contact, Deal, Rep
from leadprep.stages import StageCatalog
from leadprep.store import Store

MANAGER = Person(name="Dana Kim", email="dana.kim@example.com")
REPS = {
    "alex": Rep("u-101", "Alex Morgan", "alex.morgan@example.com"),
    "priya": Rep("u-102", "Priya Shah", "priya.shah@example.com"),
    "jordan": Rep("u-103", "Jordan Lee", "jordan.lee@example.com"),
    "sam": Rep("u-104", "Sam Rivera", "sam.rivera@example.com"),
}
STAGES = StageCatalog.from_list(
    [
        ("Discovery", 0.1, False, False),
        ("Qualification", 0.2, False, False),
        ("Solution Demo", 0.4, False, False),
        ("Proposal", 0.6, False, False),
        ("Negotiation", 0.8, False, False),
        ("Contract Sent", 0.9, False, False),
        ("Closed Won", 1.0, True, True),
        ("Closed Lost", 0.0, True, False),
    ]
)
CRM_URL = "https://crm.example.com/deals/{id}"

EB, DM, CH, TE, US, EX = (
    "Economic Buyer",
    "Decision Maker",
    "Champion",
    "Technical Evaluator",
    "User",
    "Executive Sponsor",
)


def _c(name: str, role: str | None = None, title: str | None = None) -> Contact:
    email = name.lower().replace(" ", ".").replace("'", "") + "@buyer.example"
    return Contact(name=name, email=email, role=role, title=title)


# Each deal: rep, stage, amount, close (days from today, None = none), contacts,
# activity (days ago, None = unknown), in_stage (days), next_step, next_step_age (days),
# forecast, pushes (earlier close dates, days from today, oldest first) and `last_week`
# (fields as they were at last week's review; "new" = the deal did not exist yet).
DEALS: list[dict[str, Any]] = [
    # --- Alex Morgan: a strong quarter on paper, two deals carried by one person -------------
    dict(
        id="D-1001",
        name="Northwind Logistics — fleet analytics rollout",
        account="Northwind Logistics",
        rep="alex",
        stage="Negotiation",
        amount=148000,
        close=12,
        contacts=[_c("Maria Okafor", CH, "Director of Operations")],
        activity=3,
        in_stage=18,
        next_step="Redlines back from Maria's legal team",
        next_step_age=3,
        forecast="Commit",
        pushes=[-20, -2],
        last_week=dict(),
    ),
    dict(
        id="D-1002",
        name="Harbor Health — clinic scheduling",
        account="Harbor Health",
        rep="alex",
        stage="Proposal",
        amount=64000,
        close=40,
        contacts=[
            _c("Lena Fischer", CH, "Practice Manager"),
            _c("Omar Haddad", US, "Front Desk Lead"),
        ],
        activity=5,
        in_stage=12,
        next_step="Pricing review call with Lena",
        next_step_age=5,
        forecast="Best Case",
        pushes=[],
        last_week=dict(contacts=1),
    ),
    dict(
        id="D-1003",
        name="Bluebird Retail — loyalty data platform",
        account="Bluebird Retail",
        rep="alex",
        stage="Solution Demo",
        amount=92000,
        close=75,
        contacts=[
            _c("Grace Liu", EB, "CFO"),
            _c("Tom Becker", TE, "Data Engineering Lead"),
            _c("Ines Duarte", CH, "Head of CRM"),
        ],
        activity=2,
        in_stage=9,
        next_step="Technical deep-dive with Tom's team",
        next_step_age=2,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(stage="Qualification"),
    ),
    dict(
        id="D-1004",
        name="Summit Foods — supplier portal",
        account="Summit Foods",
        rep="alex",
        stage="Qualification",
        amount=38000,
        close=9,
        contacts=[
            _c("Raj Patel", CH, "Procurement Manager"),
            _c("Ana Ruiz", US, "Buyer"),
            _c("Jon Eklund", EB, "VP Supply Chain"),
        ],
        activity=6,
        in_stage=15,
        next_step="Discovery workshop",
        next_step_age=6,
        forecast="Commit",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-1005",
        name="Crescent Bank — branch staffing pilot",
        account="Crescent Bank",
        rep="alex",
        stage="Contract Sent",
        amount=55000,
        close=5,
        contacts=[
            _c("Helen Moore", EB, "COO"),
            _c("Victor Chan", CH, "Branch Ops Manager"),
            _c("Ruth Adler", TE, "IT Security"),
        ],
        activity=1,
        in_stage=4,
        next_step="Countersignature from Helen",
        next_step_age=1,
        forecast="Commit",
        pushes=[],
        last_week=dict(stage="Negotiation"),
    ),
    dict(
        id="D-1006",
        name="Atlas Freight — route optimisation",
        account="Atlas Freight",
        rep="alex",
        stage="Discovery",
        amount=27000,
        close=120,
        contacts=[
            _c("Pete Novak", CH, "Dispatch Manager"),
            _c("Sara Lind", US, "Planner"),
            _c("Dev Rao", EB, "CFO"),
        ],
        activity=4,
        in_stage=6,
        next_step="Intro to Dev for budget timing",
        next_step_age=4,
        forecast="Pipeline",
        pushes=[],
        last_week="new",
    ),
    dict(
        id="D-1007",
        name="Meridian Hotels — guest messaging",
        account="Meridian Hotels",
        rep="alex",
        stage="Proposal",
        amount=41000,
        close=33,
        contacts=[
            _c("Chloe Martin", CH, "Guest Experience Director"),
            _c("Luis Gomez", EB, "VP Operations"),
            _c("Nina Park", US, "Front Office Manager"),
        ],
        activity=8,
        in_stage=10,
        next_step="Reference call with a hotel customer",
        next_step_age=8,
        forecast="Best Case",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-1008",
        name="Pinecrest Schools — parent app",
        account="Pinecrest Schools",
        rep="alex",
        stage="Qualification",
        amount=12000,
        close=50,
        contacts=[_c("Molly Greene", CH, "IT Coordinator")],
        activity=11,
        in_stage=8,
        next_step="Send case study",
        next_step_age=11,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-1009",
        name="Granite Insurance — claims intake",
        account="Granite Insurance",
        rep="alex",
        stage="Solution Demo",
        amount=77000,
        close=58,
        contacts=[
            _c("Evan Brooks", CH, "Claims Director"),
            _c("Julia Stein", TE, "Solutions Architect"),
            _c("Mark Ito", EB, "Chief Claims Officer"),
        ],
        activity=3,
        in_stage=7,
        next_step="Demo for claims leads",
        next_step_age=3,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    # --- Priya Shah: deals that drift -------------------------------------------------------
    dict(
        id="D-2001",
        name="Orion Manufacturing — plant maintenance",
        account="Orion Manufacturing",
        rep="priya",
        stage="Negotiation",
        amount=210000,
        close=25,
        contacts=[
            _c("Ken Watanabe", CH, "Plant Manager"),
            _c("Olga Petrova", TE, "Reliability Engineer"),
        ],
        activity=4,
        in_stage=21,
        next_step="Mutual action plan with Ken",
        next_step_age=4,
        forecast="Commit",
        pushes=[-50, -20, 0],
        last_week=dict(),
    ),
    dict(
        id="D-2002",
        name="Keystone Legal — matter intake",
        account="Keystone Legal",
        rep="priya",
        stage="Proposal",
        amount=46000,
        close=-9,
        contacts=[
            _c("Daniel Price", EB, "Managing Partner"),
            _c("Amy Chen", CH, "Practice Ops"),
            _c("Rob Lowe", US, "Paralegal Lead"),
        ],
        activity=9,
        in_stage=26,
        next_step="Follow up on proposal",
        next_step_age=20,
        forecast="Best Case",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-2003",
        name="Vista Clinics — patient billing",
        account="Vista Clinics",
        rep="priya",
        stage="Solution Demo",
        amount=58000,
        close=None,
        contacts=[
            _c("Farah Aziz", CH, "Revenue Cycle Manager"),
            _c("George Hill", TE, "IT Manager"),
            _c("Paula Reyes", EB, "CFO"),
        ],
        activity=6,
        in_stage=14,
        next_step="Security questionnaire",
        next_step_age=6,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-2004",
        name="Redwood Energy — field service app",
        account="Redwood Energy",
        rep="priya",
        stage="Proposal",
        amount=87000,
        close=60,
        contacts=[
            _c("Sean Murphy", CH, "Field Ops Manager"),
            _c("Kira Holt", EB, "VP Operations"),
            _c("Ben Ortiz", TE, "Mobile Lead"),
        ],
        activity=27,
        in_stage=30,
        next_step="Waiting on Sean",
        next_step_age=27,
        forecast="Best Case",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-2005",
        name="Lumen Media — ad ops automation",
        account="Lumen Media",
        rep="priya",
        stage="Discovery",
        amount=52000,
        close=14,
        contacts=[
            _c("Zoe Adams", CH, "Ad Ops Lead"),
            _c("Ian Cole", US, "Trafficker"),
            _c("Hannah Wolfe", EB, "SVP Revenue"),
        ],
        activity=2,
        in_stage=5,
        next_step="Scoping call",
        next_step_age=2,
        forecast="Best Case",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-2006",
        name="Cobalt Telecom — churn dashboards",
        account="Cobalt Telecom",
        rep="priya",
        stage="Negotiation",
        amount=120000,
        close=30,
        contacts=[
            _c("Marta Silva", CH, "Director of Analytics"),
            _c("Tariq Aziz", EB, "CFO"),
            _c("Yuki Sato", TE, "BI Architect"),
        ],
        activity=3,
        in_stage=9,
        next_step="Final pricing with Tariq",
        next_step_age=3,
        forecast="Commit",
        pushes=[],
        last_week=dict(amount=150000),
    ),
    dict(
        id="D-2007",
        name="Sterling Partners — CRM migration",
        account="Sterling Partners",
        rep="priya",
        stage="Qualification",
        amount=33000,
        close=90,
        contacts=[
            _c("Ella Brown", CH, "Ops Analyst"),
            _c("Noah Kim", US, "Sales Manager"),
            _c("Rita Gold", EB, "COO"),
        ],
        activity=5,
        in_stage=4,
        next_step="Requirements session",
        next_step_age=5,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-2008",
        name="Tidewater Ports — yard visibility",
        account="Tidewater Ports",
        rep="priya",
        stage="Solution Demo",
        amount=99000,
        close=45,
        contacts=[
            _c("Owen Grant", CH, "Terminal Manager"),
            _c("Lucy Fox", TE, "OT Engineer"),
            _c("Carl Meyer", EB, "Port Director"),
        ],
        activity=7,
        in_stage=52,
        next_step="Site visit",
        next_step_age=7,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-2009",
        name="Aurora Labs — LIMS integration",
        account="Aurora Labs",
        rep="priya",
        stage="Proposal",
        amount=61000,
        close=38,
        contacts=[
            _c("Ivy Chen", CH, "Lab Manager"),
            _c("Max Bauer", TE, "Informatics Lead"),
            _c("Joan Avery", EB, "Chief Science Officer"),
        ],
        activity=4,
        in_stage=11,
        next_step="Proposal walkthrough",
        next_step_age=4,
        forecast="Best Case",
        pushes=[],
        last_week=dict(close=24),
    ),
    # --- Jordan Lee: newer rep, early-stage heavy --------------------------------------------
    dict(
        id="D-3001",
        name="Fjord Outdoor — e-commerce search",
        account="Fjord Outdoor",
        rep="jordan",
        stage="Qualification",
        amount=44000,
        close=18,
        contacts=[_c("Erik Dahl", CH, "E-commerce Manager")],
        activity=16,
        in_stage=12,
        next_step=None,
        next_step_age=None,
        forecast="Commit",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-3002",
        name="Beacon Credit Union — member onboarding",
        account="Beacon Credit Union",
        rep="jordan",
        stage="Proposal",
        amount=72000,
        close=20,
        contacts=[
            _c("Wendy Cole", CH, "Member Services Manager"),
            _c("Abe Turner", US, "Teller Supervisor"),
        ],
        activity=5,
        in_stage=16,
        next_step="Send revised proposal",
        next_step_age=5,
        forecast="Best Case",
        pushes=[],
        last_week=dict(stage="Negotiation"),
    ),
    dict(
        id="D-3003",
        name="Quarry Construction — site reporting",
        account="Quarry Construction",
        rep="jordan",
        stage="Discovery",
        amount=29000,
        close=70,
        contacts=[
            _c("Bill Hardy", CH, "Project Manager"),
            _c("Tina Volk", EB, "VP Construction"),
            _c("Sam Okoro", US, "Site Lead"),
        ],
        activity=None,
        in_stage=10,
        next_step="Call with Bill",
        next_step_age=10,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-3004",
        name="Silverline Travel — booking assistant",
        account="Silverline Travel",
        rep="jordan",
        stage="Solution Demo",
        amount=36000,
        close=-3,
        contacts=[
            _c("Ada Lopez", CH, "Digital Product Owner"),
            _c("Kofi Mensah", EB, "CDO"),
            _c("Rhea Das", TE, "Platform Engineer"),
        ],
        activity=12,
        in_stage=22,
        next_step="Demo follow-up",
        next_step_age=12,
        forecast="Best Case",
        pushes=[-25],
        last_week=dict(),
    ),
    dict(
        id="D-3005",
        name="Elm Street Dental — patient reminders",
        account="Elm Street Dental",
        rep="jordan",
        stage="Qualification",
        amount=9000,
        close=26,
        contacts=[_c("Dr. Nora Bell", EB, "Owner")],
        activity=3,
        in_stage=6,
        next_step="Trial setup",
        next_step_age=3,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-3006",
        name="Prairie Co-op — grain contracts",
        account="Prairie Co-op",
        rep="jordan",
        stage="Discovery",
        amount=51000,
        close=100,
        contacts=[
            _c("Hank Miller", CH, "Grain Merchandiser"),
            _c("Lisa Young", US, "Accountant"),
            _c("Gus Lund", EB, "General Manager"),
        ],
        activity=2,
        in_stage=3,
        next_step="Process mapping session",
        next_step_age=2,
        forecast="Pipeline",
        pushes=[],
        last_week="new",
    ),
    dict(
        id="D-3007",
        name="Nimbus Software — partner portal",
        account="Nimbus Software",
        rep="jordan",
        stage="Proposal",
        amount=48000,
        close=55,
        contacts=[
            _c("Ravi Menon", CH, "Partner Manager"),
            _c("Jess Wong", TE, "Web Lead"),
            _c("Alan Park", US, "Channel Analyst"),
        ],
        activity=6,
        in_stage=8,
        next_step="Pricing options for Ravi",
        next_step_age=6,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-3008",
        name="Harvest Markets — store ops checklist",
        account="Harvest Markets",
        rep="jordan",
        stage="Solution Demo",
        amount=24000,
        close=48,
        contacts=[
            _c("Dina Ross", CH, "Store Ops Director"),
            _c("Ty Nguyen", US, "Store Manager"),
            _c("Fay Ellis", EB, "VP Retail"),
        ],
        activity=4,
        in_stage=12,
        next_step="Pilot store selection",
        next_step_age=4,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(next_step="Demo for store managers"),
    ),
    # --- Sam Rivera: enterprise, long cycles -------------------------------------------------
    dict(
        id="D-4001",
        name="Titan Aerospace — supplier quality",
        account="Titan Aerospace",
        rep="sam",
        stage="Negotiation",
        amount=380000,
        close=45,
        contacts=[
            _c("Rosa Jimenez", CH, "Supplier Quality Director"),
            _c("Hugo Lang", TE, "QA Systems Lead"),
            _c("Beth Carter", US, "Auditor"),
        ],
        activity=6,
        in_stage=19,
        next_step="Security review with Hugo",
        next_step_age=6,
        forecast="Commit",
        pushes=[-60, -15],
        last_week=dict(),
    ),
    dict(
        id="D-4002",
        name="Polar Pharma — trial site monitoring",
        account="Polar Pharma",
        rep="sam",
        stage="Proposal",
        amount=260000,
        close=80,
        contacts=[
            _c("Anya Volkov", CH, "Clinical Ops Director"),
            _c("Mike Ross", EB, "SVP Clinical"),
            _c("Jane Wu", TE, "Validation Lead"),
            _c("Leo Grant", US, "CRA Manager"),
        ],
        activity=20,
        in_stage=28,
        next_step="Validation plan review",
        next_step_age=20,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-4003",
        name="Metro Transit — rider alerts",
        account="Metro Transit",
        rep="sam",
        stage="Solution Demo",
        amount=175000,
        close=95,
        contacts=[
            _c("Carla Diaz", CH, "Customer Info Manager"),
            _c("Paul Reed", EB, "Deputy GM"),
            _c("Sid Shah", TE, "IT Architect"),
        ],
        activity=9,
        in_stage=65,
        next_step="Board presentation prep",
        next_step_age=9,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-4004",
        name="Evergreen University — student success",
        account="Evergreen University",
        rep="sam",
        stage="Negotiation",
        amount=140000,
        close=21,
        contacts=[
            _c("Irene Black", CH, "Dean of Students"),
            _c("Walt Hughes", EB, "Provost"),
            _c("Nia Cole", TE, "CIO Office"),
        ],
        activity=2,
        in_stage=7,
        next_step="Contract review with procurement",
        next_step_age=2,
        forecast="Commit",
        pushes=[],
        last_week=dict(close=7),
    ),
    dict(
        id="D-4005",
        name="Ironclad Security — SOC reporting",
        account="Ironclad Security",
        rep="sam",
        stage="Proposal",
        amount=118000,
        close=52,
        contacts=[
            _c("Reggie Moss", CH, "SOC Manager"),
            _c("Fran Kline", TE, "Security Engineer"),
            _c("Ola Berg", EB, "CISO"),
        ],
        activity=5,
        in_stage=13,
        next_step="ROI model with Reggie",
        next_step_age=5,
        forecast="Best Case",
        pushes=[],
        last_week=dict(),
    ),
    dict(
        id="D-4006",
        name="Coastal Utilities — outage comms",
        account="Coastal Utilities",
        rep="sam",
        stage="Discovery",
        amount=None,
        close=150,
        contacts=[
            _c("Gwen Hale", CH, "Communications Director"),
            _c("Earl Voss", EB, "VP Customer"),
            _c("Pat Lin", US, "Ops Analyst"),
        ],
        activity=7,
        in_stage=7,
        next_step="Scope workshop",
        next_step_age=7,
        forecast="Pipeline",
        pushes=[],
        last_week="new",
    ),
    dict(
        id="D-4007",
        name="Vanguard Realty — lease analytics",
        account="Vanguard Realty",
        rep="sam",
        stage="Solution Demo",
        amount=88000,
        close=66,
        contacts=[
            _c("Mia Russo", CH, "Asset Manager"),
            _c("Dale King", EB, "CFO"),
            _c("Eli Stone", TE, "Data Lead"),
        ],
        activity=3,
        in_stage=10,
        next_step="Data sample from Eli",
        next_step_age=3,
        forecast="Pipeline",
        pushes=[],
        last_week=dict(),
    ),
]

# Deals open at last week's review that have since left the pipeline.
CLOSED_SINCE: list[dict[str, Any]] = [
    dict(
        id="D-3010",
        name="Maple Dental Group — online booking",
        account="Maple Dental Group",
        rep="jordan",
        stage="Closed Won",
        amount=31000,
        close=-2,
        contacts=[_c("Lena Ortiz", CH, "Practice Director"), _c("Joe Park", EB, "Owner")],
        last_stage="Contract Sent",
    ),
    dict(
        id="D-2010",
        name="Brightline Fitness — member app",
        account="Brightline Fitness",
        rep="priya",
        stage="Closed Lost",
        amount=26000,
        close=-4,
        contacts=[_c("Cory Lane", CH, "Marketing Manager")],
        last_stage="Proposal",
    ),
]
GONE_SINCE = dict(
    id="D-4010",
    name="Halcyon Resorts — spa booking",
    account="Halcyon Resorts",
    rep="sam",
    stage="Qualification",
    amount=19000,
    close=60,
    contacts=[_c("Iris Vane", CH, "Spa Director")],
)

# Made at last week's review (weeks_ago=1) and still open, or made earlier: followed up a week
# later (status) for the coaching record, or never followed up (no status).
# fmt: off
COMMITMENTS = [
    dict(deal="D-1001", text="Ask Maria to introduce me to her CFO before the redlines come back", due=-3, weeks_ago=1),
    dict(deal="D-2001", text="Agree a signed mutual action plan with Ken, including the go-live date", due=3, weeks_ago=1, success="Ken's signature and a go-live date on the plan"),
    dict(deal=None, rep="sam", text="Ask every buyer this week what happens if they do nothing", due=2, weeks_ago=1, success="Two buyers answer in their own words, written in the CRM"),
    dict(deal="D-3010", text="Get the name of Maple's procurement contact from Lena", due=-2, weeks_ago=1),
    dict(deal="D-4001", text="Try to get more people involved", due=None, weeks_ago=2),
    dict(deal="D-1003", text="Book the technical deep-dive with Tom's team for Thursday", due=-17, weeks_ago=3, status="kept"),
    dict(deal="D-1005", text="Send Helen the security answers by Friday", due=-10, weeks_ago=2, status="kept"),
    dict(deal="D-2004", text="Call Kira to confirm the budget owner by Wednesday", due=-18, weeks_ago=3, status="missed"),
    dict(deal="D-2006", text="Agree pricing options with Tariq on Tuesday", due=-11, weeks_ago=2, status="kept"),
    dict(deal="D-3002", text="Ask Wendy to invite the COO to the proposal review by Friday", due=-10, weeks_ago=2, status="missed"),
    dict(deal="D-4004", text="Walk Walt through the contract redlines on Monday", due=-20, weeks_ago=3, status="kept"),
]
# fmt: on


def _at(today: date, days_ago: int | None) -> datetime | None:
    if days_ago is None:
        return None
    return datetime.combine(today - timedelta(days=days_ago), time(15, 0), tzinfo=UTC)


def _deal(spec: dict[str, Any], today: date, **overrides: Any) -> Deal:
    rep = REPS[spec["rep"]]
    stage = STAGES.get(spec["stage"])
    assert stage is not None, spec["stage"]
    close = today + timedelta(days=spec["close"]) if spec.get("close") is not None else None
    pushes = [today + timedelta(days=d) for d in spec.get("pushes", [])]
    history = []
    values = [*pushes, close] if close else pushes
    for i, (old, new) in enumerate(itertools.pairwise(values)):
        changed_at = _at(today, 8 + 14 * (len(values) - 2 - i))
        history.append(Change(CLOSE_DATE, old, new, changed_at))
    amount = Decimal(spec["amount"]) if spec.get("amount") is not None else None
    deal = Deal(
        id=spec["id"],
        name=spec["name"],
        owner=rep,
        stage=stage.name,
        account=spec["account"],
        amount=amount,
        currency="USD",
        close_date=close,
        probability=stage.probability,
        stage_order=stage.order,
        forecast_category=spec.get("forecast"),
        created_at=_at(today, max(spec.get("in_stage", 10) + 20, 30)),
        stage_entered_at=_at(today, spec.get("in_stage")),
        last_activity_at=_at(today, spec.get("activity")),
        next_step=spec.get("next_step"),
        next_step_updated_at=_at(today, spec.get("next_step_age")),
        is_closed=stage.closed,
        is_won=stage.won,
        url=CRM_URL.format(id=spec["id"]),
        manager_email=MANAGER.email,
        contacts=tuple(spec.get("contacts", ())),
        history=tuple(history),
    )
    return replace(deal, **overrides) if overrides else deal


def current_deals(today: date) -> list[Deal]:
    """The pipeline as the demo CRM shows it on ``today`` (open deals and the ones just closed)."""
    deals = [_deal(spec, today) for spec in DEALS]
    deals += [_deal({**spec, "activity": 1, "in_stage": 1}, today) for spec in CLOSED_SINCE]
    return deals


def last_week_deals(today: date) -> list[Deal]:
    """The pipeline as it was recorded at last week's review."""
    week_ago = today - timedelta(days=7)
    out = []
    for spec in DEALS:
        before = spec["last_week"]
        if before == "new":
            continue
        deal = _deal(spec, today)
        changes: dict[str, Any] = {}
        if "stage" in before:
            stage = STAGES.get(before["stage"])
            assert stage is not None
            changes.update(stage=stage.name, stage_order=stage.order, probability=stage.probability)
        if "amount" in before:
            changes["amount"] = Decimal(before["amount"])
        if "close" in before:
            changes["close_date"] = today + timedelta(days=before["close"])
        if "contacts" in before:
            changes["contacts"] = deal.contacts[: before["contacts"]]
        if "next_step" in before:
            changes["next_step"] = before["next_step"]
        # The history a snapshot carries is what the CRM knew then.
        cutoff = _at(week_ago, 0)
        changes["history"] = tuple(c for c in deal.history if c.at is None or c.at <= cutoff)
        if not changes.get("close_date"):
            past = [c for c in deal.history if c.at and c.at > cutoff and c.field == CLOSE_DATE]
            if past:
                changes["close_date"] = past[0].old
        out.append(replace(deal, **changes))
    for spec in CLOSED_SINCE:
        out.append(
            _deal(
                {
                    **spec,
                    "stage": spec["last_stage"],
                    "close": spec["close"] + 10,
                    "activity": 5,
                    "in_stage": 12,
                    "next_step": "Final paperwork",
                    "next_step_age": 5,
                },
                today,
            )
        )
    out.append(
        _deal(
            {
                **GONE_SINCE,
                "activity": 9,
                "in_stage": 20,
                "next_step": "Intro call",
                "next_step_age": 9,
            },
            today,
        )
    )
    return out


def demo_config() -> Config:
    """The config the demo runs with: one team, default thresholds."""
    return Config(teams=[Team(manager=MANAGER, reps=[r.email for r in REPS.values()])])


class DemoConnector:
    """Serves the demo pipeline for any review date."""

    source = "demo"

    def fetch(
        self, reps: set[str] | None, as_of: date, known_ids: frozenset[str] = frozenset()
    ) -> FetchResult:
        deals = current_deals(as_of)
        if reps is not None:
            deals = [d for d in deals if d.owner.email in reps]
        return FetchResult(source=self.source, deals=deals)

    def seed(self, store: Store, as_of: date) -> None:
        """Record the last three weekly reviews and the commitments made in them (a fresh store
        per demo run: the demo's dates move with the calendar, so stored history would not fit)."""
        before = last_week_deals(as_of)
        for weeks in (3, 2, 1):
            store.record_run(as_of - timedelta(weeks=weeks), self.source, before)
        names = {d.id: d for d in before}
        for item in COMMITMENTS:
            deal = names[item["deal"]] if item["deal"] else None  # None: a habit, no single deal
            made_on = as_of - timedelta(weeks=item["weeks_ago"])
            new_id = store.add_commitment(
                deal_id=deal.id if deal else None,
                deal_name=deal.name if deal else None,
                rep_email=deal.owner.email if deal else REPS[item["rep"]].email,
                text=item["text"],
                due=as_of + timedelta(days=item["due"]) if item["due"] is not None else None,
                made_on=made_on,
                success=item.get("success"),
            )
            if "status" in item:
                kept = item["status"] == "kept"
                store.follow_up(new_id, kept=kept, note=None, on=made_on + timedelta(weeks=1))
