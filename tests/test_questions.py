from datetime import timedelta

import pytest
import yaml

from leadprep.demo import current_deals
from leadprep.errors import ConfigError
from leadprep.questions import (
    QuestionPicker,
    is_prescriptive_or_gotcha,
    is_status_check,
    load_bank,
    parse_bank,
)
from leadprep.render import packaged_templates
from leadprep.signals import FLAG_CODES, Context, evaluate
from tests.helpers import TODAY, make_deal

BANK_PATH = packaged_templates() / "questions.yaml"


@pytest.fixture(scope="module")
def bank():
    return load_bank(BANK_PATH)


@pytest.mark.parametrize(
    "question",
    [
        "What's the status on Acme?",
        "what is the status of the deal",
        "When will it close?",
        "When does this close?",
        "Did you send the proposal?",
        "Have you called the CFO yet?",
        "Any update on Globex?",
        "Is it still on track?",
    ],
)
def test_status_checks_are_recognised(question):
    assert is_status_check(question)


@pytest.mark.parametrize(
    "question",
    [
        "What would have to be true for the person who signs to take a meeting with us?",
        "What event on their side is the date tied to?",
        "How did it go, and what did you learn?",
    ],
)
def test_coaching_questions_pass(question):
    assert not is_status_check(question)


def test_the_packaged_bank_has_no_status_check(bank):
    offenders = [(slot, q) for slot, q in bank.all_questions() if is_status_check(q)]
    assert offenders == []


@pytest.mark.parametrize(
    "question",
    [
        "Have you tried calling the CFO directly?",
        "You should loop in procurement now.",
        "Why didn't you book the demo?",
        "Make sure the champion has the pricing.",
        "Did you email the legal team?",
        "Don't forget to confirm the date, OK?",
        "Wouldn't it be better to offer a pilot?",
        "You need to get the CFO in the room.",
    ],
)
def test_prescriptions_and_gotchas_are_recognised(question):
    assert is_prescriptive_or_gotcha(question)


@pytest.mark.parametrize(
    "question",
    [
        "What would need to be true for this to close by the date?",
        "What is the buyer's alternative to us, and what happens if they do nothing?",
        "What would you do differently if you could rewind this deal?",
        "Who have you not met yet that will have a say?",
        "What would you need to learn to put a date on this that you would defend?",
        "What do you need to hear from them to believe the date?",
    ],
)
def test_discovery_questions_are_not_flagged(question):
    assert not is_prescriptive_or_gotcha(question)


def test_the_packaged_bank_has_no_prescription_or_gotcha(bank):
    assert [(slot, q) for slot, q in bank.all_questions() if is_prescriptive_or_gotcha(q)] == []


def test_a_prescription_in_a_custom_bank_is_rejected():
    data = yaml.safe_load(BANK_PATH.read_text())
    data["agree"]["ask"].append("You should call the CFO this week.")
    with pytest.raises(ConfigError, match="tells the rep what to do"):
        parse_bank(data)


def test_every_flag_code_has_several_variants(bank):
    for code in FLAG_CODES:
        assert len(bank.explore[code]) >= 2, code
    assert len(bank.listen_deal) >= 3 and len(bank.agree_ask) >= 3 and len(bank.agree_check) >= 2
    assert bank.deliver_open and bank.deliver_kept and bank.deliver_missed


def test_a_status_check_in_a_custom_bank_is_rejected():
    data = yaml.safe_load(BANK_PATH.read_text())
    data["agree"]["ask"].append("So, what's the status?")
    data["explore"]["stale"] = "not a list"
    with pytest.raises(ConfigError) as info:
        parse_bank(data)
    assert "is a status check" in str(info.value)
    assert "explore.stale: must be a non-empty list" in str(info.value)


def test_an_unknown_variable_is_reported():
    data = yaml.safe_load(BANK_PATH.read_text())
    data["agree"]["ask"] = ["What about {{ deal.name }}?"]  # Agree is per rep: no deal here
    picker = QuestionPicker(parse_bank(data), TODAY)
    with pytest.raises(ConfigError, match="could not be filled"):
        picker.agree("alex@example.com", "Alex")


