"""Conversations, their messages (stored as a tree, see design: Data) and attachments."""

from __future__ import annotations

import base64
import math
import re
import secrets
from datetime import datetime, timezone
from enum import StrEnum

from sqlalchemy import (Float, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint,
                        select, text)
from sqlalchemy.orm import Mapped, lazyload, mapped_column, relationship

from ..extensions import db


def utcnow() -> datetime:
    """The current time in UTC, without tzinfo (stored the same on every database)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


PUBLIC_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def new_public_id() -> str:
    """An unguessable id for URLs (128 bits of randomness)."""
    return secrets.token_urlsafe(16)


class Status(StrEnum):
    """Message.status: how a message stands. Stored as its text; a user or system message
    is always complete."""

    PENDING = "pending"  # saved, its generation about to start
    STREAMING = "streaming"  # text arriving
    COMPLETE = "complete"
    STOPPED = "stopped"  # by its owner; the text so far is kept
    INTERRUPTED = "interrupted"  # failed or died after some text, which is kept
    ERROR = "error"  # failed before any text


# The "active" statuses: a generation is running (or about to), and SQL naming them.
ACTIVE_STATUSES = (Status.PENDING, Status.STREAMING)
ACTIVE_STATUSES_SQL = "(" + ", ".join(f"'{status}'" for status in ACTIVE_STATUSES) + ")"
ONE_ACTIVE_WHERE = f"status IN {ACTIVE_STATUSES_SQL}"

# At most one reply being generated per branch, even when two sends race: a unique index
# on the messages that are active refuses the second (see generation.Busy). A branch is a
# lane: 0 for a conversation's ordinary replies, a comparison's column position for the
# replies of that column (column 0 shares lane 0, so an ordinary send and a compared one
# never run together). Its WHERE comes from make_one_active_reply_partial().
ONE_ACTIVE_REPLY = Index("uq_messages_one_active_reply_per_lane", "conversation_id", "lane",
                         unique=True)


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
    __table_args__ = (Index("ix_conversations_owner_recent", "owner_id", "updated_at", "id"),
                      Index("uq_conversations_owner_import_key", "owner_id", "import_key",
                            unique=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200), default="New chat")
    title_is_custom: Mapped[bool] = mapped_column(default=False)
    title_asked: Mapped[bool] = mapped_column(default=False)  # the model, once (titles.py)
    model: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict | None] = mapped_column(db.JSON)
    # Set when the conversation was imported: its format and the export's id of it.
    import_key: Mapped[str | None] = mapped_column(String(200))
    current_leaf_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", use_alter=True, ondelete="SET NULL")
    )
    # The oldest message after the system prompt still replayed upstream; older ones are
    # left out to fit the context window (None: every message is sent).
    first_sent_id: Mapped[int | None]
    # The comparison going on in the conversation, if any (comparisons.py); no query is
    # needed to know there is none.
    comparison_id: Mapped[int | None]
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

    @property
    def comparing(self) -> bool:
        """A comparison is going on: messages go to its columns, not to the shown branch."""
        return self.comparison_id is not None

    def active_reply(self) -> Message | None:
        """An assistant message still being generated, if any (one indexed query)."""
        return db.session.scalar(self._active().limit(1))

    def active_replies(self) -> list[Message]:
        """Every assistant message still being generated (one per lane at most)."""
        return list(db.session.scalars(self._active()))

    def _active(self):
        return select(Message).where(Message.conversation_id == self.id,
                                     Message.status.in_(ACTIVE_STATUSES)).order_by(Message.id)


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
    status: Mapped[str] = mapped_column(String(16), default=Status.COMPLETE)
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
    # The conversation's first_sent_id when this reply's request was made.
    replayed_from_id: Mapped[int | None]
    # The model the server says wrote the reply (`model` is the one asked for).
    answered_model: Mapped[str | None] = mapped_column(String(200))
    # The price per token used for this reply, kept so later price changes rewrite nothing.
    input_price: Mapped[float | None] = mapped_column(Float)
    output_price: Mapped[float | None] = mapped_column(Float)
    price_currency: Mapped[str | None] = mapped_column(String(8))
    # Seconds from the first reasoning token to the first content token.
    thinking_seconds: Mapped[float | None] = mapped_column(Float)
    # Seconds from the request to the first token, and from there to the last one.
    first_token_seconds: Mapped[float | None] = mapped_column(Float)
    writing_seconds: Mapped[float | None] = mapped_column(Float)
    # The branch an active reply holds (see ONE_ACTIVE_REPLY); 0 outside comparisons.
    lane: Mapped[int] = mapped_column(default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    conversation: Mapped[Conversation] = relationship(
        back_populates="messages", foreign_keys=[conversation_id]
    )
    # Set by tree.insert_tree, so a whole tree is written in one flush; never loaded.
    parent: Mapped[Message | None] = relationship(remote_side=[id], lazy="raise")
    # Loaded with the messages in one query (selectin); the image bytes are deferred.
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Attachment.id", lazy="selectin",
    )
    # The same for documents; their text is deferred.
    documents: Mapped[list[Document]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Document.id", lazy="selectin",
    )

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.role} {self.status}>"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in (Status.ERROR, Status.INTERRUPTED)

    @property
    def substituted(self) -> bool:
        """The server answered with another model than the one asked for."""
        return bool(self.answered_model and self.model and self.answered_model != self.model)

    @property
    def cost(self) -> float | None:
        """What the reply cost, from its stored usage and price; None when either is unknown."""
        if self.input_price is None or self.output_price is None or self.total_tokens is None:
            return None
        return ((self.prompt_tokens or 0) * self.input_price
                + (self.completion_tokens or 0) * self.output_price)

    @property
    def tokens_per_second(self) -> float | None:
        """Reply tokens per second of writing, when both are known."""
        if not self.completion_tokens or not self.writing_seconds:
            return None
        return self.completion_tokens / self.writing_seconds

    @property
    def can_continue(self) -> bool:
        """A reply with text that was cut at the token limit, stopped or interrupted."""
        return (self.role == "assistant" and bool(self.content) and not self.is_active
                and (self.finish_reason == "length"
                     or self.status in (Status.STOPPED, Status.INTERRUPTED)))


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


class Document(db.Model):
    """A document sent with a user message: its name, size and extracted text."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # "text" or "pdf"
    byte_size: Mapped[int]
    chars: Mapped[int]  # the length of text, kept so sizes are read without the text
    text: Mapped[str] = mapped_column(Text, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship(back_populates="documents")

    def __repr__(self) -> str:
        return f"<Document {self.id} {self.kind} {self.chars} chars>"


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
        .options(lazyload(Message.attachments), lazyload(Message.documents))
    ).first()


