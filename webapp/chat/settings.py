"""Views of a conversation's response parameters (the Settings disclosure)."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for

from ..conversations import parameters
from ..conversations.models import Conversation
from ..extensions import db
from ..web.pages import owned_conversation
from . import bp
from .views import conversation_page


@bp.app_template_global()
def params_form_for(conversation: Conversation | None = None) -> parameters.ParamsForm:
    """The settings form showing a conversation's parameters, or a new chat's defaults."""
    stored = conversation.params if conversation is not None else None
    return parameters.form_for(
        parameters.effective(stored, current_app.config["DEFAULT_PARAMS"]))


@bp.post("/c/<public_id>/settings")
def save_settings(public_id: str):
    """Save the response parameters used for this conversation's next replies."""
    conversation = owned_conversation(public_id)
    form = parameters.parse(request.form)
    status = 422 if form.errors else 200
    if not form.errors:
        conversation.params = form.values
        db.session.commit()
    if request.htmx:
        return render_template("chat/_settings.html", conversation=conversation,
                               params_form=form, saved=not form.errors), status
    if form.errors:
        return conversation_page(conversation, status, draft="", params_form=form)
    return redirect(url_for("chat.show", public_id=public_id), 303)
