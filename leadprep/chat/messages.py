"""Slack and Microsoft Teams: a compact prep per manager, posted to the team's webhook.

The messages go through the same outbox and deliveries table as email (kinds ``slack`` and
``teams``, one per manager and week), so they get the same guarantees: written before sending,
sent once, retried on the next run when the service was down (the posting is
:mod:`leadprep.chat.webhook`'s). Webhook URLs are secrets: they are only in the environment and
in memory, never in the outbox, the state store, logs or errors.

Formats: Slack Block Kit (header, context, one section per rep, a divider; a plain-text ``text``
fallback), and a Teams Adaptive Card, version 1.4, in a ``message`` envelope as Teams Workflows
webhooks take it. CRM text is escaped for each: ``& < >`` for Slack mrkdwn (so no link or
``<!channel>`` can be formed, and ``@channel``/``@here`` are broken up), Markdown for Teams.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from leadprep.config import Config, Person
from leadprep.formatting import short_date
from leadprep.packets import Packet
from leadprep.render import md_escape
from leadprep.sanitize import clean_line, safe_url

KINDS = ("slack", "teams")
SLACK_MAX_BLOCKS = 50  # Block Kit's limit per message
SLACK_MAX_SECTION = 3000  # characters in a section's text
SLACK_MAX_HEADER = 150
MAX_REPS = 40  # reps listed one by one; the rest are counted (and on the sheets)
TEAMS_MAX_BYTES = 27 * 1024  # Teams webhooks refuse messages over 28 KB; a margin for headers
_MENTION = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)


@dataclass
class ChatMessage:
    """One manager's prep for one chat service, as the outbox keeps it."""

    kind: str  # slack | teams
    recipient: str  # the manager's email: the deliveries key, never the webhook
    body: dict[str, Any]
    suffix = ".json"

    @property
    def payload(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False, sort_keys=True).encode("utf-8")

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()


def slack_text(value: object) -> str:
    """CRM text for Slack mrkdwn: ``& < >`` escaped as Slack asks, mentions broken up."""
    text = clean_line(str(value)) or ""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub(lambda m: "@\u2060" + m.group(1), text)


def teams_text(value: object) -> str:
    """CRM text for an Adaptive Card TextBlock: Markdown escaped, mentions broken up."""
    return _MENTION.sub(lambda m: "@\u2060" + m.group(1), md_escape(value))


@dataclass(frozen=True)
class RepLines:
    """What the chat message says about one rep, as plain facts (escaped per service later)."""

    name: str
    summary: str
    focus: list[str]
    commitments: list[str]
    link: str | None


def _lines(packet: Packet, base_url: str | None) -> RepLines:
    today = packet.as_of
    focus = []
    for view in packet.focus:
        if not view.evidence:
            continue  # the deal talked through when none is flagged: nothing to warn about
        flag = view.evidence[0]
        focus.append(f"{view.deal.name} — {flag.title}: {flag.evidence}")
    commitments = []
    for item in packet.deliver:
        c = item.commitment
        due = f", due {short_date(c.due, today)}" if c.due else ""
        commitments.append(f"“{c.text}” ({c.about}{due})")
    summary = f"{len(packet.deals)} open deals, {len(packet.flagged)} flagged"
    link = f"{base_url}/{packet.slug}.html" if base_url else None
    return RepLines(packet.rep.name, summary, focus, commitments, link)


def compose_chat(
    config: Config, packets: list[Packet], as_of: date
) -> tuple[list[ChatMessage], list[str]]:
    """One message per manager and configured service; notes for managers with none."""
    base_url = safe_url(config.output.base_url.rstrip("/")) if config.output.base_url else None
    teams: dict[str, tuple[Person, list[Packet]]] = {}
    for packet in packets:
        if packet.manager is not None:
            teams.setdefault(packet.manager.email, (packet.manager, []))[1].append(packet)
    messages, notes = [], []
    for email, (manager, team) in sorted(teams.items()):
        chat = config.chat_for(email)
        if chat is None:
            continue
        lines = [_lines(p, base_url) for p in team]
        title = f"Pipeline review prep · week of {short_date(as_of)} · {manager.name}'s team"
        if chat.slack is not None:
            messages.append(ChatMessage("slack", email, slack_blocks(title, lines, base_url)))
        if chat.teams is not None:
            messages.append(ChatMessage("teams", email, teams_card(title, lines, base_url)))
    if not messages and config.has_chat:
        notes.append("no team with a chat webhook has reps in this review")
    return messages, notes


