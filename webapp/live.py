"""Replies being generated in this process: their latest state, waiters, and the flush.

The process that generates a reply keeps its state in memory and wakes the streams that
follow it here. A single flusher thread per process writes every live reply's partial
text to the database in one transaction per tick (STREAM_FLUSH_SECONDS), heartbeats
them, picks up stop requests made through other workers, and marks replies whose
generator died (no heartbeat for STREAM_STALE_SECONDS) as interrupted. The database
stays the source of truth; followers in other processes read it (see streaming.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Flask
from markupsafe import Markup
from sqlalchemy import Update, bindparam, or_, select, update

from .extensions import db
from .llm import Usage
from .models import ACTIVE_STATUSES, Message, Status, utcnow
from .rendering import StreamingRenderer

log = logging.getLogger(__name__)

DIED_SENTENCE = ("The reply stopped because the server handling it went away. "
                 "The text so far is kept; retry to get a full reply.")


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
    stop: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)
    _renderer: StreamingRenderer = field(default_factory=StreamingRenderer)
    _rendering: threading.Lock = field(default_factory=threading.Lock)

    def append(self, content: str = "", reasoning: str = "") -> None:
        """Add streamed text and wake the followers."""
        with self.changed:
            self.content += content
            self.reasoning += reasoning
            self.status = Status.STREAMING
            self.notice = ""
            self._bump()

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

    def _bump(self) -> None:
        self.version += 1
        self.changed.notify_all()


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

    def __init__(self, app: Flask):
        self.app = app
        self._replies: dict[int, LiveReply] = {}
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._stop_handler: Callable[[LiveReply], None] | None = None

    def register(self, message_id: int, on_stop: Callable[[LiveReply], None],
                 content: str = "", reasoning: str = "", usage: Usage | None = None,
                 ) -> LiveReply:
        """Track a reply (from its text so far, if any); on_stop finalises it when stopped."""
        live = LiveReply(message_id, content=content, reasoning=reasoning, usage=usage)
        with self._lock:
            self._replies[message_id] = live
            self._stop_handler = on_stop
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                                 name="reply-flusher")
                self._flusher.start()
        return live

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

    def get(self, message_id: int) -> LiveReply | None:
        with self._lock:
            return self._replies.get(message_id)

    def _flush_loop(self) -> None:
        interval = self.app.config["STREAM_FLUSH_SECONDS"]
        while True:
            with self._lock:
                replies = list(self._replies.values())
                if not replies:
                    self._flusher = None
                    return
            try:
                with self.app.app_context():
                    self.flush(replies)
            except Exception:  # keep flushing: the next tick may succeed
                log.exception("flushing live replies failed")
                with self.app.app_context():
                    db.session.rollback()
            threading.Event().wait(interval)

    def flush(self, replies: list[LiveReply]) -> None:
        """One transaction: partial texts, heartbeats, stop requests, dead generators.

        Two statements whatever the number of replies: one executemany for the replies
        whose text changed, one heartbeat for all of them.
        """
        now = utcnow()
        ids = [live.message_id for live in replies]
        changed, written = [], []
        for live in replies:
            version, status, content, reasoning = live.state()
            if version != live.flushed_version:
                changed.append({"b_id": live.message_id, "b_status": status,
                                "b_content": content, "b_reasoning": reasoning})
                written.append((live, version))
        if changed:
            db.session.execute(_WRITE_PARTIAL, changed)
        db.session.execute(update(Message).where(
            Message.id.in_(ids), Message.status.in_(ACTIVE_STATUSES)
        ).values(heartbeat_at=now).execution_options(synchronize_session=False))
        stop_ids = set(db.session.scalars(select(Message.id).where(
            Message.id.in_(ids), Message.stop_requested.is_(True))))
        reap_stale(self.app.config["STREAM_STALE_SECONDS"], now)
        db.session.commit()
        for live, version in written:
            live.flushed_version = version
        for live in replies:
            if live.message_id in stop_ids and not live.stop.is_set():
                live.stop.set()
                if self._stop_handler is not None:
                    self._stop_handler(live)


def heartbeat_missing(message: Message, stale_seconds: float) -> bool:
    """True when an active reply's generator has not heartbeated for stale_seconds."""
    last = message.heartbeat_at or message.created_at
    return last < utcnow() - timedelta(seconds=stale_seconds)


def reap_stale(stale_seconds: float, now=None) -> int:
    """Mark active replies without a recent heartbeat as interrupted (their worker died).

    Reads first and writes only when a reply is stale: a follower polling the database
    then never holds SQLite's write lock while it sleeps (under gevent that would block
    every other writer of the process). The caller commits. Returns how many were marked.
    """
    now = now or utcnow()
    stale = (Message.status.in_(ACTIVE_STATUSES),
             db.func.coalesce(Message.heartbeat_at, Message.created_at)
             < now - timedelta(seconds=stale_seconds))
    if db.session.scalar(select(Message.id).where(*stale).limit(1)) is None:
        return 0
    result = db.session.execute(update(Message).where(*stale)
                                .values(status=Status.INTERRUPTED, error=DIED_SENTENCE,
                                        updated_at=now)
                                .execution_options(synchronize_session=False))
    return result.rowcount or 0


def watch_for_dead_replies(app: Flask) -> threading.Thread:
    """Reap the replies of dead workers every STREAM_STALE_SECONDS / 2, even unwatched.

    Started once per server process (gunicorn.conf.py).
    """
    stale_seconds = app.config["STREAM_STALE_SECONDS"]

    def loop() -> None:
        while True:
            threading.Event().wait(stale_seconds / 2)
            try:
                with app.app_context():
                    if reaped := reap_stale(stale_seconds):
                        log.info("marked %s replies of a dead worker as interrupted", reaped)
                    db.session.commit()
            except Exception:  # try again next time
                log.exception("looking for replies of dead workers failed")

    thread = threading.Thread(target=loop, daemon=True, name="reply-reaper")
    thread.start()
    return thread
