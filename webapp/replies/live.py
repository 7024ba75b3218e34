"""Replies being generated in this process: their latest state, waiters, and liveness.

The process that generates a reply keeps its state in memory, wakes the streams that
follow it here, and publishes each change on the reply bus (webapp/bus) for the streams
served by other processes. Liveness is kept apart from the bus: a single flusher thread
per process writes every live reply's partial text to the database once per tick
(STREAM_FLUSH_SECONDS), in one statement, or reply by reply when the database refuses
one of them; it heartbeats them, picks up stop requests whose message on the bus was
lost (the stop_requested column), and marks replies whose generator died (no heartbeat
for STREAM_STALE_SECONDS) as interrupted. The database stays the source of truth.

Nothing here needs Flask: the relay is built in the app factory with the bus, a session
factory of its own (its threads are not requests) and its timings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from markupsafe import Markup
from sqlalchemy import Update, bindparam, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..conversations.models import ACTIVE_STATUSES, Message, Status, utcnow
from ..conversations.pricing import Price
from ..conversations.rendering import StreamingRenderer
from ..upstream.llm import Usage

log = logging.getLogger(__name__)

DIED_SENTENCE = ("The reply stopped because the server handling it went away. "
                 "The text so far is kept; retry to get a full reply.")
UNSAVED_SENTENCE = ("The reply stopped because the database refused to save its text. "
                    "What was saved before is kept; retry to get a full reply.")

# Finishes a reply once (GenerationService.finish): the reply, its final status, an error
# sentence.
Finisher = Callable[["LiveReply", str, "str | None"], bool]


@dataclass
class Snapshot:
    """What a follower renders: the fields of a Message the templates read, and its HTML.

    The HTML is ``blocks[:block_count]`` (finished Markdown blocks, a list shared with the
    reply's renderer, which only ever appends to it) followed by ``tail_html``.
    """

    id: int
    status: str
    content: str
    reasoning: str
    notice: str
    version: int
    blocks: Sequence[str] = ()
    block_count: int = 0
    tail_html: Markup = Markup("")
    role: str = "assistant"
    error: str | None = None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def finished_html(self) -> Markup:
        """The HTML of the finished blocks (trusted: made by render_markdown)."""
        return Markup("".join(self.blocks[:self.block_count]))


@dataclass
class LiveReply:
    """The in-memory state of one reply being generated."""

    message_id: int
    status: str = Status.PENDING
    content: str = ""
    reasoning: str = ""
    notice: str = ""
    version: int = 0
    claimed: bool = False
    finished: bool = False
    settled: bool = False  # finished, and what follows the reply (its title) written too
    flushed_version: int = -1
    finish_reason: str | None = None
    usage: Usage | None = None
    answered_model: str | None = None  # as the server names it
    price: Price | None = None  # the price per token of the model that answers
    reasoning_started: float | None = None  # time.monotonic() of the first reasoning
    thinking_seconds: float | None = None  # first reasoning to first content
    started: float = field(default_factory=time.monotonic)  # registered (request made)
    first_token_at: float | None = None  # time.monotonic() of the first token
    stop: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)
    on_change: Callable[[LiveReply], None] | None = None  # publishes on the bus
    _published: tuple[int, int, str, str] = (0, 0, "", "")  # lengths, status, notice
    _renderer: StreamingRenderer = field(default_factory=StreamingRenderer)
    _rendering: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._published = (len(self.content), len(self.reasoning), "", "")

    def append(self, content: str = "", reasoning: str = "") -> None:
        """Add streamed text and wake the followers."""
        with self.changed:
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            self.content += content
            self.reasoning += reasoning
            self.status = Status.STREAMING
            self.notice = ""
            self._bump()

    def timings(self) -> tuple[float | None, float | None]:
        """Seconds from the request to the first token, and from there to now."""
        if self.first_token_at is None:
            return None, None
        return self.first_token_at - self.started, time.monotonic() - self.first_token_at

    def set_notice(self, notice: str) -> None:
        """Say something about the wait (a retry, a rate limit) to the followers."""
        with self.changed:
            self.notice = notice
            self._bump()

    def claim_finish(self) -> bool:
        """True for the one caller that gets to write the final state."""
        with self.changed:
            if self.claimed:
                return False
            self.claimed = True
            return True

    def mark_finished(self) -> None:
        """The final state is in the database: release the followers."""
        with self.changed:
            self.finished = True
            self._bump()

    def mark_settled(self) -> None:
        """Nothing more will be written after the reply (see generation._run)."""
        with self.changed:
            self.settled = True
            self.changed.notify_all()

    def wait_until_settled(self, timeout: float) -> None:
        """Block until mark_settled, or timeout."""
        with self.changed:
            self.changed.wait_for(lambda: self.settled, timeout)

    def wait_for_change(self, seen_version: int, timeout: float) -> int:
        """Block until the version moves past seen_version or timeout; the new version."""
        with self.changed:
            if self.version == seen_version and not self.finished:
                self.changed.wait(timeout)
            return self.version

    def state(self) -> tuple[int, str, str, str]:
        """A consistent (version, status, content, reasoning), rendering nothing."""
        with self.changed:
            return self.version, self.status, self.content, self.reasoning

    def snapshot(self) -> Snapshot:
        """A consistent copy of the state and its HTML, rendered once per new text.

        Every follower of the reply shares the rendering: the finished blocks are rendered
        once per reply, the unfinished tail once per change of the text.
        """
        with self._rendering:
            with self.changed:
                version, content, reasoning = self.version, self.content, self.reasoning
                status, notice = self.status, self.notice
            renderer = self._renderer
            renderer.feed(content)
            return Snapshot(self.message_id, status, content, reasoning, notice, version,
                            renderer.blocks, len(renderer.blocks), renderer.tail_html)

    def take_change(self) -> dict | None:
        """What changed since the last call, for the bus: appended text with its offset
        ("o", "c"; "ro", "r" for reasoning), status ("s"), notice ("n"), the end ("end")."""
        with self.changed:
            content_at, reasoning_at, status, notice = self._published
            change: dict = {}
            if len(self.content) > content_at:
                change |= {"o": content_at, "c": self.content[content_at:]}
            if len(self.reasoning) > reasoning_at:
                change |= {"ro": reasoning_at, "r": self.reasoning[reasoning_at:]}
            if (self.status, self.notice) != (status, notice):
                change |= {"s": self.status, "n": self.notice}
            if self.finished:
                change["end"] = True
            self._published = (len(self.content), len(self.reasoning), self.status,
                               self.notice)
            return change or None

    def _bump(self) -> None:
        self.version += 1
        self.changed.notify_all()
        if self.on_change is not None:
            self.on_change(self)


def update_while_active(**values) -> Update:
    """An UPDATE of the reply with id :b_id that applies only while it is still active,
    so nothing is ever written over its final state. Built once, run with bound values.

    The statuses are ORed, not IN (...): an IN list is an expanding parameter, which
    SQLAlchemy refuses in the flusher's executemany of several replies.
    """
    messages = Message.__table__
    return (update(messages)
            .where(messages.c.id == bindparam("b_id"),
                   or_(*(messages.c.status == status for status in ACTIVE_STATUSES)))
            .values(**values))


# A reply's partial text.
_WRITE_PARTIAL = update_while_active(content=bindparam("b_content"),
                                     reasoning=bindparam("b_reasoning"),
                                     status=bindparam("b_status"))


class Relay:
    """The registry of this process's live replies and the thread that flushes them."""

    def __init__(self, bus, sessions: sessionmaker, flush_seconds: float,
                 stale_seconds: float):
        """bus: the reply bus (webapp/bus); sessions: database sessions for the relay's
        threads; flush_seconds: the flusher's tick; stale_seconds: how long a reply may
        go without a heartbeat before it counts as dead."""
        self.bus = bus
        self.sessions = sessions
        self.flush_seconds = flush_seconds
        self.stale_seconds = stale_seconds
        self._replies: dict[int, LiveReply] = {}
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._finish: Finisher | None = None

    def register(self, message_id: int, finish: Finisher, content: str = "",
                 reasoning: str = "", usage: Usage | None = None) -> LiveReply:
        """Track a reply (from its text so far, if any) and publish its changes; finish
        writes its final state when it is stopped or cannot be saved."""
        live = LiveReply(message_id, content=content, reasoning=reasoning, usage=usage,
                         on_change=self.bus.publish)
        self.listen()
        with self._lock:
            self._replies[message_id] = live
            self._finish = finish
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                                 name="reply-flusher")
                self._flusher.start()
        return live

    def listen(self) -> None:
        """Take stop and sync requests from the bus (starting it, if need be)."""
        self.bus.start(on_stop=self.stop_requested, on_sync=self.sync_requested)

    def unregister(self, live: LiveReply) -> None:
        """Forget a reply, unless a newer generation of it (Continue) took its place; its
        followers are released."""
        with self._lock:
            if self._replies.get(live.message_id) is live:
                del self._replies[live.message_id]
        live.mark_settled()

    def live_replies(self) -> list[LiveReply]:
        with self._lock:
            return list(self._replies.values())

    @property
    def idle(self) -> bool:
        """True when no reply is generated in this process and the flusher has stopped."""
        with self._lock:
            return not self._replies and self._flusher is None

    def get(self, message_id: int) -> LiveReply | None:
        with self._lock:
            return self._replies.get(message_id)

    def stop_requested(self, message_id: int) -> None:
        """A stop request came over the bus: stop the reply now if it is generated here."""
        live = self.get(message_id)
        if live is not None and not live.stop.is_set():
            threading.Thread(target=self._end, args=(live, Status.STOPPED), daemon=True,
                             name=f"reply-stop-{message_id}").start()

    def sync_requested(self, message_id: int) -> None:
        """A follower elsewhere is behind the row: write this reply's row now, then wake."""
        if (live := self.get(message_id)) is not None:
            threading.Thread(target=self._sync, args=(live,), daemon=True,
                             name=f"reply-sync-{message_id}").start()

    def _sync(self, live: LiveReply) -> None:
        with self.sessions() as session:
            self._write_partials(session, [live])
        self.bus.wake(live.message_id, live.status, live.notice)

    def _end(self, live: LiveReply, status: str, error: str | None = None) -> None:
        """Stop generating a reply and write its final state (in a thread of its own)."""
        live.stop.set()
        if self._finish is not None:
            self._finish(live, status, error)

    def _flush_loop(self) -> None:
        while True:
            with self._lock:
                replies = list(self._replies.values())
                if not replies:
                    self._flusher = None
                    return
            try:
                self.flush(replies)
            except Exception:  # keep flushing: the next tick may succeed
                log.exception("flushing live replies failed")
            threading.Event().wait(self.flush_seconds)

    def flush(self, replies: list[LiveReply]) -> None:
        """Partial texts, then one transaction: heartbeats, stop requests, dead generators.

        Three statements whatever the number of replies: one executemany for the replies
        whose text changed, one heartbeat for all of them, one read of stop requests.
        """
        with self.sessions() as session:
            self._write_partials(session, replies)
            now = utcnow()
            ids = [live.message_id for live in replies]
            session.execute(update(Message).where(
                Message.id.in_(ids), Message.status.in_(ACTIVE_STATUSES)
            ).values(heartbeat_at=now).execution_options(synchronize_session=False))
            stop_ids = set(session.scalars(select(Message.id).where(
                Message.id.in_(ids), Message.stop_requested.is_(True))))
            reap_stale(session, self.stale_seconds, now)
            session.commit()
        for live in replies:
            if live.message_id in stop_ids and not live.stop.is_set():
                self._end(live, Status.STOPPED)

    def watch_for_dead_replies(self) -> threading.Thread:
        """Reap the replies of dead workers every stale_seconds / 2, even unwatched.

        Started once per server process (gunicorn.conf.py).
        """

        def loop() -> None:
            while True:
                threading.Event().wait(self.stale_seconds / 2)
                try:
                    with self.sessions() as session:
                        if reaped := reap_stale(session, self.stale_seconds):
                            log.info("marked %s replies of a dead worker as interrupted",
                                     reaped)
                        session.commit()
                except Exception:  # try again next time
                    log.exception("looking for replies of dead workers failed")

        thread = threading.Thread(target=loop, daemon=True, name="reply-reaper")
        thread.start()
        return thread

    def _write_partials(self, session: Session, replies: list[LiveReply]) -> None:
        """Write the replies whose text changed: all at once, or, when the database
        refuses the batch, one by one, so one reply it refuses never holds back the
        others. A refused reply is ended with what was saved of it before."""
        changed = []
        for live in replies:
            version, status, content, reasoning = live.state()
            if version != live.flushed_version:
                changed.append((live, version, {"b_id": live.message_id, "b_status": status,
                                                "b_content": content,
                                                "b_reasoning": reasoning}))
        if not changed:
            return
        try:
            session.execute(_WRITE_PARTIAL, [row for _, _, row in changed])
            session.commit()
        except SQLAlchemyError:
            session.rollback()
            log.warning("writing %s partial replies at once failed; writing each alone",
                        len(changed))
            changed = [entry for entry in changed if self._write_partial(session, *entry)]
        for live, version, _ in changed:
            live.flushed_version = version

    def _write_partial(self, session: Session, live: LiveReply, version: int,
                       row: dict) -> bool:
        try:
            session.execute(_WRITE_PARTIAL, row)
            session.commit()
            return True
        except SQLAlchemyError:
            session.rollback()
            log.exception("the database refused the text of message %s", live.message_id)
            self._end(live, Status.ERROR, UNSAVED_SENTENCE)
            return False


def heartbeat_missing(message: Message, stale_seconds: float) -> bool:
    """True when an active reply's generator has not heartbeated for stale_seconds."""
    last = message.heartbeat_at or message.created_at
    return last < utcnow() - timedelta(seconds=stale_seconds)


def reap_stale(session: Session, stale_seconds: float, now=None) -> int:
    """Mark active replies without a recent heartbeat as interrupted (their worker died).

    Reads first and writes only when a reply is stale: a follower polling the database
    then never holds SQLite's write lock while it sleeps (under gevent that would block
    every other writer of the process). The caller commits. Returns how many were marked.
    """
    now = now or utcnow()
    stale = (Message.status.in_(ACTIVE_STATUSES),
             func.coalesce(Message.heartbeat_at, Message.created_at)
             < now - timedelta(seconds=stale_seconds))
    if session.scalar(select(Message.id).where(*stale).limit(1)) is None:
        return 0
    result = session.execute(update(Message).where(*stale)
                             .values(status=Status.INTERRUPTED, error=DIED_SENTENCE,
                                     updated_at=now)
                             .execution_options(synchronize_session=False))
    return result.rowcount or 0
