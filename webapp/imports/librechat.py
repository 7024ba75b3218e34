"""LibreChat's conversation export: `messages` (flat by parentMessageId, or nested under
`children`) or `messagesTree`, with the conversation's options (model, promptPrefix).

LibreChat names no shown message: the newest branch is shown. The "think" parts of a
newer message become its reasoning.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..conversations.models import Status
from .common import Imported, Skipped, Turn, from_iso, parents_first, text

NAME = "LibreChat"
NO_PARENT = "00000000-0000-0000-0000-000000000000"


def recognises(raw: dict) -> bool:
    """Whether the item looks like a LibreChat conversation export."""
    return ("messages" in raw or "messagesTree" in raw) and (
        "conversationId" in raw or "endpoint" in raw or "recursive" in raw)


def parse(raw: dict, find_image=None) -> Imported:
    """One exported conversation."""
    options = raw.get("options") if isinstance(raw.get("options"), dict) else {}
    listed = raw.get("messagesTree", raw.get("messages"))
    if not isinstance(listed, list) or not listed:
        raise Skipped("It has no messages.")
    default_model = text(options.get("model")) or None
    turns = [_turn(item, default_model) for item in _flattened(listed)]
    turns.sort(key=lambda turn: turn.created_at or from_iso("1970-01-01"))
    turns = parents_first(turns)
    return Imported(source=NAME, source_id=text(raw.get("conversationId")) or None,
                    title=text(raw.get("title")) or text(options.get("title")),
                    turns=turns, system_prompt=text(options.get("promptPrefix")),
                    created_at=min((t.created_at for t in turns if t.created_at), default=None),
                    updated_at=max((t.created_at for t in turns if t.created_at), default=None))


def _flattened(items: list, parent: str | None = None) -> Iterator[dict]:
    """Every message, the nested ones after their parent (their parent set from it)."""
    for item in items:
        if not isinstance(item, dict):
            continue
        if parent is not None and not item.get("parentMessageId"):
            item = {**item, "parentMessageId": parent}
        yield item
        if isinstance(item.get("children"), list):
            yield from _flattened(item["children"], text(item.get("messageId")))


def _turn(item: dict, default_model: str | None) -> Turn:
    role = "user" if item.get("isCreatedByUser") else "assistant"
    content, reasoning = text(item.get("text")), ""
    if isinstance(item.get("content"), list):
        parts = [part for part in item["content"] if isinstance(part, dict)]
        content = "\n\n".join(text(part.get("text")) for part in parts
                              if part.get("type") == "text") or content
        reasoning = "\n\n".join(text(part.get("think")) for part in parts
                                if part.get("type") == "think")
    parent = item.get("parentMessageId")
    return Turn(key=text(item.get("messageId")), parent=None if parent == NO_PARENT else parent,
                role=role, content=content, reasoning=reasoning,
                model=(text(item.get("model")) or default_model) if role == "assistant"
                else None,
                created_at=from_iso(item.get("createdAt")),
                status=Status.INTERRUPTED if item.get("unfinished") else Status.COMPLETE,
                finish_reason=text(item.get("finish_reason")) or None)
