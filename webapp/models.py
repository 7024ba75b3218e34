"""Conversations, their messages (stored as a tree, see design: Data) and attachments."""

from __future__ import annotations

import base64
import math
import re
import secrets
from datetime import datetime, timezone

from sqlalchemy import (CTE, ForeignKey, Index, LargeBinary, String, Text, bindparam, func,
                        select, text)
from sqlalchemy.orm import Mapped, lazyload, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    """The current time in UTC, without tzinfo (stored the same on every database)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


PUBLIC_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def new_public_id() -> str:
    """An unguessable id for URLs (128 bits of randomness)."""
    return secrets.token_urlsafe(16)


# Message.status values. "active" ones have a generation running (or about to).
PENDING = "pending"
STREAMING = "streaming"
COMPLETE = "complete"
STOPPED = "stopped"
INTERRUPTED = "interrupted"
ERROR = "error"
ACTIVE_STATUSES = (PENDING, STREAMING)
ONE_ACTIVE_WHERE = "status IN ('pending', 'streaming')"

# At most one reply being generated per conversation, even when two sends race: a unique
# index on the messages that are active refuses the second (see generation.Busy). Its
# WHERE comes from make_one_active_reply_partial().
ONE_ACTIVE_REPLY = Index("uq_messages_one_active_reply", "conversation_id", unique=True)


def make_one_active_reply_partial(dialect_name: str) -> None:
    """Give ONE_ACTIVE_REPLY its WHERE ONE_ACTIVE_WHERE on this database ("sqlite" or
    "postgresql"), as create_app does for the one it uses.

    Not written as sqlite_where=/postgresql_where= on the Index: SQLAlchemy checks such
    options by importing the dialect they name, and the PostgreSQL one would take about
    2 MB of every SQLite process. Migration 0005 creates the index with both WHEREs.
    """
    ONE_ACTIVE_REPLY.dialect_options[dialect_name]["where"] = text(ONE_ACTIVE_WHERE)


class Conversation(db.Model):
    """A chat: its settings and which leaf of its message tree is shown."""

    __tablename__ = "conversations"
    # The sidebar's keyset pagination (chat/sidebar.py): an owner's, most recent first.
    __table_args__ = (Index("ix_conversations_owner_recent", "owner_id", "updated_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200), default="New chat")
    title_is_custom: Mapped[bool] = mapped_column(default=False)
    model: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict | None] = mapped_column(db.JSON)
    current_leaf_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", use_alter=True, ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        cascade="all, delete-orphan",
        passive_deletes=True,
        foreign_keys="Message.conversation_id",
        order_by="Message.id",
    )

    def __repr__(self) -> str:
        return f"<Conversation {self.public_id} {self.title!r}>"

    def path(self) -> list[Message]:
        """The messages from the root to the current leaf: what is shown and replayed."""
        by_id = {message.id: message for message in self.messages}
        path: list[Message] = []
        node = by_id.get(self.current_leaf_id) if self.current_leaf_id else None
        while node is not None:
            path.append(node)
            node = by_id.get(node.parent_id) if node.parent_id else None
        return path[::-1]

    @property
    def system_prompt(self) -> str:
        """The text of the root system message, or an empty string."""
        for message in self.messages:
            if message.role == "system" and message.parent_id is None:
                return message.content
        return ""

    def usage(self) -> dict[str, int] | None:
        """Tokens used by the shown branch's replies, where the upstream reported them.

        One aggregate query over the branch; no message is loaded.
        """
        if self.current_leaf_id is None:
            return None
        counted, *sums = db.session.execute(_BRANCH_USAGE,
                                            {"upto_id": self.current_leaf_id}).one()
        return dict(zip(USAGE_KEYS, sums)) if counted else None

    def active_reply(self) -> Message | None:
        """The assistant message still being generated, if any (one indexed query)."""
        return db.session.scalar(select(Message).where(
            Message.conversation_id == self.id, Message.status.in_(ACTIVE_STATUSES)
        ).limit(1))


class Message(db.Model):
    """One system, user or assistant message; parent_id links it into the tree."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_status_heartbeat", "status", "heartbeat_at"),
        ONE_ACTIVE_REPLY,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    content_html: Mapped[str | None] = mapped_column(Text)
    reasoning: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=COMPLETE)
    error: Mapped[str | None] = mapped_column(Text)
    error_detail: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    total_tokens: Mapped[int | None]
    stop_requested: Mapped[bool] = mapped_column(default=False)
    # A reply's request left out this many earlier images (MAX_UPSTREAM_IMAGE_BYTES).
    images_left_out: Mapped[int | None]
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    conversation: Mapped[Conversation] = relationship(
        back_populates="messages", foreign_keys=[conversation_id]
    )
    # Loaded with the messages in one query (selectin); the image bytes are deferred.
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Attachment.id", lazy="selectin",
    )

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.role} {self.status}>"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in (ERROR, INTERRUPTED)

    @property
    def can_continue(self) -> bool:
        """A reply with text that was cut at the token limit, stopped or interrupted."""
        return (self.role == "assistant" and bool(self.content) and not self.is_active
                and (self.finish_reason == "length" or self.status in (STOPPED, INTERRUPTED)))


