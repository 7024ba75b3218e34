"""Views of the chat blueprint: pages for people, fragments for htmx, one source each."""

from __future__ import annotations

import time

from flask import (Response, abort, current_app, redirect, render_template, request,
                   stream_with_context, url_for)
from htmx_flask import make_response
from sqlalchemy import delete as sa_delete
from werkzeug.exceptions import RequestEntityTooLarge

from ..conversations import comparisons, context, costs, parameters, pricing, tree
from ..conversations.documents import sent_chars
from ..conversations.catalog import model_choices
from ..conversations.models import Conversation, Message, conversation_by_public_id
from ..extensions import db
from ..replies.generation import Busy
from ..replies.live import reap_stale
from ..replies.streaming import follow
from ..replies.updates import ReplyEvents, sse_event
from ..web.limits import sends_messages, slow_down_sentence
from ..web.owner import current_owner_id
from ..web.pages import generation, owned_conversation, owned_message, refused, render_page
from ..web.sidebar import sidebar_page
from . import bp, forms

NO_JS_WAIT_SECONDS = 600
BUSY_SENTENCE = ("A reply is still being written. Wait for it to finish or press Stop, "
                 "then try again.")
COMPARING_SENTENCE = ("This conversation is comparing models now; reload the page to send "
                      "to each of them, or continue with one.")


def shown(conversation: Conversation, before_id: int | None = None) -> dict:
    """What a conversation page shows of it: the latest page of the branch (or the page
    before a message) with its versions, the token totals, the context meter and the
    costs. During a comparison, the branch ends at its fork and `board` holds the
    columns."""
    board = comparisons.board(conversation)
    fork_id = board.comparison.fork_id if board is not None else None
    return {"branch": tree.shown_page(conversation, _page_size(), before_id, fork_id),
            "board": board, "usage": tree.usage(conversation), "before_id": before_id,
            **meter_and_costs(conversation)}


def meter_and_costs(conversation: Conversation, messages: list[Message] | None = None) -> dict:
    """The context meter and what the conversation and this month cost (under the
    composer); `messages` is the shown branch when it is already loaded."""
    return {"meter": context.measure(conversation, messages=messages),
            "costs": costs.costs(conversation)}


def conversation_page(conversation: Conversation, status: int = 200,
                      before_id: int | None = None, **page):
    """The conversation page, with the data it shows and what else `page` gives it."""
    return render_page("chat/conversation.html", status, conversation=conversation,
                       **shown(conversation, before_id), **page)


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge):
    """A request over MAX_CONTENT_LENGTH: said inline to htmx, where the text stays typed."""
    limit = forms.size_text(current_app.config["MAX_CONTENT_LENGTH"])
    sentence = f"That is more than {limit} in all. Attach fewer or smaller files."
    if request.htmx:
        return make_response(render_template("chat/_form_error.html", error=sentence),
                             413, retarget="#form-error", reswap="innerHTML")
    return render_template("errors/error.html", error=RequestEntityTooLarge(sentence),
                           code=413), 413


@bp.get("/new")
@bp.get("/")
def index():
    """The new-chat page, with the default model's context window and this month's costs
    under the message box (a chat not yet started costs nothing).

    ?models=a,b (and &blind=1) opens it with those models chosen for a comparison.
    """
    return new_chat_page(compare_models=forms.models_list(request.args.get("models", "")),
                         blind=bool(request.args.get("blind")))


def new_chat_page(status: int = 200, draft: str = "", system_prompt: str = "", **page):
    """The new-chat page with what `page` adds (the models chosen to compare, an error)."""
    new = Conversation(owner_id=current_owner_id(), model=model_choices().default)
    return render_page("chat/index.html", status, draft=draft, system_prompt=system_prompt,
                       meter=context.Meter(0, False, pricing.window_for(new.model)),
                       costs=costs.costs(new), **page)


