"""The anonymous owner identity of each browser, kept in the signed session cookie."""

from __future__ import annotations

import secrets

from flask import session


def current_owner_id() -> str:
    """This browser's owner id, created on first use (256 bits, never shown in URLs)."""
    owner = session.get("owner")
    if not isinstance(owner, str) or len(owner) < 32:
        owner = secrets.token_urlsafe(32)
        session["owner"] = owner
        session.permanent = True
    return owner
