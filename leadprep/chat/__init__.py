"""Chat delivery: a compact prep per manager for Slack and Microsoft Teams
(:mod:`~leadprep.chat.messages`), posted to each team's webhook (:mod:`~leadprep.chat.webhook`)
through the same outbox as email."""

from leadprep.chat.channel import ChatChannel, send_chat
from leadprep.chat.messages import KINDS, ChatMessage, compose_chat, webhook_urls
from leadprep.chat.webhook import WebhookTransport

__all__ = [
    "KINDS",
    "ChatChannel",
    "ChatMessage",
    "WebhookTransport",
    "compose_chat",
    "send_chat",
    "webhook_urls",
]
