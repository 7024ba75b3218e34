"""Generation as a service: a reply's history -> upstream stream -> database.

GenerationService is built once, in the app factory, with everything it uses passed in:
the upstream client, the relay of this process's live replies (with its reply bus), a
database session factory, its settings and the hooks to run after a reply. It never
reads Flask's current_app, so a CLI command, a server hook or a test thread can use it
with no request or app context.

A turn commits the user's message (with its images and documents) and an assistant
placeholder before the upstream is called, in the session the conversation belongs to (a
view's db.session, or one the caller opened from `service.sessions`), then generates in a
background thread (a greenlet under gevent) that does not depend on the browser staying
connected. Stop requests, retries with backoff before the first token, continuing a reply
that was cut off, and the final write all go through here. Once a new reply is saved, the
after-completion hooks run in its thread (the app factory registers the title writer,
webapp/conversations/titles.py, when TITLE_GENERATION is on).

The background work opens sessions from the service's own factory (a plain
sqlalchemy.orm.sessionmaker bound to the app's engine) rather than pushing an app context
in its threads: Flask-SQLAlchemy's db.session lives only inside an app context, while a
session factory works the same in a gunicorn worker, a CLI command and a test, and keeps
each thread's session as short-lived and as separate as a request's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..conversations import comparisons, parameters, pricing, tree
from ..conversations.documents import ExtractedDocument, upstream_text
from ..conversations.images import PreparedImage
from ..conversations.models import (Attachment, Comparison, ComparisonColumn, Conversation,
                                    Document, Message, Status, data_url, data_url_length,
                                    utcnow)
from ..conversations.rendering import render_markdown
from ..conversations.tree import BRANCH
from ..upstream import llm
from .live import UNSAVED_SENTENCE, LiveReply, Relay, update_while_active

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
STOP_WAIT_SECONDS = 5  # a stop answered here returns once the final state is stored
STOPPED_SENTENCE = "Stopped. The text so far is kept."
RESTART_SENTENCE = ("The server restarted while writing this reply. The text so far is "
                    "kept; retry to get a full reply.")
FAILED_SENTENCE = "Something went wrong while writing the reply."
# Sent after the partial reply to continue it; never stored as a message (README: Continue).
CONTINUE_INSTRUCTION = "Continue exactly where you stopped."
NO_FALLBACK_SENTENCE = ("Model {model} did not answer, and this conversation does not let "
                        "the server substitute another model (Settings). Try again later, "
                        "or allow a substitute.")
NO_FALLBACK_REFUSED = ("This server does not accept “don't substitute another model”; "
                       "turn it off in Settings.")
# Sentences naming the conversation's model for errors that concern it.
MODEL_SENTENCES = {
    llm.ModelNotFound: "This server does not serve model {model}; pick another one.",
    llm.ImagesNotSupported: ("Model {model} does not accept images; pick a vision model "
                             "or remove the images."),
}

# Runs in a reply's thread once a new reply's final state is saved: a session of the
# service's own and the reply's id. Its errors are logged; they never touch the reply.
AfterCompletion = Callable[[Session, int], None]


class Busy(Exception):
    """The branch already has a reply being generated.

    The unique index on active replies (models.Message: one per conversation and lane)
    refuses a second one, whether it comes after the first or races it, and nothing the
    refused request added is kept.
    """


@dataclass(frozen=True)
class Settings:
    """What generation takes from the app's configuration."""

    retry_budget: float  # seconds a reply may spend retrying (REGOLO_RETRY_BUDGET)
    default_params: dict  # parameters of a conversation that sets none (DEFAULT_PARAMS)
    max_upstream_image_bytes: int  # images replayed in one request (MAX_UPSTREAM_IMAGE_BYTES)

    @classmethod
    def from_config(cls, config: Mapping) -> Settings:
        return cls(retry_budget=config["REGOLO_RETRY_BUDGET"],
                   default_params=config["DEFAULT_PARAMS"],
                   max_upstream_image_bytes=config["MAX_UPSTREAM_IMAGE_BYTES"])


@dataclass(frozen=True)
class Ask:
    """What the upstream is asked for a reply: model, replayed messages, parameters, and
    the known prices (for the model asked for, or another the server substitutes)."""

    model: str
    messages: list[dict]
    params: dict
    prices: Mapping[str, pricing.Price] = field(default_factory=dict)


@dataclass(frozen=True)
class Replay:
    """The messages replayed upstream, and how many earlier images were left out of them."""

    messages: list[dict]
    images_left_out: int = 0


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
# The documents of the messages replayed, in the order attached.
_DOCUMENTS = (select(Document.message_id, Document.name, Document.text)
              .where(Document.message_id.in_(bindparam("ids", expanding=True)))
              .order_by(Document.id))

