"""Runs a completion for an assistant message: history -> upstream stream -> database.

A turn commits the user's message (with its images) and an assistant placeholder before
the upstream is called, then generates in a background thread (a greenlet under gevent)
that does not depend on the browser staying connected. Stop requests, retries with
backoff before the first token, continuing a reply that was cut off, and the final write
all go through here; the conversation's title is written after its first reply.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field

from flask import Flask, current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import llm, parameters, pricing, titles, tree
from .extensions import db
from .images import PreparedImage
from .live import UNSAVED_SENTENCE, LiveReply, Relay, update_while_active
from .models import (Attachment, Conversation, Message, Status, data_url, data_url_length,
                     utcnow)
from .rendering import render_markdown
from .tree import BRANCH

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
STOPPED_SENTENCE = "Stopped. The text so far is kept."
RESTART_SENTENCE = ("The server restarted while writing this reply. The text so far is "
                    "kept; retry to get a full reply.")
# Sent after the partial reply to continue it; never stored as a message (README: Continue).
CONTINUE_INSTRUCTION = "Continue exactly where you stopped."
NO_FALLBACK_SENTENCE = ("Model {model} did not answer, and this conversation does not let "
                        "the server substitute another model (Settings). Try again later, "
                        "or allow a substitute.")
NO_FALLBACK_REFUSED = ("This server does not accept “don't substitute another model”; "
                       "turn it off in Settings.")
# Sentences naming the conversation's model for errors that concern it.
MODEL_SENTENCES = {
    llm.ModelNotFound: "Model {model} is not available; pick another one.",
    llm.ImagesNotSupported: ("Model {model} does not accept images; pick a vision model "
                             "or remove the images."),
}


class Busy(Exception):
    """The conversation already has a reply being generated.

    The unique index on active replies (models.Message) refuses a second one, whether
    it comes after the first or races it, and nothing the refused request added is kept.
    """


def relay() -> Relay:
    """This process's registry of live replies."""
    return current_app.extensions["relay"]


def start_turn(conversation: Conversation, content: str,
               images: Sequence[PreparedImage | Attachment] = (),
               replacing: Message | None = None) -> tuple[Message, Message]:
    """Save the user's message with its images and a pending reply, then generate it.

    Returns both messages (the user's, then the reply).

    With `replacing` (an earlier user message being edited) the new message becomes its
    sibling, under the same parent: the old version stays on a branch of its own, and
    its images come along to the new one. The conversation's leaf moves once, to the
    reply.
    """
    parent_id = conversation.current_leaf_id
    if replacing is not None:
        parent_id = replacing.parent_id
        images = images or replacing.attachments
    message = tree.insert(conversation, parent_id, "user", content, attachments=[
        Attachment(content_type=image.content_type, data=image.data, width=image.width,
                   height=image.height, byte_size=len(image.data)) for image in images])
    return message, _start_reply(conversation, message.id)


def retry(conversation: Conversation, reply: Message) -> Message:
    """Generate a new reply to the same history, as a sibling of `reply` (which is kept).

    Serves both Retry (after a failure) and Regenerate (for another version).
    """
    return _start_reply(conversation, reply.parent_id)


@contextmanager
def _busy_if_taken():
    """Busy when the unique index on active replies refuses this one: another reply of
    the conversation is being generated; nothing of this request is kept."""
    try:
        yield
    except IntegrityError:
        db.session.rollback()
        raise Busy() from None


def continue_reply(conversation: Conversation, reply: Message) -> Message:
    """Ask the model to go on with a reply that was cut off, appending to the same row."""
    reply.status, reply.error, reply.error_detail = Status.PENDING, None, None
    reply.finish_reason, reply.stop_requested, reply.heartbeat_at = None, False, utcnow()
    reply.model = conversation.model
    reply.replayed_from_id = conversation.first_sent_id
    conversation.current_leaf_id = reply.id
    with _busy_if_taken():
        replay = history(reply.id, conversation.first_sent_id)
        reply.images_left_out = replay.images_left_out
        ask = _ask(conversation, replay.messages + [
            {"role": "user", "content": CONTINUE_INSTRUCTION}])
        db.session.commit()
    launch(current_app._get_current_object(), reply, ask, continuing=True)
    return reply


