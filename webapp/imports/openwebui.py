"""Open WebUI's "Export chats": chat.history.messages, a tree by parentId, with currentId.

A reply's reasoning arrives inside its text as a <details type="reasoning"> block; it is
taken out into the reply's reasoning (or read from the reasoning items of the message's
`output` list, in newer exports, when the text has no such block). Other <details> blocks (tool calls, code run by the
interpreter) become fenced blocks. Each reply keeps its own model; images sent as data:
URLs are attached to their message.
"""

from __future__ import annotations

import base64
import binascii
import html
import re

from .common import Image, Imported, Skipped, Turn, fenced, from_epoch, parents_first, text

NAME = "Open WebUI"
_DETAILS = re.compile(r'<details\b(?P<attributes>[^>]*)>\s*(?:<summary>.*?</summary>)?'
                      r'(?P<body>.*?)</details>\s*', re.DOTALL)
_TYPE = re.compile(r'\btype="(?P<type>[^"]*)"')
_DATA_URL = re.compile(r"data:image/[\w.+-]+;base64,(?P<data>.*)", re.DOTALL)


def recognises(raw: dict) -> bool:
    """Whether the item looks like one of Open WebUI's exported chats."""
    return isinstance(raw.get("chat"), dict)


def parse(raw: dict, find_image=None) -> Imported:
    """One exported chat."""
    chat = raw["chat"]
    history = chat.get("history") if isinstance(chat.get("history"), dict) else {}
    messages = history.get("messages")
    if isinstance(messages, dict) and messages:
        items = [(key, item) for key, item in messages.items() if isinstance(item, dict)]
    elif isinstance(chat.get("messages"), list) and chat["messages"]:  # older: a line
        items = [(str(number), {**item, "parentId": str(number - 1) if number else None})
                 for number, item in enumerate(chat["messages"]) if isinstance(item, dict)]
    else:
        raise Skipped("It has no messages.")
    turns = [turn for key, item in items if (turn := _turn(key, item)) is not None]
    turns.sort(key=lambda turn: turn.created_at or from_epoch(0))
    params = chat.get("params") if isinstance(chat.get("params"), dict) else {}
    return Imported(source=NAME, source_id=text(raw.get("id")) or None,
                    title=text(raw.get("title")) or text(chat.get("title")),
                    turns=parents_first(turns), current=history.get("currentId"),
                    system_prompt=text(chat.get("system")) or text(params.get("system")),
                    created_at=from_epoch(raw.get("created_at")),
                    updated_at=from_epoch(raw.get("updated_at")))


def _turn(key: str, item: dict) -> Turn | None:
    role = item.get("role")
    if role not in ("user", "assistant"):
        return None
    content, reasoning = split_details(text(item.get("content")))
    reasoning = reasoning or _output_reasoning(item.get("output"))
    return Turn(key=key, parent=item.get("parentId"), role=role, content=content,
                reasoning=reasoning, model=text(item.get("model")) or None,
                created_at=from_epoch(item.get("timestamp")),
                images=[image for image in map(_image, item.get("files") or [])
                        if image is not None] if role == "user" else [])


def split_details(content: str) -> tuple[str, str]:
    """The text with its <details> blocks made plain, and the reasoning they held."""
    reasoning: list[str] = []

    def plain(match: re.Match) -> str:
        kind = _TYPE.search(match["attributes"])
        body = html.unescape(match["body"]).strip()
        if kind and kind["type"] == "reasoning":
            reasoning.append("\n".join(line.removeprefix(">").removeprefix(" ")
                                       for line in body.splitlines()))
            return ""
        return fenced(body) + "\n\n" if body else ""

    return _DETAILS.sub(plain, content).strip(), "\n\n".join(reasoning)


def _output_reasoning(output) -> str:
    """The reasoning items of a newer message's `output` list, when its text has none."""
    return "\n\n".join(
        text(part.get("text")) for entry in (output if isinstance(output, list) else [])
        if isinstance(entry, dict) and entry.get("type") == "reasoning"
        for part in (entry.get("content") if isinstance(entry.get("content"), list) else [])
        if isinstance(part, dict))


def _image(file) -> Image | None:
    if not isinstance(file, dict) or file.get("type") != "image":
        return None
    found = _DATA_URL.match(text(file.get("url")))
    if found is None:
        return Image(None, text(file.get("name")) or "an image")
    try:
        return Image(base64.b64decode(found["data"], validate=False))
    except (binascii.Error, ValueError):
        return Image(None, text(file.get("name")) or "an image")
