"""The sidebar's conversations, a page at a time: most recently active first.

Keyset pagination: a page ends with a cursor naming its last conversation (its updated_at
and id), and the next page starts strictly after it, so an owner with 10,000 conversations
loads 50 at a time with one indexed query, and pages never repeat or skip a row.
The list is grouped by when each conversation was last active (Today, Yesterday, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, or_, select

from ..conversations.models import Conversation, utcnow
from ..extensions import db
from .converters import MAX_ID

PAGE_SIZE = 50


@dataclass
class SidebarPage:
    """One page of the list, and the cursor of the next page (None on the last)."""

    conversations: list[Conversation]
    next_cursor: str | None
    first: bool
    previous_group: str | None = None  # the group of the conversation before this page


def group_of(updated_at: datetime, today: date) -> str:
    """The heading a conversation last active at `updated_at` is listed under.

    Days are UTC days, the zone the times are stored in (the server does not know the
    reader's).
    """
    days = (today - updated_at.date()).days
    if days <= 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    if days < 7:
        return "Previous 7 days"
    if days < 30:
        return "Previous 30 days"
    return "Older"


def cursor_of(conversation: Conversation) -> str:
    """The cursor of the page that starts after this conversation."""
    return f"{conversation.updated_at.isoformat()}_{conversation.id}"


def parse_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """(updated_at, id) from a cursor, or None when it is missing or malformed (a time
    and an id the database could hold)."""
    when, _, ident = (cursor or "").partition("_")
    try:
        after = datetime.fromisoformat(when), int(ident)
    except ValueError:
        return None
    return after if 0 < after[1] <= MAX_ID else None


def sidebar_page(owner_id: str, cursor: str | None = None,
                 size: int = PAGE_SIZE) -> SidebarPage:
    """The owner's conversations after `cursor` (from the newest when it is None)."""
    query = select(Conversation).where(Conversation.owner_id == owner_id)
    after = parse_cursor(cursor)
    if after is not None:
        when, ident = after
        query = query.where(or_(Conversation.updated_at < when,
                                and_(Conversation.updated_at == when, Conversation.id < ident)))
    rows = list(db.session.scalars(query.order_by(Conversation.updated_at.desc(),
                                                  Conversation.id.desc()).limit(size + 1)))
    next_cursor = cursor_of(rows[size - 1]) if len(rows) > size else None
    previous = group_of(after[0], utcnow().date()) if after is not None else None
    return SidebarPage(rows[:size], next_cursor, first=after is None, previous_group=previous)
