"""Table-driven tests for every risk signal, at and around each threshold, with a frozen today."""

import itertools
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from leadprep.config import SignalSettings
from leadprep.formatting import times
from leadprep.limits import CYCLE, DEFAULT, PINNED, STAGE_HISTORY, learn, nearest_rank
from leadprep.model import AMOUNT, CLOSE_DATE, STAGE, Change, Contact
from leadprep.signals import (
    FLAG_CODES,
    SIGNALS,
    Context,
    close_date_timeline,
    evaluate,
)
from tests.helpers import TODAY, at, make_deal

SIGNAL = dict(SIGNALS)
CTX = Context(today=TODAY)


def d(days: int) -> date:
    return TODAY + timedelta(days=days)


def contacts(*roles):
    return tuple(Contact(f"Person {i}", role=r) for i, r in enumerate(roles))


def check(code, deal, expected, ctx=CTX):
    flag = SIGNAL[code](deal, ctx)
    if expected is None:
        assert flag is None, flag
    else:
        assert flag is not None, f"{code} did not fire"
        assert flag.code == code
        assert flag.severity == expected, flag.evidence
    return flag


def test_every_flag_code_has_a_signal():
    assert set(SIGNAL) | {"commit_without_evidence"} == set(FLAG_CODES)


@pytest.mark.parametrize(
    ("n_contacts", "amount", "expected"),
    [
        (0, 50000, "high"),
        (1, 50000, "high"),
        (2, 50000, "low"),  # thin
        (3, 50000, None),
        (1, 20000, "high"),  # at the gate: flagged
        (1, 19999.99, None),  # below the gate: small deals are not flagged
        (1, 0, None),  # zero amount is below the gate
        (1, None, "high"),  # unknown size: still flagged
    ],
)
def test_single_threaded(n_contacts, amount, expected):
    deal = make_deal(
        contacts=contacts(*["User"] * n_contacts),
        amount=None if amount is None else Decimal(str(amount)),
    )
    flag = check("single_threaded", deal, expected)
    if flag and n_contacts == 0:
        assert flag.evidence == "no buyer contacts on the deal"
    if flag and n_contacts == 1:
        assert flag.evidence == "1 contact: Person 0 (User)"


@pytest.mark.parametrize(
    ("probability", "people", "expected"),
    [
        (0.2, [("User", None)], None),  # early stage: not yet expected
        (0.4, [("User", None)], "medium"),
        (0.6, [("User", None)], "high"),
        (0.6, [("Economic Buyer", None)], None),
        (0.6, [("decision maker", None)], None),
        (0.6, [(None, "VP Finance")], None),
        (0.6, [(None, "Chief Operating Officer")], None),
        (0.6, [(None, "CFO")], None),
        (0.6, [(None, "Director of IT")], "high"),  # directors are not VP+ by default
        (0.8, [], "high"),
        (None, [("User", None)], None),  # unknown stage probability: no guess
    ],
)
def test_no_decision_maker(probability, people, expected):
    deal = make_deal(
        probability=probability, contacts=tuple(Contact("P", role=r, title=t) for r, t in people)
    )
    check("no_decision_maker", deal, expected)


@pytest.mark.parametrize(
    ("contacts", "evidence"),
    [
        ((), "in Proposal (60%) with no contacts on the deal"),
        (
            (Contact("Maria Okafor", role="Champion"),),
            "in Proposal (60%); the only contact is not an economic buyer, decision maker or "
            "executive: Maria Okafor (Champion)",
        ),
        (
            (Contact("Maria Okafor", role="Champion"), Contact("Bo Chen", title="Analyst")),
            "in Proposal (60%); none of the 2 contacts is an economic buyer, decision maker or "
            "executive: Maria Okafor (Champion), Bo Chen (Analyst)",
        ),
    ],
)
def test_no_decision_maker_says_what_is_missing_for_0_1_and_several_contacts(contacts, evidence):
    flag = SIGNAL["no_decision_maker"](make_deal(probability=0.6, contacts=contacts), CTX)
    assert flag is not None and flag.evidence == evidence


