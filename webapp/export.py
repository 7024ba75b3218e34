"""A conversation as files people can keep: Markdown text, or JSON (format regolo-chat/1).

Both hold the shown branch (root to current leaf). The system prompt is kept apart from
the messages, as the conversation's setting it is.
"""

from __future__ import annotations

from datetime import datetime, timezone

from werkzeug.utils import secure_filename

from . import tree
from .models import Conversation, Message, Status

FORMAT = "regolo-chat/1"
ROLE_HEADINGS = {"user": "You", "assistant": "Assistant"}


def timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with its offset, e.g. 2026-01-31T09:15:02.123456+00:00."""
    return moment.replace(tzinfo=timezone.utc).isoformat() if moment else None


def usage(message: Message) -> dict | None:
    """The token usage the upstream reported for a reply, or None."""
    if message.total_tokens is None:
        return None
    return {"prompt_tokens": message.prompt_tokens,
            "completion_tokens": message.completion_tokens,
            "total_tokens": message.total_tokens}


def writer(message: Message) -> str | None:
    """The model that wrote a reply: the one the server named, else the one asked for."""
    return message.answered_model or message.model


def message_record(message: Message) -> dict:
    """One message as exported: role, text, model, status, time and usage."""
    return {"role": message.role, "content": message.content, "model": writer(message),
            "status": message.status, "created_at": timestamp(message.created_at),
            "usage": usage(message)}


def as_json(conversation: Conversation) -> dict:
    """The conversation as a JSON-ready dict (documented in the README)."""
    shown = tree.shown_branch(conversation)
    return {"format": FORMAT, "id": conversation.public_id, "title": conversation.title,
            "model": conversation.model, "created_at": timestamp(conversation.created_at),
            "updated_at": timestamp(conversation.updated_at),
            "system_prompt": shown.system_prompt or None,
            "messages": [message_record(message) for message in shown.turns]}


def as_markdown(conversation: Conversation) -> str:
    """The conversation as a Markdown document: a heading per message, text as written."""
    shown = tree.shown_branch(conversation)
    parts = [f"# {conversation.title}",
             f"Model: {conversation.model} · Started {conversation.created_at:%Y-%m-%d %H:%M} UTC"]
    if shown.system_prompt:
        parts += ["## System prompt", shown.system_prompt]
    for message in shown.turns:
        heading = ROLE_HEADINGS.get(message.role, message.role)
        if message.role == "assistant" and writer(message):
            heading += f" ({writer(message)})"
        parts += [f"## {heading}", message.content or "_(no text)_"]
        if message.status != Status.COMPLETE:
            parts.append(f"_Status: {message.status}_")
    return "\n\n".join(parts) + "\n"


def filename(conversation: Conversation, extension: str) -> str:
    """A safe download name made from the title, e.g. Trip_plans.md."""
    stem = secure_filename(conversation.title)[:60].strip("._-") or "conversation"
    return f"{stem}.{extension}"
