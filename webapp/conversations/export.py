"""A conversation as files people can keep: Markdown text, or JSON (format regolo-chat/2).

The Markdown holds the shown branch (root to current leaf). The JSON holds the whole tree,
every version with its reasoning, usage and images, and which leaf is shown, so that
importing it gives the same conversation back (webapp/imports/own.py reads it, and the
earlier regolo-chat/1, which held the shown branch only). Both keep the system prompt
apart from the messages, as the conversation's setting it is.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import selectinload, undefer
from werkzeug.utils import secure_filename

from ..extensions import db
from . import tree
from .models import Conversation, Document, Message, Status
from .text import fenced

FORMAT = "regolo-chat/2"
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


def image_record(attachment) -> dict:
    """One image of a message, its bytes in base64."""
    return {"content_type": attachment.content_type, "width": attachment.width,
            "height": attachment.height, "data": base64.b64encode(attachment.data).decode()}


def document_record(document, with_text: bool = True) -> dict:
    """One document of a message: name, kind, size, characters, and its text."""
    record = {"name": document.name, "kind": document.kind,
              "byte_size": document.byte_size, "chars": document.chars}
    if with_text:
        record["text"] = document.text
    return record


def message_record(message: Message) -> dict:
    """One message as a share snapshot keeps it: role, text, the model that wrote it,
    status, time, usage."""
    return {"role": message.role, "content": message.content, "model": writer(message),
            "status": message.status, "created_at": timestamp(message.created_at),
            "usage": usage(message)}


def tree_record(message: Message, number: int, parent: int | None) -> dict:
    """One message as exported: its place in the tree (its `number` in the file and its
    `parent`'s), then message_record() with its reasoning, finish reason, error, images
    and documents."""
    return {"number": number, "parent": parent, **message_record(message),
            "reasoning": message.reasoning or None, "finish_reason": message.finish_reason,
            "error": message.error,
            "images": [image_record(attachment) for attachment in message.attachments],
            "documents": [document_record(document) for document in message.documents]}


def as_json(conversation: Conversation) -> dict:
    """The conversation as a JSON-ready dict (documented in the README): every message,
    parents before children, and the shown leaf."""
    messages = db.session.scalars(select(Message).where(
        Message.conversation_id == conversation.id).order_by(Message.id).options(
        selectinload(Message.documents).options(undefer(Document.text)))).all()
    system = next((message for message in messages
                   if message.parent_id is None and message.role == "system"), None)
    turns = [message for message in messages if message is not system]
    numbers = {message.id: number for number, message in enumerate(turns, 1)}
    return {"format": FORMAT, "id": conversation.public_id, "title": conversation.title,
            "model": conversation.model, "params": conversation.params,
            "created_at": timestamp(conversation.created_at),
            "updated_at": timestamp(conversation.updated_at),
            "system_prompt": system.content if system is not None else None,
            "shown": numbers.get(conversation.current_leaf_id),
            "messages": [tree_record(message, numbers[message.id],
                                     numbers.get(message.parent_id)) for message in turns]}


def as_markdown(conversation: Conversation) -> str:
    """The conversation as a Markdown document: a heading per message, text as written,
    then the text of each document attached, fenced."""
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
        for document in message.documents:
            parts += [f"Attached: **{document.name}**", fenced(document.text)]
        if message.status != Status.COMPLETE:
            parts.append(f"_Status: {message.status}_")
    return "\n\n".join(parts) + "\n"


def filename(conversation: Conversation, extension: str) -> str:
    """A safe download name made from the title, e.g. Trip_plans.md."""
    stem = secure_filename(conversation.title)[:60].strip("._-") or "conversation"
    return f"{stem}.{extension}"
