"""Comparing models side by side: start, send to every column, regenerate one, stop all,
continue with one, and the page of each model's wins in blind comparisons."""

from __future__ import annotations

from flask import abort, make_response, redirect, request, url_for

from ..conversations import comparisons, context
from ..conversations.documents import sent_chars
from ..conversations.models import (Comparison, ComparisonColumn, Conversation, Message,
                                    conversation_by_public_id)
from ..extensions import db
from ..replies.generation import Busy
from ..web.limits import sends_messages
from ..web.owner import current_owner_id
from ..web.pages import generation, owned_conversation, render_page
from . import bp, forms
from .views import BUSY_SENTENCE, after_compared_send, refuse_if_busy, refused_in

NOT_COMPARING = "This conversation is not comparing models any more."


@bp.post("/c/<public_id>/compare")
def compare_start(public_id: str):
    """Compare 2 or 3 models from the next message on (the conversation's model picker)."""
    conversation = owned_conversation(public_id)
    models = forms.models_asked()
    try:
        refuse_if_busy(conversation)
        comparisons.start(conversation, models, bool(request.form.get("blind")))
    except comparisons.NotComparable as error:
        return refused_in(conversation, error, "")
    except Busy:
        return refused_in(conversation, BUSY_SENTENCE, "", status=409)
    db.session.commit()
    return _to_page(conversation)


def _columns_asked() -> int:
    """How many replies a send to the owner's comparison asks for: one per column (one
    when there is no such comparison: the view then refuses it)."""
    conversation = conversation_by_public_id(request.view_args["public_id"],
                                             current_owner_id())
    comparison = conversation and comparisons.open_comparison(conversation)
    return len(comparison.columns) if comparison else 1


@bp.post("/c/<public_id>/compare/messages")
@sends_messages(replies=_columns_asked)
def compare_send(public_id: str):
    """Send a message to every column; each model gets only its own thread."""
    conversation, comparison = _comparing(public_id)
    draft = request.form.get("content", "")
    try:
        content = forms.message_text(draft)
        refuse_if_busy(conversation)
        documents = forms.documents(request.files.getlist("documents"))
        full = context.overflowing_thread(
            conversation, [(column.leaf_id, column.model) for column in comparison.columns],
            sent_chars(content, documents))
        if full is not None:
            raise forms.Invalid(f"This message would not fit {comparison.columns[full].label}'s "
                                "context window; shorten it or continue with one model.")
        images = forms.images(request.files.getlist("images"))
        replies = generation().start_compared_turn(conversation, comparison, content, images,
                                                   documents)
    except forms.Invalid as error:
        return refused_in(conversation, error, draft)
    except Busy:
        return refused_in(conversation, BUSY_SENTENCE, draft, status=409)
    except comparisons.Ended:
        return refused_in(conversation, NOT_COMPARING, draft, status=409)
    return after_compared_send(conversation, replies)


@bp.post("/c/<public_id>/compare/<int:position>/retry")
@sends_messages
def compare_retry(public_id: str, position: int):
    """Regenerate one column's latest reply; the other columns go on."""
    conversation, comparison = _comparing(public_id)
    column = _column(comparison, position)
    reply = db.session.get(Message, column.leaf_id) if column.leaf_id else None
    if reply is None or reply.role != "assistant" or reply.is_active:
        return refused_in(conversation, "Only a finished reply can be regenerated.", "", 409)
    try:
        new = generation().retry_in_column(conversation, column, reply)
    except Busy:
        return refused_in(conversation, BUSY_SENTENCE, "", status=409)
    return after_compared_send(conversation, [new])


@bp.post("/c/<public_id>/compare/stop")
def compare_stop(public_id: str):
    """Stop every column still writing; the text so far is kept."""
    conversation = owned_conversation(public_id)
    for reply in conversation.active_replies():
        generation().request_stop(reply)
    if request.htmx:
        return "", 204
    return _to_page(conversation)


@bp.post("/c/<public_id>/compare/<int:position>/pick")
def compare_pick(public_id: str, position: int):
    """Continue with this column: its thread becomes the conversation's shown branch (the
    others stay reachable as versions); in a blind comparison the pick is its win."""
    conversation, comparison = _comparing(public_id)
    column = _column(comparison, position)
    if conversation.active_reply() is not None:
        return refused_in(conversation, BUSY_SENTENCE, "", status=409)
    comparisons.pick(conversation, comparison, column)
    db.session.commit()
    return _to_page(conversation)


@bp.post("/c/<public_id>/compare/end")
def compare_end(public_id: str):
    """Stop comparing without picking; the first column's thread stays shown."""
    conversation, comparison = _comparing(public_id)
    comparisons.end(conversation, comparison)
    db.session.commit()
    return _to_page(conversation)


@bp.get("/compare/wins")
def compare_wins():
    """Each model's wins in this browser's blind comparisons."""
    return render_page("chat/wins.html", wins=comparisons.wins(current_owner_id()))


def _comparing(public_id: str) -> tuple[Conversation, Comparison]:
    """The owner's conversation and its open comparison, or a 409 that says there is none."""
    conversation = owned_conversation(public_id)
    comparison = comparisons.open_comparison(conversation)
    if comparison is None:
        abort(make_response(refused_in(conversation, NOT_COMPARING,
                                        request.form.get("content", ""), 409)))
    return conversation, comparison


def _column(comparison: Comparison, position: int) -> ComparisonColumn:
    """The comparison's column at `position`, or a 404."""
    column = comparisons.column_at(comparison, position)
    if column is None:
        abort(404, "This comparison has no such column.")
    return column


def _to_page(conversation: Conversation):
    """The conversation page again (its composer and header change with the mode)."""
    return redirect(url_for("chat.show", public_id=conversation.public_id), 303)
