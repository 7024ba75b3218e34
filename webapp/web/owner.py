"""The anonymous owner identity of each browser, kept in the signed session cookie.

A browser's identity is made on first use and replaced only by adopt_owner(), which runs
when the owner confirms a device link (see webapp/devices); see security.py for why a
request from another site never sets the cookie.
"""

from __future__ import annotations

import secrets

from flask import session


def existing_owner_id() -> str | None:
    """This browser's owner id if it has one; never makes one."""
    owner = session.get("owner")
    return owner if isinstance(owner, str) and len(owner) >= 32 else None


def current_owner_id() -> str:
    """This browser's owner id, created on first use (256 bits, never shown in URLs)."""
    owner = existing_owner_id()
    if owner is None:
        owner = secrets.token_urlsafe(32)
        adopt_owner(owner)
    return owner


def adopt_owner(owner_id: str) -> None:
    """Make owner_id this browser's identity from now on."""
    session["owner"] = owner_id
    session.permanent = True
