"""A conversation's message tree: append, insert under any parent, move the shown leaf,
the shown branch in one query (whole, or a page of it), versions of a message, and the
branch's token totals.

Editing a user message or regenerating a reply adds a sibling under the same parent; the
conversation's current leaf says which branch is shown and replayed. Nothing else is
stored: the branch shown under a version is the one reached by following the most
recently created child at each step (the highest id, as ids only grow and a child is
always stored after its parent). Nothing here commits; callers do, once per request.

Queries run in the session the conversation belongs to (a view's db.session, or a session
of the generation service's own in its threads and hooks).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import CTE, Select, Subquery, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, object_session

from ..extensions import db
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


def session_of(instance: Conversation | Message) -> Session:
    """The session a conversation or message belongs to; Flask-SQLAlchemy's (which needs
    an app context) for one that belongs to none yet."""
    return object_session(instance) or db.session


# --- Adding messages ----------------------------------------------------------------

def insert(conversation: Conversation, parent_id: int | None, role: str, content: str,
           **fields) -> Message:
    """Add a message under parent_id (None for a root), flushed so it has its id.

    The shown leaf does not move; user and system text is rendered once, here.
    """
    message = _added(conversation, role, content, parent_id=parent_id, **fields)
    session_of(conversation).flush()
    return message


def _added(conversation: Conversation, role: str, content: str, **fields) -> Message:
    """A new message added to the session, its user or system text rendered."""
    message = Message(conversation=conversation, role=role, content=content, **fields)
    if role in ("user", "system"):
        message.content_html = str(render_markdown(content))
    session_of(conversation).add(message)
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
    session_of(conversation).flush()
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
    """The shown branch, root to leaf, with the versions of the messages that have some.

    A page of it holds its latest messages (or those before a message); `earlier` is then
    the id of its first message when the branch goes on above it, the key of the page
    before (see shown_branch).
    """

    messages: list[Message]
    versions: dict[int, Versions]
    earlier: int | None = None

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


def _siblings(parent_ids: Select) -> Subquery:
    """The messages under the parents `parent_ids` selects (and the roots of conversation
    :conversation_id), each with its place among its siblings."""
    under = Message.parent_id.in_(parent_ids)
    roots = and_(Message.parent_id.is_(None),
                 Message.conversation_id == bindparam("conversation_id"))
    return (select(Message.id,
                   func.row_number().over(**_in_order).label("number"),
                   func.count().over(**_by_parent).label("count"),
                   func.lag(Message.id).over(**_in_order).label("previous_id"),
                   func.lead(Message.id).over(**_in_order).label("next_id"))
            .where(or_(under, roots)).subquery("siblings"))


def _version_columns(siblings: Subquery) -> tuple:
    return siblings.c.number, siblings.c.count, siblings.c.previous_id, siblings.c.next_id


def _with_versions(shown: CTE) -> Select:
    """The messages whose ids `shown` holds (with their parent_id), in order, each with its
    place among its siblings. Only the siblings of these messages are looked at."""
    siblings = _siblings(select(shown.c.parent_id))
    return (select(Message, *_version_columns(siblings))
            .join(siblings, siblings.c.id == Message.id)
            .where(Message.id.in_(select(shown.c.id)))
            .order_by(Message.id))


_SHOWN_BRANCH = _with_versions(BRANCH)
# The last :size messages of the branch before the message :before_id.
_SHOWN_PAGE = _with_versions(select(BRANCH.c.id, BRANCH.c.parent_id)
                             .where(BRANCH.c.id < bindparam("before_id"))
                             .order_by(BRANCH.c.id.desc()).limit(bindparam("size"))
                             .cte("page"))
# The messages of the branch to :upto_id that come after the message :after_id.
_BRANCH_AFTER = _with_versions(select(BRANCH.c.id, BRANCH.c.parent_id)
                               .where(BRANCH.c.id > bindparam("after_id")).cte("after"))
_ONE = _siblings(select(Message.parent_id).where(Message.id == bindparam("message_id")))
_VERSIONS_OF = select(*_version_columns(_ONE)).where(_ONE.c.id == bindparam("message_id"))


def _versions(number: int, count: int, previous_id: int | None,
              next_id: int | None) -> Versions | None:
    return Versions(number, count, previous_id, next_id) if count > 1 else None


def shown_branch(conversation: Conversation) -> Branch:
    """The whole shown branch with every message's versions: one query (and one for
    images), whatever the size of the conversation."""
    if conversation.current_leaf_id is None:
        return Branch([], {})
    return _branch(session_of(conversation).execute(_SHOWN_BRANCH, {
        "upto_id": conversation.current_leaf_id, "conversation_id": conversation.id}))


def shown_page(conversation: Conversation, size: int,
               before_id: int | None = None, upto_id: int | None = None) -> Branch:
    """The last `size` messages of the shown branch, or the last `size` before the message
    `before_id`, with their versions: one query (and one for images), whatever the size
    of the conversation.

    The key is a message's id, as the branch's order is its ids' order; `earlier` on the
    result is the key of the page before, when there is one. `upto_id` ends the branch at
    another message than the shown leaf (the fork of a comparison).
    """
    upto_id = upto_id or conversation.current_leaf_id
    if upto_id is None:
        return Branch([], {})
    page = _branch(session_of(conversation).execute(_SHOWN_PAGE, {
        "upto_id": upto_id, "conversation_id": conversation.id,
        "before_id": before_id if before_id is not None else upto_id + 1,
        "size": size}))
    first = page.messages[0] if page.messages else None
    # The branch goes on above a first message that has a parent.
    earlier = first.id if first is not None and first.parent_id is not None else None
    return Branch(page.messages, page.versions, earlier)


def branch_after(conversation: Conversation, leaf_id: int, after_id: int) -> Branch:
    """The messages of the branch that ends at `leaf_id` after the message `after_id` (a
    comparison column's own thread below its fork), with their versions: one query."""
    return _branch(session_of(conversation).execute(_BRANCH_AFTER, {
        "upto_id": leaf_id, "after_id": after_id, "conversation_id": conversation.id}))


_COUNT_FROM = (select(func.count()).select_from(BRANCH)
               .where(BRANCH.c.id >= bindparam("message_id")))


def count_from(conversation: Conversation, message_id: int) -> int:
    """How many messages of the shown branch there are from `message_id` to the leaf (the
    size of the page that reaches it). One query of ids."""
    if conversation.current_leaf_id is None:
        return 0
    return session_of(conversation).scalar(_COUNT_FROM, {
        "upto_id": conversation.current_leaf_id, "message_id": message_id})


def _branch(rows) -> Branch:
    """A Branch from rows of (message, its place among its siblings), in branch order."""
    messages, versions = [], {}
    for message, *place in rows:
        messages.append(message)
        if (found := _versions(*place)) is not None:
            versions[message.id] = found
    return Branch(messages, versions)


def versions_of(message: Message) -> Versions | None:
    """One message's versions (for a fragment showing only it), in one query."""
    place = session_of(message).execute(_VERSIONS_OF, {
        "conversation_id": message.conversation_id, "message_id": message.id}).one()
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
    counted, *sums = session_of(conversation).execute(_BRANCH_USAGE,
                                        {"upto_id": conversation.current_leaf_id}).one()
    return dict(zip(USAGE_KEYS, sums)) if counted else None


def system_prompt(conversation: Conversation) -> str:
    """The conversation's system prompt (its root system message), or an empty string."""
    return session_of(conversation).scalar(select(Message.content).where(
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
    for message_id, parent_id, on_branch in session_of(conversation).execute(_SHAPE, {
            "upto_id": conversation.current_leaf_id, "conversation_id": conversation.id}):
        children[parent_id].append(message_id)
        shown = shown or (on_branch and message_id == message.id)
    if shown:
        return
    leaf_id = message.id
    while children.get(leaf_id):
        leaf_id = children[leaf_id][-1]
    conversation.current_leaf_id = leaf_id
