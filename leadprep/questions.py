"""The question bank: load it, pick a variant per deal and week, fill it with the deal's facts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from leadprep.errors import ConfigError
from leadprep.formatting import money, short_date
from leadprep.model import Deal, review_week
from leadprep.signals import FLAG_CODES, Flag

if TYPE_CHECKING:
    from leadprep.model import Commitment

STEPS = ("listen", "explore", "agree", "deliver")

# Status checks: answers the CRM already holds. The bank must never ask them.
STATUS_CHECK_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bwhat'?s the status\b",
        r"\bwhat is the status\b",
        r"\bstatus (update|on|of)\b",
        r"\bany (update|news)s?\b",
        r"\bwhere are we (at|with)\b",
        r"\bwhen (will|does|is) (it|this|the deal|that) clos",
        r"\bwhen (will|does|do) (they|we) (close|sign)\b",
        r"\bdid you (send|call|email|follow up|get|hear)\b",
        r"\bhave you (sent|called|emailed|followed up|heard)\b",
        r"\bis (it|this) (still )?on track\b",
        r"\bhow much is (it|this) (worth|for)\b",
    )
)

# Prescriptions (the manager answering for the rep) and gotchas (questions that corner rather
# than open): the rep should do the thinking, so the bank never asks these either.
PRESCRIPTIVE_OR_GOTCHA_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bhave you tried\b",
        r"\bhave you thought about\b",
        r"\byou (should|must|ought to)\b",
        r"(?<!would )(?<!do )(?<!will )\byou (need to|have to)\b",  # "what would you need to…" asks
        r"\bwhy didn'?t you\b",
        r"\bwhy haven'?t you\b",
        r"\bwhy did you not\b",
        r"\bmake sure\b",
        r"\bdon'?t forget\b",
        r"\bwhy would you\b",
        r"\bdid you (call|email|e-mail|send|ask|tell|talk|speak|meet|book)\b",
        r"\bisn'?t it (true|obvious)\b",
        r"\bwouldn'?t it be better\b",
    )
)


@dataclass(frozen=True)
class QuestionBank:
    """The parsed bank: listen.opening/deal/cues, explore.<flag code>/general/healthy,
    agree.ask/check (once per rep), deliver.open/kept/missed (per open commitment)."""

    listen_opening: tuple[str, ...]
    listen_deal: tuple[str, ...]
    listen_cues: tuple[str, ...]
    explore: dict[str, tuple[str, ...]]
    agree_ask: tuple[str, ...]
    agree_check: tuple[str, ...]
    deliver_open: tuple[str, ...]
    deliver_kept: tuple[str, ...]
    deliver_missed: tuple[str, ...]

    def all_questions(self) -> list[tuple[str, str]]:
        """(slot, text) for every question, for linting."""
        out = [("listen.opening", q) for q in self.listen_opening]
        out += [("listen.deal", q) for q in self.listen_deal]
        out += [(f"explore.{code}", q) for code, qs in self.explore.items() for q in qs]
        out += [("agree.ask", q) for q in self.agree_ask]
        out += [("agree.check", q) for q in self.agree_check]
        out += [("deliver.open", q) for q in self.deliver_open]
        out += [("deliver.kept", q) for q in self.deliver_kept]
        out += [("deliver.missed", q) for q in self.deliver_missed]
        return out


def _strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: must be a non-empty list of questions")
        return ()
    return tuple(v.strip() for v in value)


def _section(data: dict, name: str, keys: tuple[str, ...], problems: list[str]) -> dict:
    value = data.get(name)
    if isinstance(value, dict):
        return value
    if isinstance(value, list):  # the per-deal form of leadprep 0.1
        problems.append(
            f"{name}: is one list per deal (leadprep 0.1); it now has {', '.join(keys)} lists, "
            "asked once per rep: see the packaged questions.yaml"
        )
    else:
        problems.append(f"{name}: must have {', '.join(keys)} lists")
    return {}


def parse_bank(data: Any, source: str = "questions.yaml") -> QuestionBank:
    """Validate a loaded bank; every problem is reported at once."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the question bank must be a mapping (listen, explore, …).")
    listen = data.get("listen") or {}
    explore_raw = data.get("explore") or {}
    if not isinstance(listen, dict):
        problems.append("listen: must have opening, deal and cues lists")
        listen = {}
    if not isinstance(explore_raw, dict):
        problems.append("explore: must map flag codes to lists of questions")
        explore_raw = {}
    explore = {
        str(code): _strings(qs, f"explore.{code}", problems) for code, qs in explore_raw.items()
    }
    for code in (*FLAG_CODES, "healthy", "general"):
        if code not in explore:
            problems.append(f"explore.{code}: missing (every flag code needs questions)")
    agree = _section(data, "agree", ("ask", "check"), problems)
    deliver = _section(data, "deliver", ("open", "kept", "missed"), problems)
    bank = QuestionBank(
        listen_opening=_strings(listen.get("opening"), "listen.opening", problems),
        listen_deal=_strings(listen.get("deal"), "listen.deal", problems),
        listen_cues=_strings(listen.get("cues"), "listen.cues", problems),
        explore=explore,
        agree_ask=_strings(agree.get("ask"), "agree.ask", problems),
        agree_check=_strings(agree.get("check"), "agree.check", problems),
        deliver_open=_strings(deliver.get("open"), "deliver.open", problems),
        deliver_kept=_strings(deliver.get("kept"), "deliver.kept", problems),
        deliver_missed=_strings(deliver.get("missed"), "deliver.missed", problems),
    )
    for slot, text in bank.all_questions():
        if is_status_check(text):
            problems.append(f"{slot}: “{text}” is a status check; ask what the rep thinks instead")
        elif is_prescriptive_or_gotcha(text):
            problems.append(
                f"{slot}: “{text}” tells the rep what to do or corners them; ask an open "
                "question the rep answers from their own thinking instead"
            )
        try:
            _ENV.from_string(text)
        except TemplateError as exc:
            problems.append(f"{slot}: “{text}” is not a valid template ({exc})")
    if problems:
        raise ConfigError(f"{source} has problems:", problems=problems)
    return bank


