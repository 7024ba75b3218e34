"""Views of the messages left out of the requests: sending them all again."""

from __future__ import annotations

from flask import redirect, url_for

from ..conversations import context
from ..extensions import db
from ..web.pages import owned_conversation
from . import bp


@bp.post("/c/<public_id>/send-all")
def send_all(public_id: str):
    """Send every message of the conversation again from the next reply on."""
    conversation = owned_conversation(public_id)
    context.send_all_again(conversation)
    db.session.commit()
    return redirect(url_for("chat.show", public_id=public_id), 303)