# Built once: a reply's final state, and the time its conversation was last updated.
_FINAL_FIELDS = ("status", "content", "content_html", "reasoning", "error", "error_detail",
                 "finish_reason", "prompt_tokens", "completion_tokens", "total_tokens",
                 "answered_model", "input_price", "output_price", "price_currency",
                 "thinking_seconds", "first_token_seconds", "writing_seconds",
                 "updated_at")
_WRITE_FINAL = update_while_active(
    heartbeat_at=None, **{name: bindparam(f"b_{name}") for name in _FINAL_FIELDS})
_WRITE_UNSAVED = update_while_active(status=Status.ERROR, error=UNSAVED_SENTENCE,
                                     heartbeat_at=None, updated_at=bindparam("b_updated_at"))
_CONVERSATIONS, _MESSAGES = Conversation.__table__, Message.__table__
_TOUCH_CONVERSATION = (update(_CONVERSATIONS)
                       .where(_CONVERSATIONS.c.id == _MESSAGES.c.conversation_id,
                              _MESSAGES.c.id == bindparam("b_id"))
                       .values(updated_at=bindparam("b_updated_at")))


@contextmanager
def _busy_if_taken(session: Session):
    """Busy when the unique index on active replies refuses this one: another reply of
    the conversation is being generated; nothing of this request is kept."""
    try:
        yield
    except IntegrityError:
        session.rollback()
        raise Busy() from None