def load_bank(path: Path) -> QuestionBank:
    """Read and validate the bank at ``path``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the question bank {path}: {exc}") from None
    return parse_bank(data, str(path))


def is_status_check(text: str) -> bool:
    """True when the question asks for something the CRM already says."""
    return any(p.search(text) for p in STATUS_CHECK_PATTERNS)


def is_prescriptive_or_gotcha(text: str) -> bool:
    """True when the question prescribes ("you should…", "make sure…") or plays gotcha ("why
    didn't you…", "did you call…")."""
    return any(p.search(text) for p in PRESCRIPTIVE_OR_GOTCHA_PATTERNS)


MAX_EXPLORE = 2  # per focus deal: the ten-minute budget (DESIGN §1)

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def pick(options: tuple[str, ...], *keys: object) -> str:
    """A variant chosen deterministically from the keys (deal id, review week, slot)."""
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def deal_facts(deal: Deal, today: date) -> dict[str, Any]:
    """The plain-text facts a question may use (CRM text stays unescaped here; renderers escape)."""
    return {
        "name": deal.name,
        "buyer": deal.account or "the buyer",
        "stage": deal.stage,
        "amount": money(deal.amount, deal.currency) if deal.amount is not None else "this amount",
        "close_date": short_date(deal.close_date, today) if deal.close_date else "the close date",
        "next_step": deal.next_step or "the next step",
        "contact_count": len(deal.contacts),
        "contact": deal.contacts[0].name if deal.contacts else "your contact",
    }


def missing_facts(deal: Deal) -> frozenset[str]:
    """The deal facts a question must not lean on because the CRM does not have them."""
    missing = set()
    if deal.close_date is None:
        missing.add("close_date")
    if deal.amount is None:
        missing.add("amount")
    if not deal.next_step:
        missing.add("next_step")
    if not deal.contacts:
        missing.add("contact")
    return frozenset(missing)


def usable(options: tuple[str, ...], missing: frozenset[str]) -> tuple[str, ...]:
    """The questions that do not quote a fact the deal lacks ("…by the close date?" on a deal with
    none); all of them when every one would (the bank's fallbacks then read naturally)."""
    fitting = tuple(q for q in options if not any(f"deal.{name}" in q for name in missing))
    return fitting or options


def fill(template: str, **context: Any) -> str:
    """Fill one question; an unknown variable is a bank error, reported with the question."""
    try:
        return _ENV.from_string(template).render(**context).strip()
    except TemplateError as exc:
        raise ConfigError(f"Question “{template}” could not be filled: {exc}") from None


class QuestionPicker:
    """Chooses and fills questions for one review."""

    def __init__(self, bank: QuestionBank, as_of: date) -> None:
        self.bank = bank
        self.as_of = as_of
        self.week = review_week(as_of)

    def opening(self, rep_email: str) -> list[str]:
        """The one opening Listen prompt for the rep (the ten-minute budget allows one)."""
        return [pick(self.bank.listen_opening, rep_email, self.week, "opening")]

    def cues(self, rep_email: str, count: int = 3) -> list[str]:
        cues = list(self.bank.listen_cues)
        start = int(hashlib.sha256(f"{rep_email}|{self.week}".encode()).hexdigest(), 16) % len(cues)
        return [cues[(start + i) % len(cues)] for i in range(min(count, len(cues)))]

    def for_deal(self, deal: Deal, flags: list[Flag], rep_first_name: str) -> dict[str, list[str]]:
        """One Listen and at most two Explore questions for a focus deal: its two strongest
        flags, or its one flag and one of the framework's general questions."""
        facts = deal_facts(deal, self.as_of)
        context = {"deal": facts, "rep": {"first_name": rep_first_name}}
        keys = (deal.id, self.week)
        missing = missing_facts(deal)
        explore = []
        for flag in flags[:MAX_EXPLORE]:
            code = flag.code
            if code == "single_threaded" and flag.facts.get("contacts") == 0:
                code = (
                    "single_threaded_no_contacts"
                    if code + "_no_contacts" in self.bank.explore
                    else code
                )
            options = usable(self.bank.explore.get(code) or self.bank.explore["healthy"], missing)
            flag_ctx = {"evidence": flag.evidence, "severity": flag.severity, **flag.facts}
            explore.append(fill(pick(options, *keys, code), **context, flag=flag_ctx))
        if not explore:
            healthy = usable(self.bank.explore["healthy"], missing)
            explore.append(fill(pick(healthy, *keys, "healthy"), **context))
        if len(explore) < MAX_EXPLORE:
            general = usable(self.bank.explore["general"], missing)
            explore.append(fill(pick(general, *keys, "general"), **context))
        listen = usable(self.bank.listen_deal, missing)
        return {
            "listen": [fill(pick(listen, *keys, "listen"), **context)],
            "explore": explore,
        }

    def agree(self, rep_email: str, rep_first_name: str) -> list[str]:
        """The one Agree of the 1:1: the commitment question, then how both will know it worked."""
        context = {"rep": {"first_name": rep_first_name}}
        keys = (rep_email, self.week)
        return [
            fill(pick(self.bank.agree_ask, *keys, "agree"), **context),
            fill(pick(self.bank.agree_check, *keys, "check"), **context),
        ]

    def deliver_prompts(self, commitment: Commitment) -> tuple[str, dict[str, list[str]]]:
        """How to open on a commitment, and the prompts for each branch: kept, missed."""
        context = {
            "commitment": {
                "text": commitment.text,
                "about": commitment.about,
                "success": commitment.success or "",
            }
        }
        keys = (commitment.id, self.week)
        opening = fill(pick(self.bank.deliver_open, *keys, "open"), **context)
        return opening, {
            "kept": [fill(q, **context) for q in self.bank.deliver_kept],
            "missed": [fill(q, **context) for q in self.bank.deliver_missed],
        }