def test_no_decision_maker_from_a_named_stage():
    settings = SignalSettings.model_validate({"no_decision_maker": {"from_stage": "Proposal"}})
    ctx = Context(today=TODAY, settings=settings, stage_orders={"proposal": 5})
    early = make_deal(stage="Demo", stage_order=4, probability=0.9, contacts=contacts("User"))
    late = make_deal(stage="Proposal", stage_order=5, probability=0.1, contacts=contacts("User"))
    check("no_decision_maker", early, None, ctx)
    check("no_decision_maker", late, "medium", ctx)  # late by stage, though its probability is low


def pushes(*values, dated=True):
    """Close-date history through the given dates (oldest first)."""
    changes = []
    for i, (old, new) in enumerate(itertools.pairwise(values)):
        changes.append(Change(CLOSE_DATE, old, new, at(60 - 10 * i) if dated else None))
    return tuple(changes)


@pytest.mark.parametrize(
    ("history", "current", "seen", "expected", "count"),
    [
        ((), d(20), (), None, 0),
        (pushes(d(10), d(20)), d(20), (), "low", 1),
        (pushes(d(5), d(10), d(20)), d(20), (), "medium", 2),  # 2nd push escalates
        (pushes(d(2), d(5), d(10), d(20)), d(20), (), "high", 3),  # 3+: the date is not real
        (pushes(d(30), d(20)), d(20), (), None, 0),  # a pull-in is not a push
        (pushes(d(10), d(5), d(20)), d(20), (), "low", 1),  # pull-in then push
        ((), d(20), (d(10),), "low", 1),  # push seen only through snapshots
        ((), d(20), (d(5), d(10), d(10)), "medium", 2),  # repeated snapshots count once
        (pushes(d(10), d(20)), d(20), (d(10), d(20)), "low", 1),  # seen both ways: once
        (pushes(d(5), d(20), dated=False), d(20), (d(10),), "medium", 2),  # stale export + snapshot
    ],
)
def test_close_date_slipped(history, current, seen, expected, count):
    deal = make_deal(close_date=current, history=history)
    flag = check(
        "close_date_slipped",
        deal,
        expected,
        Context(today=date(2026, 10, 1), close_dates_seen=seen),
    )
    if flag:
        assert flag.facts["pushes"] == count
        assert f"pushed {times(count)}," in flag.evidence


def test_slip_evidence_names_the_dates_and_days():
    deal = make_deal(
        close_date=date(2026, 12, 17),
        history=pushes(date(2026, 10, 31), date(2026, 11, 30), date(2026, 12, 17)),
    )
    flag = SIGNAL["close_date_slipped"](deal, Context(today=date(2026, 10, 20)))
    assert flag.evidence.startswith(
        "close date pushed twice, 47 days in total: Oct 31 → Nov 30 → Dec 17"
    )
    assert "quarter" not in flag.evidence


@pytest.mark.parametrize(
    ("fiscal_start", "expected"),
    [
        (1, "medium"),
        (12, "low"),
    ],  # Dec 15 → Jan 15 crosses Q4/Q1 unless the fiscal year starts in Dec
)
def test_quarter_boundary_push_raises_severity(fiscal_start, expected):
    settings = SignalSettings.model_validate(
        {"close_date_slipped": {"fiscal_year_start_month": fiscal_start}}
    )
    deal = make_deal(
        close_date=date(2027, 1, 15), history=pushes(date(2026, 12, 15), date(2027, 1, 15))
    )
    flag = check(
        "close_date_slipped", deal, expected, Context(today=date(2026, 12, 1), settings=settings)
    )
    assert flag.facts["crossed_quarter"] is (fiscal_start == 1)


def test_timeline_merge_keeps_one_sequence():
    deal = make_deal(close_date=d(30), history=pushes(d(10), d(20), d(30), dated=False))
    assert close_date_timeline(deal, [d(10), d(20), d(30)]) == [d(10), d(20), d(30)]
    assert close_date_timeline(make_deal(close_date=None, history=()), []) == []


@pytest.mark.parametrize(
    ("close", "expected"),
    [(0, None), (-1, "medium"), (-7, "medium"), (-8, "high"), (None, None)],
)
def test_close_date_passed(close, expected):
    check("close_date_passed", make_deal(close_date=None if close is None else d(close)), expected)


def test_no_close_date():
    check("no_close_date", make_deal(close_date=None), "medium")
    check("no_close_date", make_deal(), None)


