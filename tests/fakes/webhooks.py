"""Fake Slack incoming-webhook and Microsoft Teams Workflows endpoints on 127.0.0.1.

Paths starting /slack/ check a Block Kit message (``text``, at most 50 typed blocks, section
text at most 3,000 characters, a plain-text header of at most 150) and answer 200 "ok"; a POST
with no message answers 400 "invalid_payload" as Slack does (doctor --online relies on it), an
unknown path 404 "no_service". Paths starting /teams/ check an Adaptive Card message envelope
and answer 202, or 413 past 28 KB as Teams does. ``fail`` queues answers to give first (429 with Retry-After, 5xx)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.loopback import LoopbackServer, Response

TEAMS_MAX_BYTES = 28 * 1024  # what Teams webhooks take; larger messages are refused


class FakeWebhooks(LoopbackServer):
    def __init__(self, valid_paths: set[str] | None = None) -> None:
        super().__init__()
        self.valid_paths = valid_paths  # None: every path is a live webhook
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.fail: list[tuple[int, dict[str, str]]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def respond(self, method: str, target: str, headers: Any, raw: bytes) -> Response:
        self.counts[target.split("/")[1] if "/" in target else target] += 1
        if method != "POST":
            return 405, b"method not allowed", {}, "text/plain"
        if self.valid_paths is not None and target not in self.valid_paths:
            return 404, b"no_service", {}, "text/plain"
        if self.fail:
            status, extra = self.fail.pop(0)
            return status, b"slow down" if status == 429 else b"unavailable", extra, "text/plain"
        if target.startswith("/teams/") and len(raw) > TEAMS_MAX_BYTES:
            return 413, b"Request Entity Too Large", {}, "text/plain"
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return 400, b"invalid_payload", {}, "text/plain"
        problem = slack_problem(body) if target.startswith("/slack/") else teams_problem(body)
        if problem:
            return 400, problem.encode(), {}, "text/plain"
        self.posts.append((target, body))
        if target.startswith("/slack/"):
            return 200, b"ok", {}, "text/plain"
        return 202, b"", {}, "text/plain"


def slack_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not body:
        return "invalid_payload"
    if not isinstance(body.get("text"), str) or not body["text"]:
        return "no_text"
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        kind = block.get("type")
        if kind not in {"header", "section", "context", "divider", "actions"}:
            return "invalid_blocks"
        if kind == "header" and (
            block["text"]["type"] != "plain_text" or len(block["text"]["text"]) > 150
        ):
            return "invalid_blocks"
        if kind == "section" and len(block["text"]["text"]) > 3000:
            return "invalid_blocks"
    return None


def teams_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("type") != "message":
        return "not a message"
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "no attachments"
    card = attachments[0]
    if card.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return "not an adaptive card"
    content = card.get("content") or {}
    if content.get("type") != "AdaptiveCard" or content.get("version") not in {
        "1.2",
        "1.3",
        "1.4",
        "1.5",
    }:
        return "bad card"
    if not all(isinstance(e, dict) and e.get("type") for e in content.get("body", [])):
        return "bad card body"
    return None
