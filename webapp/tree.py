"""A conversation's message tree: append, insert under any parent, move the shown leaf,
the shown branch in one query, versions of a message, and the branch's token totals.

Editing a user message or regenerating a reply adds a sibling under the same parent; the
conversation's current leaf says which branch is shown and replayed. Nothing else is
stored: the branch shown under a version is the one reached by following the most
recently created child at each step (the highest id, as ids only grow and a child is
always stored after its parent). Nothing here commits; callers do, once per request.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import CTE, bindparam, func, select

from .extensions import db
from .models import Conversation, Message, utcnow
from .rendering import render_markdown


def _branch_query() -> CTE:
    """The ids of the messages from the root down to the message `upto_id` (recursive)."""
    upward = (select(Message.id, Message.parent_id).where(Message.id == bindparam("upto_id"))
              .cte("branch", recursive=True))
    return upward.union_all(select(Message.id, Message.parent_id)
                            .join(upward, Message.id == upward.c.parent_id))


# Built once, run with {"upto_id": ...}; sorted by id its rows are in order.
BRANCH = _branch_query()


# --- Adding messages ----------------------------------------------------------------

def insert(conversation: Conversation, parent_id: int | None, role: str, content: str,
           **fields) -> Message:
    """Add a message under parent_id (None for a root), flushed so it has its id.

    The shown leaf does not move; user and system text is rendered once, here.
    """
    message = _added(conversation, role, content, parent_id=parent_id, **fields)
    db.session.flush()
    return message


def _added(conversation: Conversation, role: str, content: str, **fields) -> Message:
    """A new message added to the session, its user or system text rendered."""
    message = Message(conversation=conversation, role=role, content=content, **fields)
    if role in ("user", "system"):
        message.content_html = str(render_markdown(content))
    db.session.add(message)
    return message


def move_leaf(conversation: Conversation, message: Message) -> None:
    """Show the branch that ends at `message` (a leaf), and mark the conversation active."""
    conversation.current_leaf_id = message.id
    conversation.updated_at = utcnow()


def append(conversation: Conversation, role: str, content: str, **fields) -> Message:
    """Add a message under the shown leaf and make it the new leaf."""
    message = insert(conversation, conversation.current_leaf_id, role, content, **fields)
    move_leaf(conversation, message)
    return message


@dataclass(frozen=True)
class NewMessage:
    """A message to insert with others: `key` names it, `parent_key` its parent's key
    (None for a message under the insertion point)."""

    key: Hashable
    parent_key: Hashable | None
    role: str
    content: str
    fields: dict = field(default_factory=dict)


def insert_tree(conversation: Conversation, parent_id: int | None,
                items: Iterable[NewMessage]) -> dict[Hashable, Message]:
    """Insert a whole tree (or line) of messages under parent_id, parents before children.

    One flush writes them all (through Message.parent, so the database sees each parent
    before its children, and siblings in the order given, which is their versions' order).
    Returns the inserted messages by key; the shown leaf does not move (see move_leaf).
    """
    inserted: dict[Hashable, Message] = {}
    for item in items:
        parent = ({"parent_id": parent_id} if item.parent_key is None
                  else {"parent": inserted[item.parent_key]})
        inserted[item.key] = _added(conversation, item.role, item.content, **parent,
                                    **item.fields)
    db.session.flush()
    return inserted


# --- Reading the shown branch ----------------------------------------------------------

@dataclass(frozen=True)
class Versions:
    """Where a message stands among its siblings: version `number` of `count`, with the
    ids of the previous and next versions (None at either end)."""

    number: int
    count: int
    previous_id: int | None
    next_id: int | None


@dataclass(frozen=True)
class Branch:
    """The shown branch, root to leaf, with the versions of the messages that have some."""

    messages: list[Message]
    versions: dict[int, Versions]

    @property
    def system_prompt(self) -> str:
        """The text of the root system message, or an empty string."""
        root = self.messages[0] if self.messages else None
        return root.content if root is not None and root.role == "system" else ""

    @property
    def turns(self) -> list[Message]:
        """The branch without its root system message."""
        return [message for message in self.messages if message.role != "system"]

    @property
    def active(self) -> Message | None:
        """The reply on this branch still being generated, if any."""
        return next((message for message in self.messages if message.is_active), None)


_by_parent = {"partition_by": Message.parent_id}
_in_order = {"partition_by": Message.parent_id, "order_by": Message.id}
# Each message of conversation :conversation_id with its place among its siblings.
_SIBLINGS = (select(Message.id,
                    func.row_number().over(**_in_order).label("number"),
                    func.count().over(**_by_parent).label("count"),
                    func.lag(Message.id).over(**_in_order).label("previous_id"),
                    func.lead(Message.id).over(**_in_order).label("next_id"))
             .where(Message.conversation_id == bindparam("conversation_id"))
             .subquery("siblings"))
_VERSION_COLUMNS = (_SIBLINGS.c.number, _SIBLINGS.c.count, _SIBLINGS.c.previous_id,
                    _SIBLINGS.c.next_id)
_SHOWN_BRANCH = (select(Message, *_VERSION_COLUMNS)
                 .join(BRANCH, Message.id == BRANCH.c.id)
                 .join(_SIBLINGS, _SIBLINGS.c.id == Message.id)
                 .order_by(Message.id))
_VERSIONS_OF = select(*_VERSION_COLUMNS).where(_SIBLINGS.c.id == bindparam("message_id"))


def _versions(number: int, count: int, previous_id: int | None,
              next_id: int | None) -> Versions | None:
    return Versions(number, count, previous_id, next_id) if count > 1 else None


def shown_branch(conversation: Conversation) -> Branch:
    """The shown branch with every message's versions: one query (and one for images),
    whatever the size of the conversation."""
    if conversation.current_leaf_id is None:
        return Branch([], {})
    messages, versions = [], {}
    for message, *place in db.session.execute(_SHOWN_BRANCH, {
            "upto_id": conversation.current_leaf_id, "conversation_id": conversation.id}):
        messages.append(message)
        if (found := _versions(*place)) is not None:
            versions[message.id] = found
    return Branch(messages, versions)


def versions_of(message: Message) -> Versions | None:
    """One message's versions (for a fragment showing only it), in one query."""
    place = db.session.execute(_VERSIONS_OF, {"conversation_id": message.conversation_id,
                                              "message_id": message.id}).one()
    return _versions(*place)


USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
_BRANCH_USAGE = (select(func.count(), *(func.coalesce(func.sum(getattr(Message, key)), 0)
                                        for key in USAGE_KEYS))
                 .join(BRANCH, Message.id == BRANCH.c.id)
                 .where(Message.total_tokens.is_not(None)))


def usage(conversation: Conversation) -> dict[str, int] | None:
    """Tokens used by the shown branch's replies, where the upstream reported them.

    One aggregate query over the branch; no message is loaded.
    """
    if conversation.current_leaf_id is None:
        return None
    counted, *sums = db.session.execute(_BRANCH_USAGE,
                                        {"upto_id": conversation.current_leaf_id}).one()
    return dict(zip(USAGE_KEYS, sums)) if counted else None


def system_prompt(conversation: Conversation) -> str:
    """The conversation's system prompt (its root system message), or an empty string."""
    return db.session.scalar(select(Message.content).where(
        Message.conversation_id == conversation.id, Message.parent_id.is_(None),
        Message.role == "system").limit(1)) or ""


# --- Moving between branches --------------------------------------------------------------

_SHAPE = (select(Message.id, Message.parent_id, BRANCH.c.id.is_not(None))
          .outerjoin(BRANCH, BRANCH.c.id == Message.id)
          .where(Message.conversation_id == bindparam("conversation_id"))
          .order_by(Message.id))


def show_branch_of(conversation: Conversation, message: Message) -> None:
    """Make the branch through `message` the shown one.

    A message already on the shown branch leaves it as it is; otherwise the current leaf
    moves to the newest leaf under the message. One query of ids, no text.
    """
    children: dict[int | None, list[int]] = defaultdict(list)
    shown = False
    for message_id, parent_id, on_branch in db.session.execute(_SHAPE, {
            "upto_id": conversation.current_leaf_id, "conversation_id": conversation.id}):
        children[parent_id].append(message_id)
        shown = shown or (on_branch and message_id == message.id)
    if shown:
        return
    leaf_id = message.id
    while children.get(leaf_id):
        leaf_id = children[leaf_id][-1]
    conversation.current_leaf_id = leaf_id
