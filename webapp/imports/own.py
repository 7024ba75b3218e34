"""This app's own JSON export: regolo-chat/2 (the whole tree) and regolo-chat/1 (the shown
branch only), both described in the README's "Export format"."""

from __future__ import annotations

import base64
import binascii

from ..conversations.models import Status
from .common import (Image, Imported, ImportedDocument, Skipped, Turn, from_iso,
                     parents_first, text)

NAME = "Regolo Chat"
FORMATS = ("regolo-chat/1", "regolo-chat/2")
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def recognises(raw: dict) -> bool:
    """Whether the item is one of this app's exports (of a version it reads)."""
    return text(raw.get("format")).startswith("regolo-chat/")


def parse(raw: dict, find_image=None) -> Imported:
    """One exported conversation."""
    if raw.get("format") not in FORMATS:
        raise Skipped(f"It is in format {text(raw.get('format'))!r}, newer than this app "
                      "reads (regolo-chat/1 or /2).")
    messages = raw.get("messages")
    if not isinstance(messages, list):
        raise Skipped("It has no list of messages.")
    linear = raw["format"] == "regolo-chat/1"
    turns = [_turn(item, number, linear) for number, item in enumerate(messages, 1)
             if isinstance(item, dict) and item.get("role") in ("user", "assistant")]
    params = raw.get("params")
    return Imported(source=NAME, source_id=text(raw.get("id")) or None,
                    title=text(raw.get("title")), turns=parents_first(turns),
                    current=None if linear else raw.get("shown"),
                    system_prompt=text(raw.get("system_prompt")),
                    model=text(raw.get("model")) or None,
                    params=params if isinstance(params, dict) else None,
                    created_at=from_iso(raw.get("created_at")),
                    updated_at=from_iso(raw.get("updated_at")))


def _turn(item: dict, position: int, linear: bool) -> Turn:
    key, parent = (position, position - 1 or None) if linear else (item.get("number"),
                                                                    item.get("parent"))
    usage = item.get("usage") if isinstance(item.get("usage"), dict) else None
    status = item.get("status") if item.get("status") in set(Status) else Status.COMPLETE
    if status in (Status.PENDING, Status.STREAMING):
        status = Status.INTERRUPTED  # it was being written when exported
    return Turn(key=key, parent=parent, role=item["role"], content=text(item.get("content")),
                reasoning=text(item.get("reasoning")), model=text(item.get("model")) or None,
                created_at=from_iso(item.get("created_at")), status=status,
                finish_reason=text(item.get("finish_reason")) or None,
                error=text(item.get("error")) or None,
                usage={key: usage.get(key) for key in USAGE_KEYS
                       if isinstance(usage.get(key), int)} if usage else None,
                images=[_image(image) for image in item.get("images") or []
                        if isinstance(image, dict)],
                documents=[_document(document) for document in item.get("documents") or []
                           if isinstance(document, dict) and text(document.get("text"))]
                if item["role"] == "user" else [])


def _document(document: dict) -> ImportedDocument:
    """A document as exported; a size that is not a whole number a column holds is 0."""
    size = document.get("byte_size")
    return ImportedDocument(name=text(document.get("name")) or "document",
                            text=text(document.get("text")),
                            kind="pdf" if document.get("kind") == "pdf" else "text",
                            byte_size=size if type(size) is int and 0 <= size < 2**31 else 0)


def _image(image: dict) -> Image:
    try:
        return Image(base64.b64decode(text(image.get("data")), validate=True))
    except (binascii.Error, ValueError):
        return Image(None, "an image that could not be read")