def _branch_query() -> CTE:
    """The ids of the messages from the root down to the message `upto_id` (recursive).

    Sorted by id they are in order, as a child is always stored after its parent.
    """
    upward = (select(Message.id, Message.parent_id).where(Message.id == bindparam("upto_id"))
              .cte("branch", recursive=True))
    return upward.union_all(select(Message.id, Message.parent_id)
                            .join(upward, Message.id == upward.c.parent_id))


# Built once, run with {"upto_id": ...}: the branch, and the tokens its replies used.
BRANCH = _branch_query()
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
_BRANCH_USAGE = (select(func.count(), *(func.coalesce(func.sum(getattr(Message, key)), 0)
                                        for key in USAGE_KEYS))
                 .join(BRANCH, Message.id == BRANCH.c.id)
                 .where(Message.total_tokens.is_not(None)))


def data_url(content_type: str, data: bytes) -> str:
    """An image as a data: URL, the form OpenAI-compatible APIs accept."""
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def data_url_length(content_type: str, byte_size: int) -> int:
    """The length of data_url() for an image of byte_size bytes, without encoding it."""
    return len(f"data:{content_type};base64,") + 4 * math.ceil(byte_size / 3)


class Attachment(db.Model):
    """An image sent with a user message, stored (already scaled) in the database."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    width: Mapped[int]
    height: Mapped[int]
    byte_size: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship(back_populates="attachments")

    def __repr__(self) -> str:
        return f"<Attachment {self.id} {self.content_type} {self.width}x{self.height}>"


def conversation_by_public_id(public_id: str, owner_id: str | None) -> Conversation | None:
    """The conversation with this public id owned by owner_id, or None."""
    if not PUBLIC_ID_SHAPE.fullmatch(public_id):
        return None  # never send a malformed id (a NUL byte, say) to the database
    return db.session.scalar(
        select(Conversation).where(
            Conversation.public_id == public_id, Conversation.owner_id == owner_id
        )
    )


def conversation_and_message(public_id: str, owner_id: str | None,
                             message_id: int) -> tuple[Conversation, Message | None] | None:
    """The conversation with this public id owned by owner_id, with its message
    message_id (None when it has no such message), in one query; or None."""
    if not PUBLIC_ID_SHAPE.fullmatch(public_id):
        return None
    return db.session.execute(
        select(Conversation, Message)
        .outerjoin(Message, (Message.id == message_id)
                   & (Message.conversation_id == Conversation.id))
        .where(Conversation.public_id == public_id, Conversation.owner_id == owner_id)
        .options(lazyload(Message.attachments))
    ).first()


def new_share_token() -> str:
    """An unguessable share link token (192 bits of randomness)."""
    return secrets.token_urlsafe(24)


class Share(db.Model):
    """A public read-only link to a frozen snapshot of a conversation.

    Revoking clears the snapshot but keeps the row, so the link can say it was removed.
    """

    __tablename__ = "shares"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_share_token)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    include_system_prompt: Mapped[bool] = mapped_column(default=False)
    snapshot: Mapped[dict | None] = mapped_column(db.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    conversation: Mapped[Conversation] = relationship()

    def __repr__(self) -> str:
        return f"<Share {(self.token or '')[:4]}… of conversation {self.conversation_id}>"