class GenerationService:
    """Starts, stops and finishes the replies generated in this process."""

    def __init__(self, client: llm.LLMClient, relay: Relay, sessions: sessionmaker,
                 settings: Settings, after_completion: Iterable[AfterCompletion] = (),
                 prices: Callable[[], Mapping[str, pricing.Price]] = dict):
        self.client = client
        # Every model's known price, asked for each reply before its request writes
        # anything: a fetch that waits on the network while holding SQLite's write lock
        # would stall every other writer (under gevent, the whole worker).
        self.prices = prices
        self.relay = relay
        self.sessions = sessions
        self.settings = settings
        self.after_completion = list(after_completion)

    # --- Starting a reply (in the caller's session) --------------------------------------

    def start_turn(self, conversation: Conversation, content: str,
                   images: Sequence[PreparedImage | Attachment] = (),
                   documents: Sequence[ExtractedDocument | Document] = (),
                   replacing: Message | None = None,
                   system_prompt: str = "") -> tuple[Message, Message]:
        """Save the user's message with its images and documents and a pending reply,
        then generate it; a new conversation's system prompt first, when it has one.

        Returns both messages (the user's, then the reply).

        With `replacing` (an earlier user message being edited) the new message becomes
        its sibling, under the same parent: the old version stays on a branch of its own,
        and its images and documents come along to the new one. The conversation's leaf
        moves once, to the reply.
        """
        prices = self.prices()  # before anything is written: it may wait on the network
        if system_prompt:
            tree.append(conversation, "system", system_prompt)
        parent_id = conversation.current_leaf_id
        if replacing is not None:
            parent_id = replacing.parent_id
            images = images or replacing.attachments
            documents = documents or replacing.documents
        message = self._user_message(conversation, parent_id, content, images, documents)
        return message, self._start_reply(conversation, message.id, prices)

    @staticmethod
    def _user_message(conversation: Conversation, parent_id: int | None, content: str,
                      images: Sequence[PreparedImage | Attachment],
                      documents: Sequence[ExtractedDocument | Document]) -> Message:
        return tree.insert(conversation, parent_id, "user", content, attachments=[
            Attachment(content_type=image.content_type, data=image.data, width=image.width,
                       height=image.height, byte_size=len(image.data)) for image in images],
            documents=[Document(name=document.name, kind=document.kind,
                                byte_size=document.byte_size, chars=len(document.text),
                                text=document.text) for document in documents])

    def retry(self, conversation: Conversation, reply: Message) -> Message:
        """Generate a new reply to the same history, as a sibling of `reply` (kept).

        Serves both Retry (after a failure) and Regenerate (for another version).
        """
        return self._start_reply(conversation, reply.parent_id, self.prices())

    def start_compared_turn(self, conversation: Conversation, comparison: Comparison,
                            content: str, images: Sequence[PreparedImage] = (),
                            documents: Sequence[ExtractedDocument] = ()) -> list[Message]:
        """Send a message to every column of a comparison; the replies, by column.

        The first compared turn is one user message (the fork) with one reply per model
        under it; each later turn adds, on each column's own branch, the user's message
        and that model's reply, so each model is replayed only its own thread. All of it
        is one transaction: a column whose branch is busy refuses the whole turn (Busy),
        and so does a comparison picked or ended since it was read (comparisons.Ended).
        """
        prices = self.prices()  # before anything is written: it may wait on the network
        session = tree.session_of(conversation)
        with _busy_if_taken(session):
            try:
                comparisons.hold_open(session, comparison)
            except comparisons.Ended:
                session.rollback()  # SQLite's write lock, taken by the update, goes too
                raise
            if comparison.fork_id is None:
                fork = self._user_message(conversation, conversation.current_leaf_id,
                                          content, images, documents)
                comparison.fork_id = fork.id
                parents = [fork.id] * len(comparison.columns)
            else:
                parents = [self._user_message(conversation, column.leaf_id, content,
                                              images, documents).id
                           for column in comparison.columns]
            started = [self._prepare_reply(conversation, parent_id, prices, column.model,
                                           column.position)
                       for parent_id, column in zip(parents, comparison.columns)]
            for column, (reply, _) in zip(comparison.columns, started):
                comparisons.move_column_leaf(conversation, column, reply)
            session.commit()
        for reply, ask in started:
            self._launch(reply, ask)
        return [reply for reply, _ in started]

    def retry_in_column(self, conversation: Conversation, column: ComparisonColumn,
                        reply: Message) -> Message:
        """Regenerate a column's reply with the column's model, on the column's branch
        (the other columns may be writing meanwhile)."""
        prices = self.prices()
        session = tree.session_of(conversation)
        with _busy_if_taken(session):
            new, ask = self._prepare_reply(conversation, reply.parent_id, prices,
                                           column.model, column.position)
            comparisons.move_column_leaf(conversation, column, new)
            session.commit()
        self._launch(new, ask)
        return new

    def continue_reply(self, conversation: Conversation, reply: Message) -> Message:
        """Ask the model to go on with a reply that was cut off, appending to its row."""
        prices = self.prices()  # before anything is written: it may wait on the network
        session = tree.session_of(reply)
        reply.status, reply.error, reply.error_detail = Status.PENDING, None, None
        reply.finish_reason, reply.stop_requested = None, False
        reply.heartbeat_at = utcnow()
        reply.model = conversation.model
        reply.lane = 0  # the conversation's own branch, even for a column that was picked
        reply.replayed_from_id = conversation.first_sent_id
        conversation.current_leaf_id = reply.id
        with _busy_if_taken(session):
            replay = self.history(session, reply.id, conversation.first_sent_id)
            reply.images_left_out = replay.images_left_out
            ask = self._ask(conversation, replay.messages + [
                {"role": "user", "content": CONTINUE_INSTRUCTION}], prices)
            session.commit()
        self._launch(reply, ask, continuing=True)
        return reply

    def _start_reply(self, conversation: Conversation, parent_id: int | None,
                     prices: Mapping[str, pricing.Price]) -> Message:
        session = tree.session_of(conversation)
        with _busy_if_taken(session):
            reply, ask = self._prepare_reply(conversation, parent_id, prices)
            tree.move_leaf(conversation, reply)
            session.commit()
        self._launch(reply, ask)
        return reply

    def _prepare_reply(self, conversation: Conversation, parent_id: int | None,
                       prices: Mapping[str, pricing.Price], model: str | None = None,
                       lane: int = 0) -> tuple[Message, Ask]:
        """A pending reply under parent_id (flushed, not committed) and what to ask for
        it: the conversation's model unless another is named, in the branch `lane`."""
        model = model or conversation.model
        reply = tree.insert(conversation, parent_id, "assistant", "",
                            status=Status.PENDING, model=model, lane=lane,
                            heartbeat_at=utcnow(),
                            replayed_from_id=conversation.first_sent_id)
        replay = self.history(tree.session_of(conversation), parent_id,
                              conversation.first_sent_id)
        reply.images_left_out = replay.images_left_out
        return reply, self._ask(conversation, replay.messages, prices, model)

    def _ask(self, conversation: Conversation, messages: list[dict],
             prices: Mapping[str, pricing.Price], model: str | None = None) -> Ask:
        return Ask(model or conversation.model, messages, parameters.effective(
            conversation.params, self.settings.default_params), prices)

    def history(self, session: Session, upto_id: int, from_id: int | None = None) -> Replay:
        """The messages replayed upstream: the branch from the root to `upto_id`, in order.

        Messages older than `from_id` (the conversation's first_sent_id), other than the
        system prompt, are left out. Assistant messages that produced no text (failed before the first token) are left
        out; reasoning is never replayed. A message's documents come before its text, a
        delimited block each (documents.upstream_text). A message with images is sent as
        content parts:
        the newest images whose data URLs fit max_upstream_image_bytes together; older
        ones are left out (and counted), and their bytes are never read.
        """
        rows = session.execute(_BRANCH_WITH_IMAGES, {"upto_id": upto_id}).all()
        if from_id is not None:
            rows = _from(rows, from_id)
        sent = _newest_images_within([row[3:] for row in rows if row[3] is not None],
                                     self.settings.max_upstream_image_bytes)
        data = dict(session.execute(_IMAGE_DATA, {"ids": list(sent)}).all()) if sent else {}
        documents = _documents_by_message(
            session, list(dict.fromkeys(row[0] for row in rows if row[1] == "user")))
        messages: list[dict] = []
        last_id, entry = None, {}
        for message_id, role, content, image_id, content_type, _ in rows:
            if message_id != last_id:
                content = upstream_text(content, documents.get(message_id, []))
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

    def _launch(self, reply: Message, ask: Ask, continuing: bool = False) -> threading.Thread:
        """Generate a reply in the background; continuing appends to the text it has.

        The caller yields once, so the generator sends the upstream request before the
        response to the browser is rendered.
        """
        start = {}
        if continuing:
            start = {"content": reply.content, "reasoning": reply.reasoning,
                     "usage": llm.Usage(reply.prompt_tokens, reply.completion_tokens,
                                        reply.total_tokens)}
        live = self.relay.register(reply.id, finish=self.finish, **start)
        if continuing:  # kept unless the continuation says otherwise
            live.answered_model = reply.answered_model
            live.thinking_seconds = reply.thinking_seconds
        thread = threading.Thread(target=self._run, args=(live, ask, continuing),
                                  daemon=True, name=f"reply-{reply.id}")
        thread.start()
        time.sleep(0)
        return thread

    # --- Stopping and waiting --------------------------------------------------------------

    def request_stop(self, message: Message) -> None:
        """Ask for a reply to stop; served here if this process generates it, else by its
        own, told over the reply bus (and by the stop_requested column, should the bus
        lose it)."""
        session = tree.session_of(message)
        live = self.relay.get(message.id)
        session.execute(update(Message).where(Message.id == message.id)
                        .values(stop_requested=True))
        session.commit()
        if live is not None:
            live.stop.set()
            if not self.finish(live, Status.STOPPED):  # its generator got there first
                self.wait_until_finished(message.id, STOP_WAIT_SECONDS)
        else:
            self.relay.bus.request_stop(message.id)

    def wait_until_finished(self, message_id: int, timeout: float) -> None:
        """Block until the reply generated in this process is finished, or timeout."""
        live = self.relay.get(message_id)
        deadline = time.monotonic() + timeout
        version = -1
        while live is not None and not live.finished and time.monotonic() < deadline:
            version = live.wait_for_change(version, min(1.0, deadline - time.monotonic()))

    def interrupt_all(self) -> None:
        """Save every reply this process is generating as interrupted (it is shutting
        down)."""
        for live in self.relay.live_replies():
            self.finish(live, Status.INTERRUPTED, RESTART_SENTENCE)

    # --- Generating (in the reply's thread) ----------------------------------------------

    def _run(self, live: LiveReply, ask: Ask, continuing: bool) -> None:
        """Generate the reply, then run the after-completion hooks for a new reply.

        The reply stays registered meanwhile, so waiting for a generation covers them.
        """
        try:
            try:
                self._generate(live, ask)
            except Exception as exc:  # never leave a reply "streaming" forever
                log.exception("generating message %s failed", live.message_id)
                self._fail(live, llm.LLMError(FAILED_SENTENCE, cause=repr(exc)))
            if not continuing:
                self._after_completion(live.message_id)
        finally:
            self.relay.unregister(live)

    def _after_completion(self, message_id: int) -> None:
        for hook in self.after_completion:
            with self.sessions() as session:
                try:
                    hook(session, message_id)
                except Exception:
                    log.exception("after completing message %s, %r failed", message_id, hook)

    def _generate(self, live: LiveReply, ask: Ask) -> None:
        earlier_usage, earlier_length = live.usage, len(live.content)
        # Priced as the model asked for, or (continuing a reply) the one that wrote it.
        live.price = ask.prices.get(live.answered_model or ask.model)
        budget_end = time.monotonic() + self.settings.retry_budget
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with closing(self.client.stream(ask.model, ask.messages,
                                                **ask.params)) as deltas:
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
                self.finish(live, Status.STOPPED if live.stop.is_set() else Status.COMPLETE)
                return
            except llm.LLMError as exc:
                wait = _retry_wait(exc, attempt, budget_end,
                                   len(live.content) > earlier_length)
                if wait is None:
                    self._fail(live, exc, ask.model,
                               ask.params.get(parameters.NO_FALLBACKS, False))
                    return
                log.info("upstream %s for message %s; retry %s in %.1fs",
                         type(exc).__name__, live.message_id, attempt, wait)
                live.set_notice(f"{exc.user_message} Retrying in {wait:.0f} s…")
                if live.stop.wait(wait):
                    self.finish(live, Status.STOPPED)
                    return

    def _fail(self, live: LiveReply, exc: llm.LLMError, model: str = "",
              no_fallbacks: bool = False) -> None:
        """Save the reply as failed: a sentence for people (with the time to wait when
        the API named one) and the API's own message; what else is known goes to the log
        only. With "don't substitute another model" set, a refusal says so."""
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
        self.finish(live, Status.INTERRUPTED if live.content else Status.ERROR, sentence,
                    exc.detail or None)

    # --- The final state -------------------------------------------------------------------

    def finish(self, live: LiveReply, status: str, error: str | None = None,
               detail: str | None = None) -> bool:
        """Write the reply's final state once; False if someone else already did.

        When the database refuses the reply's text, the reply ends as an error and keeps
        the text saved before. Safe from any thread: it opens a session of its own.
        """
        if not live.claim_finish():
            return False
        if status == Status.STOPPED:
            error = error or STOPPED_SENTENCE
        try:
            with self.sessions() as session:
                try:
                    _write_final(session, live, status, error, detail)
                except SQLAlchemyError:
                    session.rollback()
                    log.exception("saving the final state of message %s failed",
                                  live.message_id)
                    session.execute(_WRITE_UNSAVED, {"b_id": live.message_id,
                                                     "b_updated_at": utcnow()})
                    session.commit()
        finally:
            live.mark_finished()
            if status != Status.COMPLETE:  # no title follows: its followers need not wait
                live.mark_settled()
        return True