def test_the_per_deal_agree_and_deliver_of_leadprep_0_1_is_explained():
    data = yaml.safe_load(BANK_PATH.read_text())
    data["agree"] = ["What will you commit to on {{ deal.name }}?"]
    data["deliver"] = ["How did it go?"]
    with pytest.raises(ConfigError) as info:
        parse_bank(data)
    assert "agree: is one list per deal" in str(info.value)
    assert "deliver: is one list per deal" in str(info.value)


def test_the_five_core_questions_are_in_the_bank(bank):
    everything = " ".join(q for _, q in bank.all_questions()).lower()
    for words in (
        "walk me through your thinking",  # Listen
        "alternative to us, and what happens if they do nothing",  # Explore
        "what would need to be true for this to close",  # Explore
        "the one thing you will do differently this week",  # Agree
        "you committed to",  # Deliver ("Last week you committed to", or "On Nov 15 …")
    ):
        assert words in everything, words


def test_the_deep_deal_gets_the_core_then_its_flags_and_a_backup_one_question(bank):
    from leadprep.signals import Context, evaluate

    picker = QuestionPicker(bank, TODAY)
    many_flags = make_deal(contacts=(), last_activity_at=None, next_step=None)
    flags = evaluate(many_flags, Context(today=TODAY))
    assert len(flags) >= 3
    deep = picker.deep(many_flags, flags, "Alex")
    assert len(deep["listen"]) == 1 and len(deep["explore"]) == 4  # two core, two follow-ups
    alternative, need_true = deep["explore"][:2]
    assert fills_one_of(alternative, bank.explore["core_alternative"])
    assert fills_one_of(need_true, bank.explore["core_need_true"])  # it has a close date
    backup = picker.backup(make_deal(id="D-2"), flags[:1], "Alex")
    assert backup["listen"] == [] and len(backup["explore"]) == 1
    undated = picker.deep(make_deal(id="D-3", close_date=None), [], "Alex")
    assert fills_one_of(undated["explore"][1], bank.explore["core_need_true_undated"])
    assert len(undated["explore"]) == 3  # no flag: one follow-up fitting its stage


def fills_one_of(question: str, templates) -> bool:
    """Whether ``question`` is one of ``templates`` filled in (the text before the first
    variable matches)."""
    return any(question.startswith(t.split("{{")[0]) for t in templates)


def test_no_template_twice_on_a_sheet_and_not_the_same_one_two_reviews_running(bank):
    from leadprep.questions import template_key

    deals = [make_deal(id=f"D-{i}", contacts=()) for i in range(3)]
    flags = evaluate(deals[0], Context(today=TODAY))
    picker = QuestionPicker(bank, TODAY)
    picker.start_sheet()
    asked = [picker.deep(deals[0], flags, "A")] + [picker.backup(d, flags, "A") for d in deals[1:]]
    texts = [q for a in asked for qs in a.values() for q in qs]
    assert len(texts) == len(set(texts))
    assert len(picker.used) == len(texts)  # one template each
    last_week = {deal: set(keys) for deal, keys in picker.asked.items()}
    following = QuestionPicker(bank, TODAY + timedelta(days=7), last_week)
    again = following.deep(deals[0], flags, "A")
    for key in following.asked["D-0"]:
        assert key not in last_week["D-0"], "a question asked last review came back"
    assert again != asked[0]
    assert all(template_key(t) for t in picker.used)


def test_choice_is_stable_within_a_week_and_varies_across_weeks(bank):
    deal = make_deal(contacts=())
    flags = evaluate(deal, Context(today=TODAY))
    same = QuestionPicker(bank, TODAY).for_deal(deal, flags, "Alex")
    assert QuestionPicker(bank, TODAY + timedelta(days=1)).for_deal(deal, flags, "Alex") == same
    weeks = [
        QuestionPicker(bank, TODAY + timedelta(weeks=w)).for_deal(deal, flags, "Alex")["explore"][0]
        for w in range(8)
    ]
    assert len(set(weeks)) >= 2


def test_questions_are_filled_with_the_deals_facts(bank):
    deal = make_deal(name="Globex expansion", account="Globex", contacts=())
    flags = evaluate(deal, Context(today=TODAY))
    questions = QuestionPicker(bank, TODAY).for_deal(deal, flags, "Alex")
    text = " ".join(q for qs in questions.values() for q in qs)
    assert "{{" not in text and "Globex" in text
    assert len(questions["explore"]) == 2  # the shape kept for custom templates and the email


