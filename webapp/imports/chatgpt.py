"""ChatGPT's "Export data": one conversation's `mapping` tree read into turns.

Every node's parent comes from its `parent` field (newer exports leave `children` lists
incomplete). Nodes that are not messages to the person are passed through: hidden ones
(is_visually_hidden_from_conversation), memory and custom instructions (these become the
system prompt), messages to and from tools such as browsing. Consecutive assistant pieces
of one turn make one reply: thoughts and reasoning recaps its reasoning, code for the
Python tool and its execution output fenced blocks in its text. Each reply keeps its own
model (metadata.model_slug, else the conversation's default_model_slug).
"""

from __future__ import annotations

from collections.abc import Callable

from ..conversations.models import Status
from .common import (Image, Imported, Skipped, Turn, fenced, from_epoch, keys_parents_first,
                     parents_first, text)

NAME = "ChatGPT"
# Content that is no message of the conversation even when not marked hidden.
PASSED_THROUGH = {"model_editable_context", "tether_browsing_display", "tether_quote",
                  "system_error", "sonic_webpage", "super_widget"}
CODE_TOOLS = {"python", "all"}
FINISH_REASONS = {"stop": "stop", "max_tokens": "length", "interrupted": "stop"}

ImageLookup = Callable[[str], Image]


def recognises(raw: dict) -> bool:
    """Whether the item looks like one of ChatGPT's conversations."""
    return "mapping" in raw or ("current_node" in raw and "conversation_id" in raw) or (
        "default_model_slug" in raw and "conversation_id" in raw)


def parse(raw: dict, find_image: ImageLookup) -> Imported:
    """One conversation of conversations.json (or conversations-NNN.json)."""
    mapping = raw.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise Skipped("It has no messages (the export gives it no message tree).")
    nodes = {key: node for key, node in mapping.items() if isinstance(node, dict)}
    reader = _Reader(nodes, text(raw.get("default_model_slug")) or None, find_image)
    turns = parents_first(list(reader.turns.values()))
    current = reader.anchor.get(raw.get("current_node"))
    return Imported(source=NAME, source_id=text(raw.get("conversation_id") or raw.get("id")),
                    title=text(raw.get("title")), turns=turns, current=current,
                    system_prompt=reader.system_prompt,
                    created_at=from_epoch(raw.get("create_time")),
                    updated_at=from_epoch(raw.get("update_time")))


class _Reader:
    """Walks the nodes parents first, folding each into the turn it belongs to."""

    def __init__(self, nodes: dict[str, dict], default_model: str | None,
                 find_image: ImageLookup) -> None:
        self.nodes = nodes
        self.default_model = default_model
        self.find_image = find_image
        self.turns: dict[str, Turn] = {}
        self.anchor: dict[str, str | None] = {}  # node -> the turn its children go under
        self.continued: set[str] = set()  # nodes whose reply a child piece continued
        self.system_prompt = ""
        parents = {key: node.get("parent") for key, node in nodes.items()}
        for key in keys_parents_first(parents, sort_key=self._created):
            self._read(key)

    def _created(self, key: str) -> float:
        message = self.nodes[key].get("message")
        moment = message.get("create_time") if isinstance(message, dict) else None
        return moment if isinstance(moment, int | float) else 0.0

    def _read(self, key: str) -> None:
        parent = self.nodes[key].get("parent")
        above = self.anchor.get(parent) if parent in self.nodes else None
        self.anchor[key] = above
        message = self.nodes[key].get("message")
        if not isinstance(message, dict):
            return
        content = message.get("content") if isinstance(message.get("content"), dict) else {}
        kind = text(content.get("content_type"))
        metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
        role = text((message.get("author") or {}).get("role"))
        if kind == "user_editable_context":
            self.system_prompt = self.system_prompt or _custom_instructions(content)
            return
        if metadata.get("is_visually_hidden_from_conversation") or kind in PASSED_THROUGH:
            return
        recipient = message.get("recipient") or "all"
        piece = _Piece.of(kind, content, role, recipient, self.find_image)
        if piece is None or piece.empty:
            return
        model = text(metadata.get("model_slug")) or self.default_model
        moment = from_epoch(message.get("create_time"))
        if role == "user":
            self.turns[key] = Turn(key, above, "user", piece.text, created_at=moment,
                                   images=piece.images)
            self.anchor[key] = key
            return
        reply = self.turns.get(above) if above is not None else None
        if reply is None or reply.role != "assistant" or parent in self.continued:
            reply = self.turns[key] = Turn(key, above, "assistant", created_at=moment,
                                           model=model if role == "assistant" else None)
        else:  # a later piece of the same reply (a sibling piece starts a version)
            self.continued.add(parent)
        piece.add_to(reply)
        reply.model = reply.model or (model if role == "assistant" else None)
        if message.get("status") == "in_progress":
            reply.status = Status.INTERRUPTED
        finish = (metadata.get("finish_details") or {}).get("type")
        reply.finish_reason = FINISH_REASONS.get(finish, reply.finish_reason)
        self.anchor[key] = reply.key


class _Piece:
    """What one node adds to its turn: text, reasoning, images."""

    def __init__(self, text: str = "", reasoning: str = "",
                 images: list[Image] | None = None) -> None:
        self.text, self.reasoning, self.images = text, reasoning, images or []

    @property
    def empty(self) -> bool:
        return not (self.text.strip() or self.reasoning.strip() or self.images)

    def add_to(self, turn: Turn) -> None:
        turn.content = "\n\n".join(part for part in (turn.content, self.text) if part)
        turn.reasoning = "\n\n".join(part for part in (turn.reasoning, self.reasoning)
                                     if part)
        if turn.role == "user":
            turn.images += self.images
        elif self.images:  # pictures a reply made are not kept: say so in its text
            turn.content += "\n\n_(an image of this reply was not imported)_"

    @classmethod
    def of(cls, kind: str, content: dict, role: str, recipient: str,
           find_image: ImageLookup) -> _Piece | None:
        """The piece of a node, or None when it is no part of the conversation."""
        if kind == "code":
            if recipient not in CODE_TOOLS:
                return None  # a call to a tool such as browsing
            language = text(content.get("language"))
            return cls(fenced(text(content.get("text")),
                              "" if language == "unknown" else language))
        if recipient != "all" or role not in ("user", "assistant", "tool"):
            return None
        if kind == "execution_output":
            return cls(fenced(text(content.get("text"))))
        if role == "tool":
            return None
        if kind == "thoughts":
            thoughts = content.get("thoughts") if isinstance(content.get("thoughts"),
                                                               list) else []
            return cls(reasoning="\n\n".join(
                "\n\n".join(part for part in (text(thought.get("summary")),
                                              text(thought.get("content"))) if part)
                for thought in thoughts if isinstance(thought, dict)))
        if kind == "reasoning_recap":
            return cls(reasoning=text(content.get("content")))
        if kind in ("text", "multimodal_text"):
            return cls._parts(content.get("parts"), find_image)
        return cls(text(content.get("text")))

    @classmethod
    def _parts(cls, parts, find_image: ImageLookup) -> _Piece:
        piece = cls()
        texts: list[str] = []
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("content_type") == "image_asset_pointer":
                piece.images.append(find_image(text(part.get("asset_pointer"))))
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])  # audio transcriptions and the like
        piece.text = "\n\n".join(part for part in texts if part.strip())
        return piece


def _custom_instructions(content: dict) -> str:
    """The custom instructions of a user_editable_context node, as one system prompt."""
    return "\n\n".join(part for part in (text(content.get("user_profile")),
                                         text(content.get("user_instructions"))) if part)