@pytest.mark.parametrize(
    ("days", "stage", "by_stage", "expected"),
    [
        (13, "Proposal", {}, None),
        (14, "Proposal", {}, "medium"),
        (27, "Proposal", {}, "medium"),
        (28, "Proposal", {}, "high"),
        (None, "Proposal", {}, None),  # unknown activity: no false alarm
        (7, "Negotiation", {"negotiation": 7}, "medium"),  # per-stage override
        (6, "Negotiation", {"Negotiation": 7}, None),
        (20, "Discovery", {"Discovery": 30}, None),
    ],
)
def test_stale(days, stage, by_stage, expected):
    settings = SignalSettings.model_validate({"stale": {"by_stage": by_stage}})
    deal = make_deal(stage=stage, last_activity_at=None if days is None else at(days))
    flag = check("stale", deal, expected, Context(today=TODAY, settings=settings))
    if flag:
        assert f"no activity for {days} days" in flag.evidence


def won_deal(i, created_days_ago, cycle_days, stays=()):
    """A won deal created ``created_days_ago`` and closed ``cycle_days`` later, with dated
    stage stays ``(stage, days)`` from its creation on."""
    created = at(created_days_ago)
    history, when, before = [], created, None
    for stage, days in stays:
        history.append(Change(STAGE, before, stage, when))
        when, before = when + timedelta(days=days), stage
    if stays:
        history.append(Change(STAGE, before, "Won", when))
    return make_deal(
        id=f"W-{i}",
        stage="Won",
        is_closed=True,
        is_won=True,
        created_at=created,
        close_date=created.date() + timedelta(days=cycle_days),
        history=tuple(history),
    )


WON_CYCLES = [won_deal(i, 400, 10 * (i + 1)) for i in range(20)]  # 10 … 200 days
WON_STAYS = [
    won_deal(i, 400, 300, stays=[("Demo", 5 + i), ("Proposal", 2 * (i + 1))]) for i in range(20)
]


@pytest.mark.parametrize(
    ("days", "config", "won", "expected", "source"),
    [
        (30, {}, [], None, DEFAULT),  # no won deals: the default 30 days
        (31, {}, [], "medium", DEFAULT),
        (61, {}, [], "high", DEFAULT),
        (21, {"by_stage": {"Proposal": 20}}, WON_CYCLES, "medium", PINNED),  # pinned wins
        (20, {"by_stage": {"Proposal": 20}}, WON_CYCLES, None, PINNED),
        (46, {"days": 45}, WON_CYCLES, "medium", PINNED),  # days written in the config pins
        (180, {}, WON_CYCLES, None, CYCLE),  # 9 in 10 of the won deals closed within 180 days
        (181, {}, WON_CYCLES, "medium", CYCLE),
        (361, {}, WON_CYCLES, "high", CYCLE),
        (181, {}, WON_CYCLES[:19], "high", DEFAULT),  # 19 won deals: too few to learn from…
        (31, {}, WON_CYCLES[:19], "medium", DEFAULT),  # …so the default holds
        (181, {"learn": False}, WON_CYCLES, "high", DEFAULT),
        (36, {}, WON_STAYS, None, STAGE_HISTORY),  # 9 in 10 left Proposal within 36 days
        (37, {}, WON_STAYS, "medium", STAGE_HISTORY),  # the stage's own history beats the cycle
        (None, {}, WON_CYCLES, None, None),
    ],
)
def test_stuck_in_stage(days, config, won, expected, source):
    settings = SignalSettings.model_validate({"stuck_in_stage": config})
    deal = make_deal(stage="Proposal", stage_entered_at=None if days is None else at(days))
    ctx = Context(today=TODAY, settings=settings, limits=learn(won, 90, 20))
    flag = check("stuck_in_stage", deal, expected, ctx)
    if flag:
        assert flag.facts["limit_source"] == source
        assert f"for {days} days" in flag.evidence


def test_learned_limits_are_cited_in_the_evidence():
    ctx = Context(today=TODAY, limits=learn(WON_CYCLES, 90, 20))
    flag = SIGNAL["stuck_in_stage"](make_deal(stage="Engaging", stage_entered_at=at(200)), ctx)
    assert flag.evidence.endswith(
        "9 in 10 of your 20 won deals closed within 180 days of being created"
    )
    ctx = Context(today=TODAY, limits=learn(WON_STAYS, 90, 20))
    flag = SIGNAL["stuck_in_stage"](make_deal(stage="proposal ", stage_entered_at=at(50)), ctx)
    assert "9 in 10 of your 20 won deals that passed through Proposal left it within 36 days" in (
        flag.evidence
    )
    ctx = Context(today=TODAY)
    flag = SIGNAL["stuck_in_stage"](make_deal(stage="Demo", stage_entered_at=at(50)), ctx)
    assert flag.evidence.endswith("default limit 30 days")


