"""Device links: make, revoke, look up and use the one-time links to an owner's chats.

A link works once, for LIFETIME, and an owner has at most one that still works (making a
new one revokes the old). Only the SHA-256 of its token is stored. Using it moves the
chats of the browser that uses it (if any) to the link's owner, so nothing is lost.
Nothing here commits; the views do, once per request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import func, select, update

from ..conversations.models import Conversation, DeviceLink, Share, utcnow
from ..extensions import db

LIFETIME = timedelta(minutes=15)
# What new_token() makes; anything else is not looked up.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")

UNKNOWN = ("There is no device link here. Check that it was copied in full, or make a "
           "new one on your other device.")
USED = "This device link was already used. Make a new one on your other device."
EXPIRED = (f"This device link expired (links work for {LIFETIME.seconds // 60} minutes). "
           "Make a new one on your other device.")
REVOKED = ("This device link was turned off on the device that made it. Make a new one "
           "there.")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _working(now):
    """The condition of a link that can still be used at `now`."""
    return (DeviceLink.used_at.is_(None) & DeviceLink.revoked_at.is_(None)
            & (DeviceLink.expires_at > now))


def create(owner_id: str) -> tuple[str, DeviceLink]:
    """A new link for owner_id (revoking any earlier one): its token, shown once, and row."""
    revoke(owner_id)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    link = DeviceLink(owner_id=owner_id, token_hash=_digest(token), created_at=now,
                      expires_at=now + LIFETIME)
    db.session.add(link)
    return token, link


def live_link(owner_id: str) -> DeviceLink | None:
    """The owner's link that still works, if any."""
    return db.session.scalar(select(DeviceLink).where(DeviceLink.owner_id == owner_id,
                                                      _working(utcnow())))


def revoke(owner_id: str) -> None:
    """Turn off every link of owner_id that still works."""
    db.session.execute(update(DeviceLink)
                       .where(DeviceLink.owner_id == owner_id, _working(utcnow()))
                       .values(revoked_at=utcnow()))


def find(token: str) -> DeviceLink | None:
    """The link a token names, used or not."""
    if not TOKEN_SHAPE.fullmatch(token):
        return None
    return db.session.scalar(select(DeviceLink).where(DeviceLink.token_hash == _digest(token)))


def why_not_usable(link: DeviceLink | None) -> str | None:
    """The sentence that says why a link can't be used, or None when it can."""
    if link is None:
        return UNKNOWN
    if link.used_at is not None:
        return USED
    if link.revoked_at is not None:
        return REVOKED
    if link.expires_at <= utcnow():
        return EXPIRED
    return None


def conversation_count(owner_id: str | None) -> int:
    """How many conversations owner_id has (none without an owner)."""
    if owner_id is None:
        return 0
    return db.session.scalar(select(func.count()).select_from(Conversation)
                             .where(Conversation.owner_id == owner_id))


def _forget_imports_both_have(from_owner: str, to_owner: str) -> None:
    """A conversation both owners imported from the same export moves as a copy of its
    own: it stops being the one a new import of that export would find."""
    theirs = select(Conversation.import_key).where(Conversation.owner_id == to_owner,
                                                   Conversation.import_key.is_not(None))
    db.session.execute(update(Conversation).where(Conversation.owner_id == from_owner,
                                                  Conversation.import_key.in_(theirs))
                       .values(import_key=None))


def use(link: DeviceLink, browser_owner_id: str | None) -> bool:
    """Spend the link for a browser whose own identity is browser_owner_id (None when it
    has none): that identity's conversations and share links move to the link's owner,
    and its own device links stop working. False when the link was spent meanwhile."""
    now = utcnow()
    claimed = db.session.execute(update(DeviceLink)
                                 .where(DeviceLink.id == link.id, _working(now))
                                 .values(used_at=now))
    if claimed.rowcount != 1:
        return False
    if browser_owner_id is not None and browser_owner_id != link.owner_id:
        _forget_imports_both_have(browser_owner_id, link.owner_id)
        for model in (Conversation, Share):
            db.session.execute(update(model).where(model.owner_id == browser_owner_id)
                               .values(owner_id=link.owner_id))
        revoke(browser_owner_id)
    return True
