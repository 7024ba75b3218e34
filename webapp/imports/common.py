"""What every export format is read into: a conversation as a tree of turns, format-free.

A parser (chatgpt.py, openwebui.py, librechat.py, own.py) turns one conversation of its
format into an Imported; save.py writes it. Times are naive UTC, as the app stores them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..conversations.models import Status
from ..conversations.text import fenced  # noqa: F401  (for the parsers)


class Skipped(Exception):
    """One conversation cannot be imported; the message says why, as a sentence."""


@dataclass
class Image:
    """An image of a message: its bytes, or None with the name of one the export lacked."""

    data: bytes | None
    name: str = ""


@dataclass
class ImportedDocument:
    """A document of a message: its name and text, and its kind and size as exported."""

    name: str
    text: str
    kind: str = "text"
    byte_size: int = 0


@dataclass
class Turn:
    """One message of the tree: `parent` is its parent's key (None for a first message)."""

    key: Hashable
    parent: Hashable | None
    role: str  # "user" or "assistant"
    content: str = ""
    reasoning: str = ""
    model: str | None = None
    created_at: datetime | None = None
    status: str = Status.COMPLETE
    finish_reason: str | None = None
    error: str | None = None
    usage: dict | None = None
    images: list[Image] = field(default_factory=list)
    documents: list[ImportedDocument] = field(default_factory=list)


@dataclass
class Imported:
    """One conversation read from an export, ready to save."""

    source: str  # the format's name, shown on the result page
    source_id: str | None  # the export's own id of the conversation, if it has one
    title: str
    turns: list[Turn]
    current: Hashable | None = None  # the key of the shown leaf, None for the newest
    system_prompt: str = ""
    model: str | None = None  # None: the app's default model
    params: dict | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def from_epoch(value) -> datetime | None:
    """A Unix time in seconds (or milliseconds, when it is that large) as naive UTC."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value > 1e11:
        value = value / 1000
    try:
        return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def from_iso(value) -> datetime | None:
    """An ISO 8601 time (a trailing Z allowed) as naive UTC."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def text(value) -> str:
    """A string field, or an empty string when it is missing or not a string."""
    return value if isinstance(value, str) else ""


def keys_parents_first(parents: dict[Hashable, Hashable | None],
                       sort_key: Callable[[Hashable], float] | None = None) -> list[Hashable]:
    """The keys of a tree given as key -> parent key, each after its parent, siblings in
    the order given (or by sort_key). A key whose parent is unknown (or itself) is a root;
    keys in a loop of parents are left out."""
    children: dict[Hashable | None, list[Hashable]] = defaultdict(list)
    for key, parent in parents.items():
        children[parent if parent in parents and parent != key else None].append(key)
    ordered: list[Hashable] = []
    pending = list(reversed(children[None]))
    while pending:
        key = pending.pop()
        ordered.append(key)
        siblings = children.get(key, [])
        pending.extend(reversed(sorted(siblings, key=sort_key) if sort_key else siblings))
    return ordered


def parents_first(turns: list[Turn]) -> list[Turn]:
    """The turns ordered so that each comes after its parent, siblings in the order given.

    A turn whose parent is not among the turns becomes a first message; turns in a loop
    of parents, without a key or with the key of an earlier one (a corrupt export) are
    left out.
    """
    by_key: dict[Hashable, Turn] = {}
    for turn in turns:
        if turn.key is not None:
            by_key.setdefault(turn.key, turn)
    ordered = [by_key[key] for key in keys_parents_first(
        {key: turn.parent for key, turn in by_key.items()})]
    for turn in ordered:
        if turn.parent not in by_key or turn.parent == turn.key:
            turn.parent = None
    return ordered


def newest_leaf(turns: list[Turn]) -> Hashable | None:
    """The leaf reached by following the last child at each step (the app's own rule)."""
    last_child: dict[Hashable | None, Hashable] = {}
    for turn in turns:
        last_child[turn.parent] = turn.key
    key = last_child.get(None)
    while key in last_child:
        key = last_child[key]
    return key