class Comparison(db.Model):
    """Two or three models answering the same messages side by side, each in a column
    whose follow-ups are a branch of the conversation's tree (see comparisons.py).

    `fork_id` is the user message of the first compared turn (None until it is sent);
    open until `ended_at`. In blind mode the columns are named A, B, C until a pick.
    """

    __tablename__ = "comparisons"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    blind: Mapped[bool] = mapped_column(default=False)
    fork_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    picked_position: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]

    conversation: Mapped[Conversation] = relationship()
    columns: Mapped[list[ComparisonColumn]] = relationship(
        back_populates="comparison", cascade="all, delete-orphan", passive_deletes=True,
        order_by="ComparisonColumn.position", lazy="selectin")

    def __repr__(self) -> str:
        return f"<Comparison {self.id} of conversation {self.conversation_id}>"

    @property
    def revealed(self) -> bool:
        """The models' names are shown: not blind, or the pick is made."""
        return not self.blind or self.picked_position is not None

    def masked(self, text: str) -> str:
        """`text` with each column's model named by its column's label (A, B, C while
        blind and undecided; the names themselves otherwise)."""
        for column in sorted(self.columns, key=lambda column: -len(column.model)):
            text = text.replace(column.model, column.label)
        return text


class ComparisonColumn(db.Model):
    """One model's column of a comparison: its position (its lane) and its thread's leaf."""

    __tablename__ = "comparison_columns"
    __table_args__ = (UniqueConstraint("comparison_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    comparison_id: Mapped[int] = mapped_column(
        ForeignKey("comparisons.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    model: Mapped[str] = mapped_column(String(200))
    leaf_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))

    comparison: Mapped[Comparison] = relationship(back_populates="columns")

    def __repr__(self) -> str:
        return f"<ComparisonColumn {self.position} {self.model}>"

    @property
    def label(self) -> str:
        """The model's name, or A, B, C while a blind comparison is undecided."""
        return self.model if self.comparison.revealed else "ABC"[self.position]


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
    include_documents: Mapped[bool] = mapped_column(default=False)  # their text, too
    snapshot: Mapped[dict | None] = mapped_column(db.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    conversation: Mapped[Conversation] = relationship()

    def __repr__(self) -> str:
        return f"<Share {(self.token or '')[:4]}… of conversation {self.conversation_id}>"


class DeviceLink(db.Model):
    """A one-time, short-lived link that lets a second browser use an owner's chats.

    Only the SHA-256 of its token is stored: the link itself is shown once, to its owner.
    """

    __tablename__ = "device_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<DeviceLink {self.id} expires {self.expires_at:%H:%M}>"