@bp.post("/c")
@sends_messages(replies=forms.replies_asked)
def create():
    """Start a conversation with its settings and first message."""
    draft = request.form.get("content", "")
    system_text = request.form.get("system_prompt", "")
    compared = forms.models_asked()
    blind = bool(request.form.get("blind"))
    try:
        content = forms.message_text(draft)
        system_text = forms.system_prompt(system_text)
        model = forms.model_name(request.form.get("model"))
        settings = _typed_settings()
        if settings is not None and settings.errors:
            return _refused_settings(settings, draft=draft, system_prompt=system_text)
        if compared:
            compared = comparisons.check_models(compared)
        documents = forms.documents(request.files.getlist("documents"))
        images = forms.images(request.files.getlist("images"))  # the costly checks, last
    except (forms.Invalid, comparisons.NotComparable) as error:
        return refused(error, "chat/index.html", draft=draft, system_prompt=system_text,
                       params_form=_typed_settings(), compare_models=compared, blind=blind)
    conversation = Conversation(owner_id=current_owner_id(), model=model,
                                title=forms.title_from(content),
                                params=settings.values if settings is not None else None)
    db.session.add(conversation)
    if not compared:
        _, reply = generation().start_turn(conversation, content, images, documents,
                                           system_prompt=system_text)
        return _after_send(conversation, reply, fragment=None)
    if system_text:
        tree.append(conversation, "system", system_text)
    db.session.flush()
    comparison = comparisons.start(conversation, compared, blind)
    replies = generation().start_compared_turn(conversation, comparison, content, images,
                                               documents)
    return after_compared_send(conversation, replies)


@bp.get("/conversations")
def conversations():
    """More of the sidebar's list: its next items for htmx, a page of them otherwise."""
    more = sidebar_page(current_owner_id(), request.args.get("before"))
    if request.htmx:
        return render_template("chat/_conversation_items.html", sidebar=more)
    return render_page("chat/conversations.html", more=more)


@bp.get("/c/<public_id>")
def show(public_id: str):
    """A conversation page: the latest messages of the shown branch and the composer.

    With ?before=<message id> (the "Show earlier messages" link without JavaScript), the
    page of messages before that one instead, and a way back to the latest.
    """
    conversation = owned_conversation(public_id)
    stale_seconds = current_app.config["STREAM_STALE_SECONDS"]
    if conversation.active_reply() and reap_stale(db.session, stale_seconds):
        db.session.commit()
        db.session.refresh(conversation)
    return conversation_page(conversation, before_id=request.args.get("before", type=int),
                             draft="")


@bp.get("/c/<public_id>/earlier")
def earlier(public_id: str):
    """The page of the shown branch before ?before=<message id>, for htmx to put on top
    (the page that shows it otherwise)."""
    conversation = owned_conversation(public_id)
    before_id = request.args.get("before", type=int)
    if before_id is None:
        abort(400, "Say which message to show the earlier ones of (?before=).")
    if not request.htmx:
        return redirect(url_for("chat.show", public_id=public_id, before=before_id), 303)
    branch = tree.shown_page(conversation, _page_size(), before_id)
    return render_template("chat/_message_page.html", conversation=conversation,
                           branch=branch)


@bp.post("/c/<public_id>/messages")
@sends_messages
def send(public_id: str):
    """Send a message; htmx gets the new turn, a plain form waits for the reply."""
    conversation = owned_conversation(public_id)
    draft = request.form.get("content", "")
    if conversation.comparing:  # a page opened before the comparison
        return refused_in(conversation, COMPARING_SENTENCE, draft, status=409)
    try:
        content = forms.message_text(draft)
        refuse_if_busy(conversation)
        documents = forms.documents(request.files.getlist("documents"))
        fit = request.form.get("fit", "")
        overflow = context.check_before_send(
            conversation, sent_chars(content, documents), fit)
        if overflow is not None:
            return _refused_overflow(conversation, overflow, draft)
        images = forms.images(request.files.getlist("images"))
        question, reply = generation().start_turn(conversation, content, images, documents)
    except forms.Invalid as error:
        return refused_in(conversation, error, draft)
    except Busy:
        return refused_in(conversation, BUSY_SENTENCE, draft, status=409)
    if fit == context.LEAVE_OUT and request.htmx:  # the marker and the faded messages too
        return make_response(_after_send(conversation, reply, "chat/_messages.html",
                                         branch=tree.shown_page(conversation, _page_size())),
                             retarget="#messages", reswap="outerHTML")
    return _after_send(conversation, reply, fragment="chat/_turn.html",
                       user_message=question)