def test_only_won_deals_teach_limits():
    lost = [
        make_deal(
            id=f"L-{i}",
            is_closed=True,
            created_at=at(400),
            close_date=d(-400 + 5),
        )
        for i in range(30)
    ]
    open_ = [make_deal(id=f"O-{i}", created_at=at(400)) for i in range(30)]
    assert learn([*lost, *open_], 90, 20).cycle is None
    assert learn([*lost, *open_], 90, 20).won == 0


@pytest.mark.parametrize(
    ("values", "percentile", "expected"),
    [([5], 90, 5), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9), (list(range(1, 101)), 75, 75)],
)
def test_nearest_rank(values, percentile, expected):
    assert nearest_rank(values, percentile) == expected


def test_the_old_median_setting_is_explained():
    with pytest.raises(ValueError, match="median_multiple was replaced"):
        SignalSettings.model_validate({"stuck_in_stage": {"median_multiple": 2}})


@pytest.mark.parametrize(
    ("next_step", "age", "expected"),
    [
        ("", 1, "medium"),
        (None, None, "medium"),
        ("Call", 13, None),
        ("Call", 14, "low"),
        ("Call", None, None),
    ],
)
def test_no_next_step(next_step, age, expected):
    deal = make_deal(next_step=next_step, next_step_updated_at=None if age is None else at(age))
    check("no_next_step", deal, expected)


@pytest.mark.parametrize(
    ("previous", "current", "history", "expected"),
    [
        (Decimal(100000), Decimal(80000), (), "medium"),  # -20%
        (Decimal(100000), Decimal(75000), (), "high"),  # -25%
        (Decimal(100000), Decimal(100000), (), None),
        (Decimal(80000), Decimal(100000), (), None),  # increase
        (None, Decimal(100000), (), None),
        (Decimal(100000), None, (), None),  # amount removed: nothing to compare
        (Decimal(0), Decimal(0), (), None),
        (None, Decimal(60000), (Change(AMOUNT, Decimal(90000), Decimal(60000), at(10)),), "high"),
        (
            None,
            Decimal(60000),
            (Change(AMOUNT, Decimal(90000), Decimal(60000), at(31)),),
            None,
        ),  # too old
    ],
)
def test_amount_decreased(previous, current, history, expected):
    before = make_deal(amount=previous) if previous is not None or current is not None else None
    ctx = Context(today=TODAY, previous=before)
    check("amount_decreased", make_deal(amount=current, history=history), expected, ctx)


@pytest.mark.parametrize(
    ("close", "probability", "expected"),
    [
        (10, 0.2, "high"),
        (15, 0.2, "high"),
        (16, 0.2, "medium"),
        (30, 0.39, "medium"),
        (31, 0.2, None),
        (10, 0.4, None),
        (-1, 0.1, None),  # passed: that is close_date_passed
        (10, None, None),
    ],
)
def test_closing_soon_early_stage(close, probability, expected):
    check(
        "closing_soon_early_stage",
        make_deal(close_date=d(close), probability=probability),
        expected,
    )


@pytest.mark.parametrize(
    ("category", "one_contact", "expected"),
    [
        ("Commit", True, "high"),
        ("commit", True, "high"),
        ("Best Case", True, "medium"),
        ("best_case", True, "medium"),
        ("Commit", False, None),  # no high flag standing
        ("Pipeline", True, None),
        (None, True, None),
    ],
)
def test_commit_without_evidence(category, one_contact, expected):
    deal = make_deal(
        forecast_category=category,
        contacts=contacts("Champion") if one_contact else contacts("Economic Buyer", "B", "C"),
    )
    flags = {f.code: f for f in evaluate(deal, CTX)}
    if expected is None:
        assert "commit_without_evidence" not in flags
    else:
        assert flags["commit_without_evidence"].severity == expected
        assert "single-threaded" in flags["commit_without_evidence"].evidence