def _start_reply(conversation: Conversation, parent_id: int | None) -> Message:
    with _busy_if_taken():
        reply = tree.insert(conversation, parent_id, "assistant", "", status=Status.PENDING,
                            model=conversation.model, heartbeat_at=utcnow(),
                            replayed_from_id=conversation.first_sent_id)
        tree.move_leaf(conversation, reply)
        replay = history(parent_id, conversation.first_sent_id)
        reply.images_left_out = replay.images_left_out
        ask = _ask(conversation, replay.messages)
        db.session.commit()
    launch(current_app._get_current_object(), reply, ask)
    return reply


@dataclass(frozen=True)
class Ask:
    """What the upstream is asked for a reply: model, replayed messages, parameters, and
    the known prices (for the model asked for, or another the server substitutes)."""

    model: str
    messages: list[dict]
    params: dict
    prices: Mapping[str, pricing.Price] = field(default_factory=dict)


def _ask(conversation: Conversation, messages: list[dict]) -> Ask:
    return Ask(conversation.model, messages, parameters.effective(
        conversation.params, current_app.config["DEFAULT_PARAMS"]), pricing.known_prices())


def launch(app: Flask, reply: Message, ask: Ask, continuing: bool = False) -> threading.Thread:
    """Generate a reply in the background; continuing appends to the text it has.

    The request that asked for it yields once, so the generator sends the upstream
    request before the response to the browser is rendered.
    """
    start = {}
    if continuing:
        start = {"content": reply.content, "reasoning": reply.reasoning,
                 "usage": llm.Usage(reply.prompt_tokens, reply.completion_tokens,
                                    reply.total_tokens)}
    live = app.extensions["relay"].register(reply.id, finish=finish, **start)
    if continuing:  # kept unless the continuation says otherwise
        live.answered_model, live.thinking_seconds = reply.answered_model, reply.thinking_seconds
    thread = threading.Thread(target=_run, args=(app, live, ask, continuing), daemon=True,
                              name=f"reply-{reply.id}")
    thread.start()
    time.sleep(0)
    return thread


# The branch's messages in order, each with its images' ids and sizes (an outer join: one
# row per image, or one row with no image); the bytes of the images sent come after.
_BRANCH_WITH_IMAGES = (
    select(Message.id, Message.role, Message.content, Attachment.id, Attachment.content_type,
           Attachment.byte_size)
    .join(BRANCH, Message.id == BRANCH.c.id)
    .outerjoin(Attachment, Attachment.message_id == Message.id)
    .order_by(Message.id, Attachment.id))