@bp.post("/c/<public_id>/messages/<id:message_id>/retry")
@sends_messages
def retry(public_id: str, message_id: int):
    """Retry or regenerate a reply: a new version with the same history; the old is kept."""
    conversation, previous = owned_message(public_id, message_id)
    if conversation.comparing:  # a column's reply is regenerated in its column
        return refused_in(conversation, COMPARING_SENTENCE, "", status=409)
    if previous.role != "assistant" or previous.is_active:
        return refused_in(conversation, "Only a finished reply can be retried.", "", 409)
    try:
        reply = generation().retry(conversation, previous)
    except Busy:
        return refused_in(conversation, BUSY_SENTENCE, "", status=409)
    return _after_send(conversation, reply, fragment="chat/_messages.html",
                       branch=tree.shown_page(conversation, _page_size()))


@bp.post("/c/<public_id>/messages/<id:message_id>/edit")
@sends_messages
def edit(public_id: str, message_id: int):
    """Send a new version of an earlier message of yours; the old one stays as a branch."""
    conversation, original = owned_message(public_id, message_id)
    if original.role != "user":
        return refused_in(conversation, "Only your own messages can be edited.", "", 409)
    draft = request.form.get("content", "")
    if conversation.comparing:  # its new branch would leave the columns behind; the
        # messages above them have no edit form then, so the text goes to the composer
        return refused_in(conversation, COMPARING_SENTENCE, draft, status=409)
    try:
        content = forms.message_text(draft)
        refuse_if_busy(conversation)
        _, reply = generation().start_turn(conversation, content, replacing=original)
    except forms.Invalid as error:
        return _refused_edit(conversation, original, error, draft)
    except Busy:
        return _refused_edit(conversation, original, BUSY_SENTENCE, draft, status=409)
    return _after_send(conversation, reply, fragment="chat/_messages.html",
                       branch=tree.shown_page(conversation, _page_size()))


@bp.post("/c/<public_id>/messages/<id:message_id>/show")
def show_version(public_id: str, message_id: int):
    """Show another version of a message: the branch through it becomes the shown one."""
    conversation, message = owned_message(public_id, message_id)
    if conversation.active_reply() is not None:
        return refused_in(conversation, BUSY_SENTENCE, "", status=409)
    tree.show_branch_of(conversation, message)
    db.session.commit()
    if request.htmx:  # the messages from the one above it down, at least a page
        size = max(_page_size(), tree.count_from(conversation, message_id) + 1)
        return render_template("chat/_messages.html", conversation=conversation,
                               branch=tree.shown_page(conversation, size))
    return redirect(_message_url(conversation, message_id), 303)


@bp.get("/c/<public_id>/messages/<id:message_id>")
def open_message(public_id: str, message_id: int):
    """A link to one message (from search): its branch is shown, then the page at it.

    A GET that moves the shown branch: it only changes which stored version is displayed,
    loses nothing, and is skipped while a reply is being written.
    """
    conversation, message = owned_message(public_id, message_id)
    if conversation.active_reply() is None:
        tree.show_branch_of(conversation, message)
        db.session.commit()
    return redirect(_message_url(conversation, message_id), 303)


@bp.post("/c/<public_id>/messages/<id:message_id>/continue")
@sends_messages
def continue_reply(public_id: str, message_id: int):
    """Have the model go on with the last reply (cut off, stopped or interrupted)."""
    conversation, reply = owned_message(public_id, message_id)
    if conversation.comparing:
        return refused_in(conversation, COMPARING_SENTENCE, "", status=409)
    if not reply.can_continue or conversation.current_leaf_id != reply.id:
        return refused_in(conversation, "Only the last reply, when it was cut off or "
                           "stopped, can be continued.", "", status=409)
    try:
        generation().continue_reply(conversation, reply)
    except Busy:
        return refused_in(conversation, BUSY_SENTENCE, "", status=409)
    return _after_send(conversation, reply, fragment="chat/_message.html",
                       versions=tree.versions_of(reply))