def test_evaluate_orders_by_severity_and_skips_closed_and_disabled():
    deal = make_deal(contacts=(), close_date=None, next_step=None)
    codes = [f.code for f in evaluate(deal, CTX)]
    assert codes[0] == "single_threaded"
    assert set(codes) >= {"single_threaded", "no_close_date", "no_next_step", "no_decision_maker"}
    assert evaluate(make_deal(contacts=(), is_closed=True), CTX) == []
    settings = SignalSettings.model_validate({"single_threaded": {"enabled": False}})
    assert "single_threaded" not in [
        f.code for f in evaluate(deal, Context(today=TODAY, settings=settings))
    ]


def test_a_healthy_deal_has_no_flags():
    assert evaluate(make_deal(), CTX) == []


def test_missing_everything_does_not_crash():
    bare = make_deal(
        amount=None,
        close_date=None,
        probability=None,
        stage_order=None,
        forecast_category=None,
        stage_entered_at=None,
        last_activity_at=None,
        next_step=None,
        next_step_updated_at=None,
        contacts=(),
        history=(),
    )
    codes = {f.code for f in evaluate(bare, CTX)}
    assert codes == {"single_threaded", "no_close_date", "no_next_step"}


@pytest.mark.parametrize(
    ("dated", "undated", "flagged"),
    [
        (4, 20, 0),  # four dated deals do not make the other twenty "no close date"
        (12, 8, 8),  # most deals are dated: an undated one is a gap worth a flag
        (0, 5, 0),  # no deal dated at all: the check is off (the file carries no close dates)
    ],
)
def test_no_close_date_is_flagged_only_where_close_dates_are_usual(
    tmp_path, dated, undated, flagged
):
    from tests.helpers import cli, csv_row, write_config, write_csv

    rows = [
        csv_row(deal_id=f"D-{i}", close_date="2026-10-01", manager_email="")  # passed
        for i in range(dated)
    ] + [csv_row(deal_id=f"U-{i}", close_date="", manager_email="") for i in range(undated)]
    write_csv(tmp_path / "deals.csv", rows)
    config = write_config(
        tmp_path / "leadprep.yaml", "crm: {kind: file, file: {path: deals.csv}}\n"
    )
    result = cli("prep", "-c", config, "-f", "json,html", "--as-of", "2026-11-30")
    assert result.exit_code == 0, result.output
    (packet,) = json.loads((tmp_path / "prep-sheets" / "packets.json").read_text())["packets"]
    codes = {d["id"]: {f["code"] for f in d["flags"]} for d in packet["deals"]}
    assert sum("no_close_date" in c for c in codes.values()) == flagged
    assert all("close_date_passed" in codes[f"D-{i}"] for i in range(dated))  # still checked
    sheet = (tmp_path / "prep-sheets" / "index.html").read_text()  # said once, on the index
    if dated and flagged == 0:
        assert f"only {dated} of {dated + undated} open deals have a close date" in sheet
    if flagged:  # either way the sheet says how many carry it
        assert (
            f"No close date: {dated} of {dated + undated} open deals have a close date; "
            f"the other {undated} are flagged" in sheet
        )


def test_a_missing_next_step_is_flagged_only_where_next_steps_are_usual(tmp_path):
    from tests.helpers import cli, csv_row, write_config, write_csv

    rows = [csv_row(deal_id="D-0", next_step="Pricing call", manager_email="")] + [
        csv_row(deal_id=f"U-{i}", next_step="", manager_email="") for i in range(9)
    ]
    write_csv(tmp_path / "deals.csv", rows)
    config = write_config(
        tmp_path / "leadprep.yaml", "crm: {kind: file, file: {path: deals.csv}}\n"
    )
    assert cli("prep", "-c", config, "-f", "json", "--as-of", "2026-11-30").exit_code == 0
    (packet,) = json.loads((tmp_path / "prep-sheets" / "packets.json").read_text())["packets"]
    assert not any(f["code"] == "no_next_step" for d in packet["deals"] for f in d["flags"])
    assert any("only 1 of 10 open deals have a next step" in line for line in packet["checks_off"])


# --- news, riders, true titles ---------------------------------------------------------------------

ORDERS = {"discovery": 1, "proposal": 5, "negotiation": 6}


