"""Snapshots: a conversation frozen into JSON for a share link, and read back for pages.

A snapshot holds the title, the model, the system prompt only if the owner chose to share
it, and the shown branch's finished messages with their sanitized HTML and their
documents' names and sizes (their text too only if the owner chose to share it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..conversations import tree
from ..conversations.export import document_record, message_record
from ..conversations.models import Conversation, Message
from ..conversations.rendering import message_html

DESCRIPTION_CHARS = 200
DEFAULT_DESCRIPTION = "A conversation shared from Regolo Chat."


@dataclass(frozen=True)
class SharedMessage:
    """A message of a snapshot, shaped for templates and message_html()."""

    role: str
    content: str
    content_html: str
    model: str | None
    id: int
    documents: list[dict]


def shareable(message: Message) -> bool:
    """Replies still being written, or that ended without text, are left out."""
    return message.role != "assistant" or (not message.is_active and bool(message.content))


def take(conversation: Conversation, include_system_prompt: bool,
         include_documents: bool = False) -> dict:
    """The snapshot of a conversation as it is now."""
    shown = tree.shown_branch(conversation)
    return {
        "title": conversation.title,
        "model": conversation.model,
        "system_prompt": (shown.system_prompt or None) if include_system_prompt else None,
        "messages": [{"id": message.id, **message_record(message),
                      "html": str(message_html(message)),
                      "documents": [document_record(document, include_documents)
                                    for document in message.documents]}
                     for message in shown.turns if shareable(message)],
    }


def messages(snapshot: dict) -> list[SharedMessage]:
    """The snapshot's messages, in order (a snapshot taken before documents has none)."""
    return [SharedMessage(role=item["role"], content=item["content"],
                          content_html=item["html"], model=item["model"], id=item["id"],
                          documents=item.get("documents", []))
            for item in snapshot["messages"]]


def document(snapshot: dict, message_id: int, index: int) -> dict | None:
    """A shared document whose text the snapshot holds, or None."""
    for item in snapshot["messages"]:
        if item["id"] == message_id:
            documents = item.get("documents", [])
            if 0 <= index < len(documents) and "text" in documents[index]:
                return documents[index]
    return None


def description(snapshot: dict) -> str:
    """A short summary for link previews: the first user message, whitespace folded."""
    first = next((m["content"] for m in snapshot["messages"] if m["role"] == "user"), "")
    text = " ".join(first.split())
    if len(text) > DESCRIPTION_CHARS:
        text = text[: DESCRIPTION_CHARS - 1].rstrip() + "…"
    return text or DEFAULT_DESCRIPTION