def _from(rows: list, from_id: int) -> list:
    """The rows of the system prompt and of the messages from `from_id` on; all of them
    when that would leave no message of the user (a branch older than the marker)."""
    kept = [row for row in rows if row[0] >= from_id or row[1] == "system"]
    return kept if any(row[1] == "user" for row in kept) else rows


def _documents_by_message(session: Session,
                          message_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """The (name, text) of the documents of these messages, by message, in order."""
    found: dict[int, list[tuple[str, str]]] = {}
    if message_ids:
        for message_id, name, text in session.execute(_DOCUMENTS, {"ids": message_ids}):
            found.setdefault(message_id, []).append((name, text))
    return found


def _newest_images_within(images: list[tuple[int, str, int]], budget: int) -> set[int]:
    """The ids of the newest images (id, content type, size) whose data URLs fit budget."""
    sent: set[int] = set()
    for image_id, content_type, byte_size in reversed(images):
        budget -= data_url_length(content_type, byte_size)
        if budget < 0:
            break
        sent.add(image_id)
    return sent


def _write_final(session: Session, live: LiveReply, status: str, error: str | None,
                 detail: str | None) -> None:
    usage = live.usage or llm.Usage()
    price = live.price if live.usage else None
    first_token, writing = live.timings()
    now = utcnow()
    session.execute(_WRITE_FINAL, {
        "b_id": live.message_id, "b_status": status, "b_content": live.content,
        "b_content_html": str(render_markdown(live.content)), "b_reasoning": live.reasoning,
        "b_error": error, "b_error_detail": detail, "b_finish_reason": live.finish_reason,
        "b_prompt_tokens": usage.prompt_tokens, "b_completion_tokens": usage.completion_tokens,
        "b_total_tokens": usage.total_tokens, "b_answered_model": live.answered_model,
        "b_input_price": price and price.input_per_token,
        "b_output_price": price and price.output_per_token,
        "b_price_currency": price and price.currency,
        "b_thinking_seconds": live.thinking_seconds, "b_first_token_seconds": first_token,
        "b_writing_seconds": writing, "b_updated_at": now})
    session.execute(_TOUCH_CONVERSATION, {"b_id": live.message_id, "b_updated_at": now})
    session.commit()


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
