"""The question bank: load it, pick a variant per deal and week, fill it with the deal's facts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
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
    listen_deal: tuple[str, ...]  # the deep deal's Listen: "walk me through your thinking"
    listen_cues: tuple[str, ...]
    explore: dict[str, tuple[str, ...]]
    agree_ask: tuple[str, ...]
    agree_check: tuple[str, ...]
    deliver_open: tuple[str, ...]
    deliver_kept: tuple[str, ...]
    deliver_missed: tuple[str, ...]
    # the stages of a deal a question fits (early, middle, late); a question not named fits all
    stages: dict[str, frozenset[str]] = field(default_factory=dict)
    deliver_not_worked: tuple[str, ...] = ()  # done, but it did not work
    agree_rehearse: tuple[str, ...] = ()  # when the commitment is a conversation
    borrowed: tuple[str, ...] = ()  # flag codes whose questions came from the packaged bank

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
        out += [("deliver.not_worked", q) for q in self.deliver_not_worked]
        out += [("agree.rehearse", q) for q in self.agree_rehearse]
        return out


PHASES = ("early", "middle", "late")


def _strings(
    value: Any, where: str, problems: list[str], stages: dict[str, frozenset[str]] | None = None
) -> tuple[str, ...]:
    """A slot's questions: each a string, or ``{q: "…", stages: [early, middle]}`` for a question
    that fits only deals at those stages (recorded in ``stages``)."""
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: must be a non-empty list of questions")
        return ()
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(item.strip())
            continue
        text = item.get("q") if isinstance(item, dict) else None
        fits = item.get("stages") if isinstance(item, dict) else None
        if (
            not isinstance(text, str)
            or not isinstance(fits, list)
            or not fits
            or any(f not in PHASES for f in fits)
            or set(item) - {"q", "stages"}
        ):
            problems.append(
                f'{where}: {str(item)[:60]!r} must be a question, or {{q: "…", stages: [...]}} '
                f"with stages among {', '.join(PHASES)}"
            )
            continue
        out.append(text.strip())
        if stages is not None:
            stages[text.strip()] = frozenset(fits)
    return tuple(out)


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


def _optional(section: dict, key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    """A slot added after 0.2's banks: absent is fine (the sheet goes without it)."""
    if key not in section:
        return ()
    return _strings(section[key], f"{where}.{key}", problems)


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
    stages: dict[str, frozenset[str]] = {}
    explore = {
        str(code): _strings(qs, f"explore.{code}", problems, stages)
        for code, qs in explore_raw.items()
    }
    for code in (*FLAG_CODES, "healthy", "general"):
        if code not in explore:
            problems.append(f"explore.{code}: missing (every flag code needs questions)")
    agree = _section(data, "agree", ("ask", "check"), problems)
    deliver = _section(data, "deliver", ("open", "kept", "missed"), problems)
    deep = listen.get("deep", listen.get("deal"))
    bank = QuestionBank(
        listen_opening=_strings(listen.get("opening"), "listen.opening", problems),
        listen_deal=_strings(deep, "listen.deep", problems, stages),
        listen_cues=_strings(listen.get("cues"), "listen.cues", problems),
        explore=explore,
        agree_ask=_strings(agree.get("ask"), "agree.ask", problems),
        agree_check=_strings(agree.get("check"), "agree.check", problems),
        deliver_open=_strings(deliver.get("open"), "deliver.open", problems),
        deliver_kept=_strings(deliver.get("kept"), "deliver.kept", problems),
        deliver_missed=_strings(deliver.get("missed"), "deliver.missed", problems),
        stages=stages,
        deliver_not_worked=_optional(deliver, "not_worked", "deliver", problems),
        agree_rehearse=_optional(agree, "rehearse", "agree", problems),
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


def load_bank(path: Path, fallback: Path | None = None) -> QuestionBank:
    """Read and validate the bank at ``path``. With ``fallback`` (the packaged bank), a flag's
    questions the bank lacks (a signal added after it was written) come from there, and the
    bank says which (``borrowed``)."""
    data = _read_bank(path)
    borrowed: tuple[str, ...] = ()
    if fallback is not None and isinstance(data, dict) and isinstance(data.get("explore"), dict):
        packaged = _read_bank(fallback)
        missing = [c for c in FLAG_CODES if c not in data["explore"]]
        if missing and isinstance(packaged, dict):
            data["explore"] |= {c: packaged["explore"][c] for c in missing}
            borrowed = tuple(missing)
    return replace(parse_bank(data, str(path)), borrowed=borrowed)


def _read_bank(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the question bank {path}: {exc}") from None


def is_status_check(text: str) -> bool:
    """True when the question asks for something the CRM already says."""
    return any(p.search(text) for p in STATUS_CHECK_PATTERNS)


def is_prescriptive_or_gotcha(text: str) -> bool:
    """True when the question prescribes ("you should…", "make sure…") or plays gotcha ("why
    didn't you…", "did you call…")."""
    return any(p.search(text) for p in PRESCRIPTIVE_OR_GOTCHA_PATTERNS)


MAX_EXPLORE = 2  # per focus deal: the ten-minute budget (DESIGN §1)

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def possessive(name: object) -> str:
    """``Acme`` → ``Acme's``; ``Halden Foods`` → ``Halden Foods'`` (the bank's ``| possessive``)."""
    text = str(name)
    return text + ("'" if text.endswith("s") else "'s")


_ENV.filters["possessive"] = possessive

# What a commitment or a question is about, told by its words: Explore does not re-ask the
# topic of the rep's open commitment (Deliver opens on it). Coarse on purpose: a shared topic
# costs one question its turn, never the sheet its shape.
TOPICS = {
    "people": frozenset(
        [
            "cfo",
            "ceo",
            "cto",
            "coo",
            "colleague",
            "colleagues",
            "introduce",
            "introduction",
            "intro",
            "stakeholder",
            "stakeholders",
            "sponsor",
            "executive",
            "economic",
            "signer",
            "signs",
            "approve",
            "approves",
            "approval",
            "champion",
            "people",
            "involved",
            "else",
            "reach",
            "meet",
            "meeting",
            "contact",
            "contacts",
            "thread",
            "multithread",
        ]
    ),
    "alternative": frozenset(
        ["nothing", "alternative", "alternatives", "instead", "competitor", "competitors"]
    ),
    "date": frozenset(
        ["date", "dates", "deadline", "timeline", "slip", "slipped", "pushed", "moved"]
    ),
    "scope": frozenset(["scope", "value", "price", "pricing", "discount", "amount", "budget"]),
    "silence": frozenset(["touch", "reply", "replies", "quiet", "silent", "respond"]),
}


def topics_of(text: str) -> frozenset[str]:
    """The topics a question template or a commitment is about (template variables left out)."""
    bare = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", " ", text.lower())
    words = set(re.findall(r"[a-z]+", bare))
    return frozenset(topic for topic, keys in TOPICS.items() if words & keys)


def same_topic(template: str, topics: frozenset[str]) -> bool:
    """Whether a question template is about one of ``topics`` (the open commitments')."""
    return bool(topics_of(template) & topics)


def template_key(template: str) -> str:
    """A short stable key of a question template, as the state store remembers it."""
    return hashlib.sha256(template.encode()).hexdigest()[:16]


def pick(options: tuple[str, ...], *keys: object) -> str:
    """A variant chosen deterministically from the keys (deal id, review week, slot)."""
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def spoken_name(deal: Deal) -> str:
    """How a person says the deal: the account when known ("Crescent Bank"), else the record's
    name before a dash ("Crescent Bank – staffing pilot" → "Crescent Bank"), else the name."""
    if deal.account:
        return deal.account
    for dash in (" – ", " — ", " - ", ": "):
        if dash in deal.name:
            return deal.name.split(dash, 1)[0].strip() or deal.name
    return deal.name


def _names(contacts: tuple[Any, ...], most: int = 2) -> str:
    firsts = [c.name.split()[0] if c.name.split() else c.name for c in contacts]
    if len(firsts) <= most:
        return " and ".join(firsts)
    return ", ".join(firsts[:most]) + f" and {len(firsts) - most} more"


def deal_facts(deal: Deal, today: date) -> dict[str, Any]:
    """The plain-text facts a question may use (CRM text stays unescaped here; renderers escape)."""
    return {
        "name": deal.name,
        "spoken": spoken_name(deal),
        "buyer": deal.account or "the buyer",
        "stage": deal.stage,
        "amount": money(deal.amount, deal.currency) if deal.amount is not None else "this amount",
        "close_date": short_date(deal.close_date, today) if deal.close_date else "the close date",
        "next_step": deal.next_step or "the next step",
        "contact_count": len(deal.contacts),
        "contact": deal.contacts[0].name if deal.contacts else "your contact",
        "contact_first": _names(deal.contacts[:1]) if deal.contacts else "your contact",
        "contacts": _names(deal.contacts) if deal.contacts else "your contacts",
    }


def phase_of(deal: Deal) -> str:
    """Where the deal is: early (below 30%), middle (below 60%) or late, by its stage's
    probability; middle when the CRM gives none."""
    if deal.probability is None:
        return "middle"
    return "early" if deal.probability < 0.3 else "middle" if deal.probability < 0.6 else "late"


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
    """Chooses and fills questions for one review: a variant per deal and week, never one
    template twice on a sheet (:meth:`start_sheet`), never the template a deal was asked at the
    last review (``avoid``), never one quoting a fact the deal lacks or unfit for its stage.
    ``asked`` collects, per deal, the templates chosen, for the state store."""

    def __init__(
        self, bank: QuestionBank, as_of: date, avoid: dict[str, set[str]] | None = None
    ) -> None:
        self.bank = bank
        self.as_of = as_of
        self.week = review_week(as_of)
        self.avoid = avoid or {}
        self.used: set[str] = set()
        self.asked: dict[str, list[str]] = {}
        self.topics: frozenset[str] = frozenset()  # the rep's open commitments': Deliver's

    def opening(self, rep_email: str) -> list[str]:
        """The one opening Listen prompt for the rep (the ten-minute budget allows one)."""
        return [pick(self.bank.listen_opening, rep_email, self.week, "opening")]

    def cues(self, rep_email: str, count: int = 3) -> list[str]:
        cues = list(self.bank.listen_cues)
        start = int(hashlib.sha256(f"{rep_email}|{self.week}".encode()).hexdigest(), 16) % len(cues)
        return [cues[(start + i) % len(cues)] for i in range(min(count, len(cues)))]

    def start_sheet(self, commitments: list[str] | None = None) -> None:
        """A new rep's sheet: templates used on the last one may be used again, ``asked`` starts
        empty; Explore does not re-ask the topic of the rep's open ``commitments``."""
        self.used = set()
        self.asked = {}
        self.topics = frozenset(t for text in commitments or [] for t in topics_of(text))

    def choose(
        self, options: tuple[str, ...], keys: tuple[object, ...], deal: Deal | None = None
    ) -> str | None:
        """One template of ``options`` for this deal and week, or None when every one is
        already on the sheet (a sheet never asks the same question twice)."""
        fitting = options
        if deal is not None:
            fitting = usable(options, missing_facts(deal))
            phase = phase_of(deal)
            staged = tuple(q for q in fitting if phase in self.bank.stages.get(q, PHASES))
            fitting = staged or fitting
            last = self.avoid.get(deal.id, set())
            fresh = tuple(q for q in fitting if template_key(q) not in last)
            fitting = fresh or fitting
            fitting = tuple(q for q in fitting if not same_topic(q, self.topics))
            if not fitting:
                return None  # Deliver already asks it
        unused = [q for q in fitting if q not in self.used]
        if not unused:
            return None
        start = pick(tuple(unused), *keys)
        self.used.add(start)
        if deal is not None:
            self.asked.setdefault(deal.id, []).append(template_key(start))
        return start

    def _ask(
        self, options: tuple[str, ...], keys: tuple[object, ...], subject: Deal, **ctx: Any
    ) -> str | None:
        template = self.choose(options, keys, subject)
        return fill(template, **ctx) if template is not None else None

    def _flag_options(self, deal: Deal, flag: Flag) -> tuple[str, tuple[str, ...]]:
        code = flag.code
        if code == "single_threaded":
            count = len(deal.contacts)
            variant = "single_threaded_no_contacts" if count == 0 else "single_threaded_thin"
            if count != 1 and variant in self.bank.explore:
                code = variant
        return code, self.bank.explore.get(code) or self.bank.explore["healthy"]

    def _context(self, deal: Deal, rep_first_name: str) -> dict[str, Any]:
        return {"deal": deal_facts(deal, self.as_of), "rep": {"first_name": rep_first_name}}

    def deep(self, deal: Deal, flags: list[Flag], rep_first_name: str) -> dict[str, list[str]]:
        """The one deal talked through: the rep's own read (Listen), the framework's core
        Explore questions (the buyer's alternative, what would need to be true), then at most two
        follow-ups from its flags (else one fitting its stage)."""
        context = self._context(deal, rep_first_name)
        keys = (deal.id, self.week)
        need_true = "core_need_true" if deal.close_date else "core_need_true_undated"
        if need_true not in self.bank.explore:
            need_true = "core_need_true"
        explore: list[str | None] = [
            self._ask(self.bank.explore.get(slot, ()), (*keys, slot), deal, **context)
            for slot in ("core_alternative", need_true)
            if slot in self.bank.explore
        ]
        for flag in flags:
            if sum(1 for q in explore if q) >= MAX_EXPLORE + 2:
                break
            code, options = self._flag_options(deal, flag)
            flag_ctx = {"evidence": flag.evidence, "severity": flag.severity, **flag.facts}
            explore.append(self._ask(options, (*keys, code), deal, **context, flag=flag_ctx))
        if sum(1 for q in explore if q) < MAX_EXPLORE + 1:
            slot = f"stage_{phase_of(deal)}"
            general = self.bank.explore.get(slot) or self.bank.explore["general"]
            explore.append(self._ask(general, (*keys, slot), deal, **context))
        listen = self._ask(self.bank.listen_deal, (*keys, "listen"), deal, **context)
        return {"listen": [listen] if listen else [], "explore": [q for q in explore if q]}

    def backup(self, deal: Deal, flags: list[Flag], rep_first_name: str) -> dict[str, list[str]]:
        """An "if time" deal: one question, from its strongest flag (else a general one)."""
        context = self._context(deal, rep_first_name)
        keys = (deal.id, self.week)
        for flag in flags:
            code, options = self._flag_options(deal, flag)
            flag_ctx = {"evidence": flag.evidence, "severity": flag.severity, **flag.facts}
            question = self._ask(options, (*keys, code), deal, **context, flag=flag_ctx)
            if question:
                return {"listen": [], "explore": [question]}
        question = self._ask(self.bank.explore["general"], (*keys, "general"), deal, **context)
        return {"listen": [], "explore": [question] if question else []}

    def for_deal(self, deal: Deal, flags: list[Flag], rep_first_name: str) -> dict[str, list[str]]:
        """One Listen and at most two Explore questions for a deal (the shape of leadprep 0.2's
        focus deals, kept for custom templates and the email)."""
        full = self.deep(deal, flags, rep_first_name)
        return {"listen": full["listen"], "explore": full["explore"][:MAX_EXPLORE]}

    def agree(self, rep_email: str, rep_first_name: str) -> list[str]:
        """The one Agree of the 1:1: the commitment question, how both will know it worked, and
        (when the bank has it) the rehearsal for a commitment that is a conversation."""
        context = {"rep": {"first_name": rep_first_name}}
        keys = (rep_email, self.week)
        prompts = [
            fill(pick(self.bank.agree_ask, *keys, "agree"), **context),
            fill(pick(self.bank.agree_check, *keys, "check"), **context),
        ]
        if self.bank.agree_rehearse:
            prompts.append(fill(pick(self.bank.agree_rehearse, *keys, "rehearse"), **context))
        return prompts

    def deliver_prompts(
        self, commitment: Commitment, when: str = "Last week", skipped: bool = False
    ) -> tuple[str, dict[str, list[str]]]:
        """How to open on a commitment (``when`` it was made, as the review dates say; whether a
        review went by without it), and the prompts for each branch: kept (it worked),
        not_worked (done, did not work), missed."""
        context = {
            "commitment": {
                "text": commitment.text,
                "about": commitment.about,
                "success": commitment.success or "",
                "when": when,
                "skipped": skipped,
            }
        }
        keys = (commitment.id, self.week)
        opening = fill(pick(self.bank.deliver_open, *keys, "open"), **context)
        return opening, {
            "kept": [fill(q, **context) for q in self.bank.deliver_kept],
            "not_worked": [fill(q, **context) for q in self.bank.deliver_not_worked],
            "missed": [fill(q, **context) for q in self.bank.deliver_missed],
        }