@bp.post("/c/<public_id>/messages/<id:message_id>/stop")
def stop(public_id: str, message_id: int):
    """Stop a reply being generated; the text so far is kept."""
    conversation, message = owned_message(public_id, message_id)
    if message.is_active:
        generation().request_stop(message)
    if request.htmx:
        return "", 204
    return redirect(url_for("chat.show", public_id=public_id, _anchor=f"m-{message_id}"),
                    303)


@bp.get("/c/<public_id>/messages/<id:message_id>/stream")
def stream(public_id: str, message_id: int):
    """Server-sent events: the reply so far ("update"), what it adds ("delta"), "done"."""
    owned_message(public_id, message_id)
    db.session.commit()  # no read transaction held open while streaming

    def events():
        updates = ReplyEvents()
        for state in follow(message_id):
            if state is None:
                yield ": keep-alive\n\n"
            elif isinstance(state, Message):
                column = comparisons.column_of(state.conversation, state)
                yield sse_event("done", render_template(
                    "chat/_reply_done.html", message=state, conversation=state.conversation,
                    column=column,
                    versions=None if column else tree.versions_of(state),
                    usage=tree.usage(state.conversation),
                    **meter_and_costs(state.conversation)))
            elif update := updates.event(state):
                yield update

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.post("/c/<public_id>/rename")
def rename(public_id: str):
    """Give a conversation a title of the owner's choosing."""
    conversation = owned_conversation(public_id)
    try:
        conversation.title = forms.title(request.form.get("title"))
    except forms.Invalid as error:
        return refused_in(conversation, error, "")
    conversation.title_is_custom = True
    db.session.commit()
    if request.htmx:
        return render_template("chat/_title.html", conversation=conversation,
                               choices=model_choices(), renamed=True,
                               usage=tree.usage(conversation))
    return redirect(url_for("chat.show", public_id=public_id), 303)


@bp.post("/c/<public_id>/model")
def change_model(public_id: str):
    """Use another model for the next replies of this conversation."""
    conversation = owned_conversation(public_id)
    try:
        conversation.model = forms.model_name(request.form.get("model"))
    except forms.Invalid as error:
        return refused_in(conversation, error, "")
    db.session.commit()
    if request.htmx:
        return "", 204
    return redirect(url_for("chat.show", public_id=public_id), 303)


@bp.get("/c/<public_id>/delete")
def confirm_delete(public_id: str):
    """Ask before deleting (the page used when JavaScript is off)."""
    return render_page("chat/confirm_delete.html", conversation=owned_conversation(public_id))


@bp.post("/c/<public_id>/delete")
def delete(public_id: str):
    """Delete a conversation and everything in it."""
    conversation = owned_conversation(public_id)
    for active in conversation.active_replies():
        generation().request_stop(active)
    conversation.current_leaf_id = None
    db.session.flush()
    db.session.execute(sa_delete(Conversation).where(Conversation.id == conversation.id))
    db.session.commit()
    if request.htmx:
        return make_response("", 200, redirect=url_for("chat.index"))
    return redirect(url_for("chat.index"), 303)


@bp.errorhandler(429)
def too_many_messages(error):
    """A send limit: how long to wait, next to the message box, keeping what was typed."""
    sentence = slow_down_sentence("too many messages")
    draft = request.form.get("content", "")
    public_id = (request.view_args or {}).get("public_id")
    conversation = conversation_by_public_id(public_id, current_owner_id()) \
        if public_id else None
    if conversation is None:
        return refused(sentence, "chat/index.html", 429, draft=draft,
                       system_prompt=request.form.get("system_prompt", ""))
    return refused_in(conversation, sentence, draft, status=429)


def after_compared_send(conversation: Conversation, replies: list[Message]):
    """htmx gets the page's messages with the columns; a plain form waits for every
    column's reply, then redirects to the page that shows them."""
    if request.htmx:
        if request.endpoint == "chat.create":
            return make_response("", 200, redirect=url_for("chat.show",
                                                           public_id=conversation.public_id))
        return render_template("chat/_messages.html", conversation=conversation,
                               **shown(conversation))
    _wait_without_script([reply.id for reply in replies])
    return redirect(url_for("chat.show", public_id=conversation.public_id,
                            _anchor="columns"), 303)


