"""Share links: publish a snapshot, update or revoke it, find it, and continue a copy.

Nothing here commits; the views do, once per request.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..conversations import tree
from ..conversations.models import Conversation, Document, Message, Share, utcnow
from ..extensions import db
from . import snapshot

# What new_share_token() makes; anything else is not looked up (PostgreSQL refuses NUL).
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def live_share(conversation: Conversation) -> Share | None:
    """The conversation's link that still works, if any (there is at most one)."""
    return db.session.scalar(select(Share).where(Share.conversation_id == conversation.id,
                                                 Share.revoked_at.is_(None)))


def has_documents(conversation: Conversation) -> bool:
    """Whether any message of the conversation carries a document."""
    return db.session.scalar(select(Document.id).join(Message).where(
        Message.conversation_id == conversation.id).limit(1)) is not None


def publish(conversation: Conversation, include_system_prompt: bool,
            include_documents: bool = False) -> Share:
    """Snapshot the conversation into its link, creating the link the first time."""
    share = live_share(conversation)
    if share is None:
        share = Share(conversation=conversation, owner_id=conversation.owner_id)
        db.session.add(share)
    share.include_system_prompt = include_system_prompt
    share.include_documents = include_documents
    share.snapshot = snapshot.take(conversation, include_system_prompt, include_documents)
    share.updated_at = utcnow()
    return share


def revoke(share: Share) -> None:
    """Turn a link off for good; only the fact that it existed is kept."""
    share.revoked_at = utcnow()
    share.snapshot = None


def by_token(token: str) -> Share | None:
    """The share a link's token names, revoked or not."""
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    return db.session.scalar(select(Share).where(Share.token == token))


def owner_shares(owner_id: str) -> list[Share]:
    """The owner's working links, most recently updated first."""
    return list(db.session.scalars(
        select(Share).where(Share.owner_id == owner_id, Share.revoked_at.is_(None))
        .options(selectinload(Share.conversation))
        .order_by(Share.updated_at.desc(), Share.id.desc())))


def continue_copy(share: Share, owner_id: str) -> Conversation:
    """A new conversation of owner_id holding the shared messages, as a line."""
    frozen = share.snapshot
    conversation = Conversation(owner_id=owner_id, title=frozen["title"],
                                model=frozen["model"], title_asked=True)  # it has one
    db.session.add(conversation)
    texts = [("system", frozen["system_prompt"], {})] if frozen["system_prompt"] else []
    texts += [(item["role"], item["content"], {"model": item["model"],
                                               "content_html": item["html"],
                                               "documents": _documents(item),
                                               **(item["usage"] or {})})
              for item in frozen["messages"]]
    inserted = tree.insert_tree(conversation, None, [
        tree.NewMessage(index, index - 1 if index else None, role, content, fields)
        for index, (role, content, fields) in enumerate(texts)])
    if inserted:
        tree.move_leaf(conversation, inserted[len(texts) - 1])
    return conversation


def _documents(item: dict) -> list[Document]:
    """The documents of a shared message whose text was shared, for a copy of it."""
    return [Document(name=shared["name"], kind=shared["kind"], byte_size=shared["byte_size"],
                     chars=len(shared["text"]), text=shared["text"])
            for shared in item.get("documents", []) if "text" in shared]