def test_every_question_fills_on_every_demo_deal(bank):
    for week in range(4):
        today = TODAY + timedelta(weeks=week)
        picker = QuestionPicker(bank, today)
        for deal in current_deals(today):
            flags = evaluate(deal, Context(today=today))
            picker.start_sheet()
            for step, questions in picker.for_deal(deal, flags, "Alex").items():
                assert questions and all("{{" not in q for q in questions), step


def test_no_question_quotes_a_fact_the_deal_does_not_have():
    """A deal with no close date, amount, next step or contacts is never asked about "the close
    date" or "this amount": over a year of weekly variants, every flag's questions."""
    from leadprep.signals import Flag

    bank = load_bank(BANK_PATH)
    facts = {
        "category": "Commit",
        "pushes": 2,
        "days": 40,
        "contacts": 0,
        "percent": 25,
        "limit": 30,
    }
    bare = make_deal(close_date=None, amount=None, next_step=None, contacts=())
    for week in range(52):
        picker = QuestionPicker(bank, TODAY + timedelta(weeks=week))
        for code in FLAG_CODES:
            asked = picker.for_deal(bare, [Flag(code, "high", "evidence", facts)], "Alex")
            text = " ".join(asked["listen"] + asked["explore"])
            for placeholder in ("the close date", "this amount", "your contact"):
                assert placeholder not in text, (code, text)


@pytest.mark.parametrize(
    ("name", "said"),
    [("Acme", "Acme's"), ("Halden Foods", "Halden Foods'"), ("the buyer", "the buyer's")],
)
def test_possessives_read_as_people_say_them(name, said):
    from leadprep.questions import possessive

    assert possessive(name) == said


def test_explore_leaves_the_topic_of_a_habit_commitment_to_deliver(bank):
    from leadprep.questions import topics_of

    commitment = "Ask every buyer this week what happens if they do nothing"
    assert "alternative" in topics_of(commitment)
    deal = make_deal(contacts=())
    flags = evaluate(deal, Context(today=TODAY))
    picker = QuestionPicker(bank, TODAY)
    picker.start_sheet([commitment])
    asked = picker.deep(deal, flags, "Alex")
    assert not any("alternative" in q or "nothing" in q for q in asked["explore"]), asked
    picker.start_sheet([])
    again = picker.deep(deal, flags, "Alex")
    assert any("alternative" in q for q in again["explore"])  # without it, the core question


def test_a_second_mention_uses_the_first_name(bank):
    from leadprep.model import Contact

    deal = make_deal(contacts=(Contact("Dana Ortiz", role="Champion"),))
    sole = bank.explore["single_threaded"][0]
    picker = QuestionPicker(bank, TODAY)
    text = picker._ask((sole,), ("k",), deal, **picker._context(deal, "Alex"), flag={})
    assert text.startswith("Dana Ortiz is carrying this deal for us. If Dana left Acme tomorrow")


def test_a_bank_without_the_newer_slots_still_loads_and_asks(tmp_path):
    """A custom bank written for 0.2 (listen.deal, no core or stage slots, no rehearse or
    not_worked) keeps working: the sheet goes without what it lacks."""
    data = yaml.safe_load(BANK_PATH.read_text())
    data["listen"]["deal"] = data["listen"].pop("deep")
    for slot in [k for k in data["explore"] if k.startswith("core_")]:
        del data["explore"][slot]
    for phase in ("early", "middle", "late"):
        del data["explore"][f"stage_{phase}"]
    del data["explore"]["single_threaded_thin"]
    del data["agree"]["rehearse"], data["deliver"]["not_worked"]
    del data["explore"]["stage_moved_back"]  # a signal added after the bank was written
    custom = tmp_path / "questions.yaml"
    custom.write_text(yaml.safe_dump(data), encoding="utf-8")
    bank = load_bank(custom, BANK_PATH)
    assert bank.borrowed == ("stage_moved_back",)  # from the packaged bank, and said so
    with pytest.raises(ConfigError, match=r"explore\.stage_moved_back: missing"):
        load_bank(custom)  # without the packaged bank to lean on, it is still named
    deal = make_deal(contacts=())
    asked = QuestionPicker(bank, TODAY).deep(deal, evaluate(deal, Context(today=TODAY)), "Alex")
    assert len(asked["listen"]) == 1 and 1 <= len(asked["explore"]) <= 3
    assert len(QuestionPicker(bank, TODAY).agree("a@x.com", "Alex")) == 2
