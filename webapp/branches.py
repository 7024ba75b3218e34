"""Versions of a message (its siblings in the tree) and moving the shown branch among them.

Editing a user message or regenerating a reply adds a sibling under the same parent; the
conversation's current leaf says which branch is shown and replayed. Nothing else is
stored: the branch shown under a version is the one reached by following the most
recently created child at each step (the highest id, as ids only grow).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import lazyload

from .extensions import db
from .models import Conversation, Message


@dataclass(frozen=True)
class Versions:
    """Where a message stands among its siblings: version `number` of `count`."""

    number: int
    count: int
    previous: Message | None
    next: Message | None


class MessageTree:
    """A conversation's messages grouped by parent, built once per page render."""

    def __init__(self, conversation: Conversation) -> None:
        self.children: dict[int | None, list[Message]] = defaultdict(list)
        for message in sorted(conversation.messages, key=lambda m: m.id):
            self.children[message.parent_id].append(message)

    def versions(self, message: Message) -> Versions | None:
        """The message's place among its siblings, or None when it has no other version."""
        return _place_among(self.children[message.parent_id], message)

    def newest_leaf_under(self, message: Message) -> Message:
        """The deepest descendant reached through the most recent child at each step."""
        while self.children.get(message.id):
            message = self.children[message.id][-1]
        return message


def versions_of(message: Message) -> Versions | None:
    """A single message's versions, with one query for its siblings (no whole tree)."""
    same_parent = (Message.parent_id.is_(None) if message.parent_id is None
                   else Message.parent_id == message.parent_id)
    siblings = list(db.session.scalars(select(Message).where(
        Message.conversation_id == message.conversation_id, same_parent
    ).order_by(Message.id).options(lazyload(Message.attachments))))
    return _place_among(siblings, message)


def _place_among(siblings: list[Message], message: Message) -> Versions | None:
    if len(siblings) < 2:
        return None
    index = [sibling.id for sibling in siblings].index(message.id)
    return Versions(number=index + 1, count=len(siblings),
                    previous=siblings[index - 1] if index > 0 else None,
                    next=siblings[index + 1] if index + 1 < len(siblings) else None)


def show_branch_of(conversation: Conversation, message: Message) -> None:
    """Make the branch through `message` the shown one (not committed).

    A message already on the shown branch leaves it as it is; otherwise the current leaf
    moves to the newest leaf under the message.
    """
    if any(shown.id == message.id for shown in conversation.path()):
        return
    conversation.current_leaf_id = MessageTree(conversation).newest_leaf_under(message).id