@pytest.mark.parametrize(
    ("before", "history", "forecast", "expected", "news"),
    [
        ("Negotiation", (), "Pipeline", "medium", True),  # back since the last review
        ("Negotiation", (), "Commit", "high", True),  # …on a deal in the forecast
        ("Discovery", (), "Commit", None, None),  # forward is no flag
        ("Proposal", (), "Commit", None, None),
        (None, (Change(STAGE, "Negotiation", "Proposal", at(3)),), "Pipeline", "medium", True),
        (None, (Change(STAGE, "Negotiation", "Proposal", at(20)),), "Pipeline", "medium", False),
        (None, (Change(STAGE, "Negotiation", "Proposal", at(40)),), "Pipeline", None, None),
        (None, (Change(STAGE, "Unknown", "Proposal", at(3)),), "Pipeline", None, None),
    ],
)
def test_stage_moved_back(before, history, forecast, expected, news):
    deal = make_deal(
        stage="Proposal", stage_order=None, forecast_category=forecast, history=history
    )
    previous = make_deal(stage=before, stage_order=None) if before else None
    ctx = Context(today=TODAY, previous=previous, stage_orders=ORDERS)
    flag = check("stage_moved_back", deal, expected, ctx)
    if flag:
        assert flag.news is news
        assert flag.evidence.startswith("moved back from Negotiation to Proposal")


def test_a_stale_next_step_is_titled_for_what_it_is():
    deal = make_deal(next_step="Follow up", next_step_updated_at=at(20))
    (flag,) = [f for f in evaluate(deal, CTX) if f.code == "no_next_step"]
    assert flag.title == "Next step unchanged"  # there is a next step: "No next step" would lie
    blank = make_deal(next_step=None, next_step_updated_at=None)
    (flag,) = [f for f in evaluate(blank, CTX) if f.code == "no_next_step"]
    assert flag.title == "No next step"


@pytest.mark.parametrize(
    ("contacts", "forecast", "riders"),
    [
        (contacts("Champion"), "Commit", {"no_decision_maker", "commit_without_evidence"}),
        ((), "Best Case", {"no_decision_maker", "commit_without_evidence"}),
        # two contacts: not single-threaded, so "no decision maker" stands on its own
        (contacts("Champion", "User"), "Commit", {"commit_without_evidence"}),
        (contacts("Champion"), "Pipeline", {"no_decision_maker"}),
    ],
)
def test_derived_flags_ride_on_their_root_cause(contacts, forecast, riders):
    deal = make_deal(contacts=contacts, forecast_category=forecast, probability=0.8)
    flags = evaluate(deal, CTX)
    assert {f.code for f in flags if f.shown == "rider"} == riders
    if "commit_without_evidence" in riders:
        rider = next(f for f in flags if f.code == "commit_without_evidence")
        assert rider.title == f"Forecast ahead of evidence ({forecast})"


def test_a_push_since_the_last_review_is_news_and_a_committed_one_out_of_quarter_is_high():
    previous = make_deal(close_date=date(2026, 12, 20))
    deal = make_deal(close_date=date(2027, 1, 10), forecast_category="Commit", probability=0.9)
    seen = (date(2026, 12, 20),)  # the close date the last review saw
    flag = SIGNAL["close_date_slipped"](deal, replace_ctx(previous=previous, close_dates_seen=seen))
    assert flag.news and flag.severity == "high"
    assert flag.evidence.endswith(
        "(crossed a quarter end); last pushed since the last review, forecast Commit"
    )
    old = make_deal(history=(Change(CLOSE_DATE, d(-40), d(-20), at(60)),), close_date=d(-20))
    assert not SIGNAL["close_date_slipped"](old, CTX).news  # a push two months ago is not news


def test_an_amount_cut_this_week_on_a_commit_deal_is_high_news():
    previous = make_deal(amount=Decimal(100000))
    deal = make_deal(amount=Decimal(90000), forecast_category="Commit")
    flag = SIGNAL["amount_decreased"](deal, replace_ctx(previous=previous))
    assert flag.news and flag.severity == "high"  # −10% alone would be medium
    pipeline = make_deal(amount=Decimal(90000))
    assert SIGNAL["amount_decreased"](pipeline, replace_ctx(previous=previous)).severity == "medium"


def replace_ctx(**changes):
    from dataclasses import replace

    return replace(CTX, **changes)