def slack_blocks(title: str, reps: list[RepLines], base_url: str | None) -> dict[str, Any]:
    """A Block Kit message with a plain-text fallback."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:SLACK_MAX_HEADER]}},
    ]
    if base_url:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"<{base_url}/index.html|Open the prep sheets>"}
                ],
            }
        )
    for rep in reps[:MAX_REPS]:
        name = slack_text(rep.name)
        if rep.link:
            name = f"<{rep.link}|{name}>"
        text = [f"*{name}* · {slack_text(rep.summary)}"]
        text += [f"• {slack_text(line)}" for line in rep.focus]
        if rep.commitments:
            text.append("_Open commitments:_ " + "; ".join(slack_text(c) for c in rep.commitments))
        body = "\n".join(text)
        if len(body) > SLACK_MAX_SECTION:
            body = body[: SLACK_MAX_SECTION - 1] + "…"
        # verbatim: Slack must not turn bare URLs, #channels or @names in CRM text into links
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": body, "verbatim": True}}
        )
    if len(reps) > MAX_REPS:
        more = f"…and {len(reps) - MAX_REPS} more reps: see the prep sheets."
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": more}})
    blocks.append({"type": "divider"})
    # The fallback (notifications, old clients) is mrkdwn too: escaped like the blocks.
    fallback = (
        slack_text(title)
        + "\n"
        + "\n".join(f"{slack_text(r.name)}: {slack_text(r.summary)}" for r in reps)
    )
    return {"text": fallback[:SLACK_MAX_SECTION], "blocks": blocks[:SLACK_MAX_BLOCKS]}


def teams_card(title: str, reps: list[RepLines], base_url: str | None) -> dict[str, Any]:
    """An Adaptive Card 1.4 in the message envelope a Teams Workflows webhook takes, under
    TEAMS_MAX_BYTES: when the reps do not all fit, the last ones become a count."""
    shown = min(len(reps), MAX_REPS)
    while True:
        message = _teams_card(title, reps, shown, base_url)
        size = len(json.dumps(message, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        if size <= TEAMS_MAX_BYTES or shown == 0:
            return message
        shown = max(0, shown - max(1, shown // 8))


def _teams_card(
    title: str, reps: list[RepLines], shown: int, base_url: str | None
) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": teams_text(title),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        }
    ]
    for rep in reps[:shown]:
        body.append(
            {
                "type": "TextBlock",
                "text": f"**{teams_text(rep.name)}** · {teams_text(rep.summary)}",
                "wrap": True,
                "spacing": "Medium",
            }
        )
        for line in rep.focus:
            body.append(
                {
                    "type": "TextBlock",
                    "text": f"- {teams_text(line)}",
                    "wrap": True,
                    "spacing": "None",
                }
            )
        if rep.commitments:
            text = "Open commitments: " + "; ".join(teams_text(c) for c in rep.commitments)
            body.append(
                {
                    "type": "TextBlock",
                    "text": text,
                    "wrap": True,
                    "isSubtle": True,
                    "spacing": "Small",
                }
            )
    if len(reps) > shown:
        body.append(
            {
                "type": "TextBlock",
                "text": f"…and {len(reps) - shown} more reps: see the prep sheets.",
                "wrap": True,
            }
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if base_url:
        card["actions"] = [
            {
                "type": "Action.OpenUrl",
                "title": "Open the prep sheets",
                "url": f"{base_url}/index.html",
            }
        ]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def webhook_urls(config: Config, managers: list[str]) -> dict[tuple[str, str], str]:
    """(kind, manager email) -> webhook URL, for every manager whose team posts to chat."""
    out = {}
    for email in managers:
        chat = config.chat_for(email)
        if chat is None:
            continue
        for kind in KINDS:
            secret = getattr(chat, kind)
            if secret is not None:
                out[(kind, email)] = secret.get_secret_value()
    return out