def _wait_without_script(reply_ids: list[int]) -> None:
    """For a form sent without script: wait until these replies are finished (at most
    NO_JS_WAIT_SECONDS in all), holding no transaction meanwhile."""
    db.session.commit()  # no transaction (PostgreSQL: "idle in transaction") while waiting
    deadline = time.monotonic() + NO_JS_WAIT_SECONDS
    for reply_id in reply_ids:
        generation().wait_until_finished(reply_id, max(0.0, deadline - time.monotonic()))


def _after_send(conversation: Conversation, reply: Message, fragment: str | None,
                user_message: Message | None = None, **shown_data):
    """htmx gets a fragment (or is sent to the page); a plain form waits, then redirects.

    `shown_data` is what the fragment shows besides the reply (a branch, versions).
    """
    page = url_for("chat.show", public_id=conversation.public_id)
    if request.htmx:
        if fragment is None:
            return make_response("", 200, redirect=page)
        return render_template(fragment, conversation=conversation, message=reply,
                               user_message=user_message, **shown_data)
    reply_id = reply.id
    _wait_without_script([reply_id])
    return redirect(f"{page}#m-{reply_id}", 303)


def _typed_settings() -> parameters.ParamsForm | None:
    """The new-chat settings as typed, checked; None when the form has none."""
    return parameters.parse(request.form) if parameters.present_in(request.form) else None


def refuse_if_busy(conversation: Conversation) -> None:
    """Busy (the exception) before the costly part of a send (images, rendering) rather
    than after it; the unique index on active replies still settles two sends that race."""
    if conversation.active_reply() is not None:
        raise Busy()


def _page_size() -> int:
    """How many messages of a conversation a page shows at first (MESSAGES_PER_PAGE)."""
    return current_app.config["MESSAGES_PER_PAGE"]


def _message_url(conversation: Conversation, message_id: int) -> str:
    """The conversation page at a message: the latest page, or the page ending at the
    message when it is further up the branch."""
    if tree.count_from(conversation, message_id) <= _page_size():
        return url_for("chat.show", public_id=conversation.public_id,
                       _anchor=f"m-{message_id}")
    return url_for("chat.show", public_id=conversation.public_id, before=message_id + 1,
                   _anchor=f"m-{message_id}")


def _refused_settings(settings: parameters.ParamsForm, **page):
    """New-chat settings out of range: htmx gets them back with the errors, else the page."""
    if request.htmx:
        return make_response(render_template("chat/_new_chat_settings.html",
                                             params_form=settings),
                             422, retarget="#new-chat-settings", reswap="outerHTML")
    return render_page("chat/index.html", 422, params_form=settings, **page)


def _refused_overflow(conversation: Conversation, meter: context.Meter, draft: str):
    """A send that would overflow the context window: say so, offer to leave older
    messages out (or send anyway), keeping what was typed."""
    if request.htmx:
        return make_response(render_template("chat/_overflow.html", overflow=meter),
                             409, retarget="#form-error", reswap="innerHTML")
    return conversation_page(conversation, 409, draft=draft, overflow=meter)


def refused_in(conversation: Conversation, error: forms.Invalid | str, draft: str,
               status: int = 422):
    """The conversation page (or, to htmx, the form's error) saying why a form was refused,
    with what was typed kept in the composer."""
    return refused(error, "chat/conversation.html", status, conversation=conversation,
                   draft=draft, page_data=lambda: shown(conversation))


def _refused_edit(conversation: Conversation, original: Message,
                  error: forms.Invalid | str, draft: str, status: int = 422):
    """The edit form again, open, with its text and the message next to it."""
    return refused(error, "chat/conversation.html", status,
                   error_at=f"edit-error-{original.id}", conversation=conversation,
                   draft="", edit_draft=draft, page_data=lambda: shown(conversation))