_IMAGE_DATA = select(Attachment.id, Attachment.data).where(
    Attachment.id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class Replay:
    """The messages replayed upstream, and how many earlier images were left out of them."""

    messages: list[dict]
    images_left_out: int = 0


def history(upto_id: int, from_id: int | None = None) -> Replay:
    """The messages replayed upstream: the branch from the root to `upto_id`, in order.

    Messages older than `from_id` (the conversation's first_sent_id), other than the
    system prompt, are left out. Assistant messages that produced no text (failed before
    the first token) are left out; reasoning is never replayed. A message with images is
    sent as content parts: the newest images whose data URLs fit MAX_UPSTREAM_IMAGE_BYTES
    together; older ones are left out (and counted), and their bytes are never read.
    """
    rows = db.session.execute(_BRANCH_WITH_IMAGES, {"upto_id": upto_id}).all()
    if from_id is not None:
        rows = _from(rows, from_id)
    sent = _newest_images_within([row[3:] for row in rows if row[3] is not None],
                                 current_app.config["MAX_UPSTREAM_IMAGE_BYTES"])
    data = dict(db.session.execute(_IMAGE_DATA, {"ids": list(sent)}).all()) if sent else {}
    messages: list[dict] = []
    last_id, entry = None, {}
    for message_id, role, content, image_id, content_type, _ in rows:
        if message_id != last_id:
            last_id, entry = message_id, {"role": role, "content": content}
            if content or role != "assistant":
                messages.append(entry)
        if image_id in data:
            if isinstance(entry["content"], str):
                entry["content"] = [{"type": "text", "text": entry["content"]}]
            entry["content"].append({"type": "image_url", "image_url": {
                "url": data_url(content_type, data[image_id])}})
    images = sum(row[3] is not None for row in rows)
    return Replay(messages, images - len(sent))


def _from(rows: list, from_id: int) -> list:
    """The rows of the system prompt and of the messages from `from_id` on; all of them
    when that would leave no message of the user (a branch older than the marker)."""
    kept = [row for row in rows if row[0] >= from_id or row[1] == "system"]
    return kept if any(row[1] == "user" for row in kept) else rows


def _newest_images_within(images: list[tuple[int, str, int]], budget: int) -> set[int]:
    """The ids of the newest images (id, content type, size) whose data URLs fit budget."""
    sent: set[int] = set()
    for image_id, content_type, byte_size in reversed(images):
        budget -= data_url_length(content_type, byte_size)
        if budget < 0:
            break
        sent.add(image_id)
    return sent


def request_stop(message: Message) -> None:
    """Ask for a reply to stop; served here if this process generates it, else by its own,
    told over the reply bus (and by the stop_requested column, should the bus lose it)."""
    live = relay().get(message.id)
    db.session.execute(update(Message).where(Message.id == message.id)
                       .values(stop_requested=True))
    db.session.commit()
    if live is not None:
        live.stop.set()
        finish(live, Status.STOPPED)
    else:
        current_app.extensions["bus"].request_stop(message.id)


def wait_until_finished(message_id: int, timeout: float) -> None:
    """Block until the reply generated in this process is finished, or timeout."""
    live = relay().get(message_id)
    deadline = time.monotonic() + timeout
    version = -1
    while live is not None and not live.finished and time.monotonic() < deadline:
        version = live.wait_for_change(version, min(1.0, deadline - time.monotonic()))


def finish(live: LiveReply, status: str, error: str | None = None,
           detail: str | None = None) -> bool:
    """Write the reply's final state once; False if someone else already did.

    When the database refuses the reply's text, the reply ends as an error and keeps the
    text saved before.
    """
    if not live.claim_finish():
        return False
    if status == Status.STOPPED:
        error = error or STOPPED_SENTENCE
    try:
        try:
            _write_final(live, status, error, detail)
        except SQLAlchemyError:
            db.session.rollback()
            log.exception("saving the final state of message %s failed", live.message_id)
            db.session.execute(_WRITE_UNSAVED, {"b_id": live.message_id,
                                                "b_updated_at": utcnow()})
            db.session.commit()
    finally:
        live.mark_finished()
    return True


# Built once: a reply's final state, and the time its conversation was last updated.
_FINAL_FIELDS = ("status", "content", "content_html", "reasoning", "error", "error_detail",
                 "finish_reason", "prompt_tokens", "completion_tokens", "total_tokens",
                 "answered_model", "input_price", "output_price", "price_currency",
                 "thinking_seconds", "updated_at")
_WRITE_FINAL = update_while_active(
    heartbeat_at=None, **{name: bindparam(f"b_{name}") for name in _FINAL_FIELDS})
_WRITE_UNSAVED = update_while_active(status=Status.ERROR, error=UNSAVED_SENTENCE,
                                     heartbeat_at=None, updated_at=bindparam("b_updated_at"))
_CONVERSATIONS, _MESSAGES = Conversation.__table__, Message.__table__
_TOUCH_CONVERSATION = (update(_CONVERSATIONS)
                       .where(_CONVERSATIONS.c.id == _MESSAGES.c.conversation_id,
                              _MESSAGES.c.id == bindparam("b_id"))
                       .values(updated_at=bindparam("b_updated_at")))


def _write_final(live: LiveReply, status: str, error: str | None,
                 detail: str | None) -> None:
    usage = live.usage or llm.Usage()
    price = live.price if live.usage else None
    now = utcnow()
    db.session.execute(_WRITE_FINAL, {
        "b_id": live.message_id, "b_status": status, "b_content": live.content,
        "b_content_html": str(render_markdown(live.content)), "b_reasoning": live.reasoning,
        "b_error": error, "b_error_detail": detail, "b_finish_reason": live.finish_reason,
        "b_prompt_tokens": usage.prompt_tokens, "b_completion_tokens": usage.completion_tokens,
        "b_total_tokens": usage.total_tokens, "b_answered_model": live.answered_model,
        "b_input_price": price and price.input_per_token,
        "b_output_price": price and price.output_per_token,
        "b_price_currency": price and price.currency,
        "b_thinking_seconds": live.thinking_seconds, "b_updated_at": now})
    db.session.execute(_TOUCH_CONVERSATION, {"b_id": live.message_id, "b_updated_at": now})
    db.session.commit()


def interrupt_all(app: Flask) -> None:
    """Save every reply this process is generating as interrupted (it is shutting down)."""
    with app.app_context():
        for live in app.extensions["relay"].live_replies():
            finish(live, Status.INTERRUPTED, RESTART_SENTENCE)


def _run(app: Flask, live: LiveReply, ask: Ask, continuing: bool) -> None:
    """Generate the reply, then title the conversation after its first reply.

    The reply stays registered meanwhile, so waiting for a generation covers its title.
    """
    try:
        with app.app_context():
            try:
                _generate(live, ask)
            except Exception as exc:  # never leave a reply "streaming" forever
                log.exception("generating message %s failed", live.message_id)
                db.session.rollback()
                _fail(live, llm.LLMError("Something went wrong while writing the reply.",
                                         cause=repr(exc)))
            if app.config["TITLE_GENERATION"] and not continuing:
                titles.title_after_first_reply(live.message_id)
    finally:
        app.extensions["relay"].unregister(live)


def _generate(live: LiveReply, ask: Ask) -> None:
    earlier_usage, earlier_length = live.usage, len(live.content)
    # Priced as the model asked for, or (continuing a reply) the one that wrote it.
    live.price = ask.prices.get(live.answered_model or ask.model)
    client: llm.LLMClient = current_app.extensions["llm"]
    budget_end = time.monotonic() + current_app.config["REGOLO_RETRY_BUDGET"]
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with closing(client.stream(ask.model, ask.messages, **ask.params)) as deltas:
                for delta in deltas:
                    if live.stop.is_set() or live.claimed:
                        break
                    if delta.model and delta.model != live.answered_model:
                        _note_answering_model(live, ask, delta.model)
                    if delta.content or delta.reasoning:
                        _time_thinking(live, delta)
                        live.append(delta.content, delta.reasoning)
                    live.finish_reason = delta.finish_reason or live.finish_reason
                    if delta.usage:
                        live.usage = delta.usage.plus(earlier_usage)
            finish(live, Status.STOPPED if live.stop.is_set() else Status.COMPLETE)
            return
        except llm.LLMError as exc:
            wait = _retry_wait(exc, attempt, budget_end, len(live.content) > earlier_length)
            if wait is None:
                _fail(live, exc, ask.model, ask.params.get(parameters.NO_FALLBACKS, False))
                return
            log.info("upstream %s for message %s; retry %s in %.1fs",
                     type(exc).__name__, live.message_id, attempt, wait)
            live.set_notice(f"{exc.user_message} Retrying in {wait:.0f} s…")
            if live.stop.wait(wait):
                finish(live, Status.STOPPED)
                return


def _note_answering_model(live: LiveReply, ask: Ask, model: str) -> None:
    """Record the model that answers, and its price (None when none is known)."""
    live.answered_model = model
    live.price = ask.prices.get(model)


def _time_thinking(live: LiveReply, delta: llm.Delta) -> None:
    """Time the thinking: from the first reasoning token to the first content token."""
    if delta.reasoning and live.reasoning_started is None:
        live.reasoning_started = time.monotonic()
    if delta.content and live.reasoning_started is not None and live.thinking_seconds is None:
        live.thinking_seconds = time.monotonic() - live.reasoning_started


def _retry_wait(exc: llm.LLMError, attempt: int, budget_end: float,
                started: bool) -> float | None:
    """Seconds to wait before retrying, or None when this error is final.

    The wait is the API's Retry-After when it gave a usable one (llm.retry_after_seconds),
    else a backoff of 1 s, then 2 s; a wait that would end past the budget is final.
    """
    if not exc.retryable or started or attempt >= MAX_ATTEMPTS:
        return None
    wait = getattr(exc, "retry_after", None)
    wait = float(2 ** (attempt - 1)) if wait is None else wait
    return wait if time.monotonic() + wait <= budget_end else None


def _fail(live: LiveReply, exc: llm.LLMError, model: str = "",
          no_fallbacks: bool = False) -> None:
    """Save the reply as failed: a sentence for people (with the time to wait when the API
    named one) and the API's own message; what else is known goes to the log only.

    With "don't substitute another model" set, a refusal says so.
    """
    sentence = exc.user_message
    if no_fallbacks and isinstance(exc, llm.BadRequest) \
            and parameters.NO_FALLBACKS in exc.detail:
        sentence = NO_FALLBACK_REFUSED
    elif no_fallbacks and isinstance(exc, (llm.UpstreamUnavailable, llm.RateLimited)):
        sentence = NO_FALLBACK_SENTENCE.format(model=model)
    elif model and type(exc) in MODEL_SENTENCES:
        sentence = MODEL_SENTENCES[type(exc)].format(model=model)
    elif isinstance(exc, llm.RateLimited):
        sentence = exc.when_to_try_again()
    if exc.detail or exc.cause:
        log.warning("message %s: %s (%s)", live.message_id, sentence, exc.log_text())
    finish(live, Status.INTERRUPTED if live.content else Status.ERROR, sentence,
           exc.detail or None)

