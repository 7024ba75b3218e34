"""What the blueprints' pages share: the layout with its sidebar, finding what the current
owner may see, the one response to a refused form, and the app's generation service."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, render_template, request
from htmx_flask import make_response
from sqlalchemy import select
from sqlalchemy.orm import QueryableAttribute, undefer

from ..conversations.catalog import model_choices
from ..conversations.models import (Attachment, Conversation, Document, Message,
                                    conversation_and_message, conversation_by_public_id)
from ..extensions import db
from ..replies.generation import GenerationService
from .owner import current_owner_id
from .sidebar import sidebar_page

CONVERSATION_NOT_FOUND = "This conversation does not exist, or it was deleted."


def generation() -> GenerationService:
    """The app's generation service (built in create_app)."""
    return current_app.extensions["generation"]


def owned_conversation(public_id: str) -> Conversation:
    """The current owner's conversation with this id, or a 404."""
    conversation = conversation_by_public_id(public_id, current_owner_id())
    if conversation is None:
        abort(404, CONVERSATION_NOT_FOUND)
    return conversation


def owned_message(public_id: str, message_id: int) -> tuple[Conversation, Message]:
    """The current owner's conversation with this id and one of its messages, or a 404."""
    found = conversation_and_message(public_id, current_owner_id(), message_id)
    if found is None:
        abort(404, CONVERSATION_NOT_FOUND)
    conversation, message = found
    if message is None:
        abort(404, "This message does not exist.")
    return conversation, message


def owned_part(public_id: str, content: QueryableAttribute, part_id: int, missing: str
               ) -> tuple[Conversation, Attachment | Document]:
    """The current owner's conversation and one image or document of its messages, with
    its `content` column (deferred otherwise) loaded, or a 404 saying `missing`."""
    conversation = owned_conversation(public_id)
    part = content.class_
    found = db.session.scalar(
        select(part).join(Message)
        .where(part.id == part_id, Message.conversation_id == conversation.id)
        .options(undefer(content)))
    if found is None:
        abort(404, missing)
    return conversation, found


def render_page(template: str, status: int = 200, **context) -> tuple[str, int]:
    """A full page with the sidebar and the model choices."""
    return render_template(template, sidebar=sidebar_page(current_owner_id()),
                           choices=model_choices(), **context), status


def refused(error: ValueError | str, page: str, status: int = 422,
            error_at: str = "form-error", page_data: Callable[[], dict] = dict, **context):
    """A refused form: an inline message for htmx, the page again with it otherwise.

    `error_at` is the id of the element next to the field that shows the message;
    `page_data` gives what the full page shows (only called when it is rendered).
    """
    if request.htmx:
        return make_response(render_template("chat/_form_error.html", error=str(error)),
                             status, retarget=f"#{error_at}", reswap="innerHTML")
    return render_page(page, status, error=str(error), error_at=error_at, **page_data(),
                       **context)
