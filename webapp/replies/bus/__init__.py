"""The reply bus: carries replies' changes and stop requests between the app's processes.

One interface, one transport per deployment, picked from the database URL (for_database):

* PostgreSQL: LISTEN/NOTIFY on the database itself (bus/postgres.py);
* SQLite file: Unix datagram sockets, one per process, next to the file (bus/unix.py);
* anything else (an in-memory database): this process only (bus/local.py).

The process generating a reply publishes what changed (text appended at an offset, status,
notice, the end); a process following that reply for an event stream keeps a mirror of it
(FollowedReply), shared by its followers there. A payload that would be too large for the
transport becomes a wake-up, and a follower that sees a gap in the offsets, a wake-up, or
nothing for STREAM_POLL_SECONDS reads the row: the database stays the truth, so a lost
message delays a follower but never loses text.

A new follower, and one still behind after reading the row (the row lags the bus by up
to a flush), asks the generating process to write the reply's row now ("sync"); it is
then woken with the reply's status and notice (which the row does not hold).

Payloads are text: ``"<message id> <json change>"``, ``"stop <message id>"`` or ``"sync
<message id>"``, so a process parses only the changes of the replies it follows.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from sqlalchemy.engine import make_url

from ...conversations.rendering import StreamingRenderer
from ..live import LiveReply

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0
CHECK_SECONDS = 1.0  # how often a listening transport looks whether the bus was closed
READY_SECONDS = 2.0  # how long the first user of the bus waits until it listens
SYNC_SECONDS = 0.25  # how often a follower behind the row asks the generator to write it
MAX_AHEAD = 1000  # pieces of text a mirror keeps while it waits for the row to fill a gap


class Transport(Protocol):
    """How payloads travel between processes."""

    max_payload: int  # bytes of UTF-8 a payload may have

    def send(self, payloads: list[str]) -> None:
        """Deliver payloads to every process of the app (losing some is allowed)."""

    def listen(self, deliver: Callable[[str], None], ready: threading.Event,
               closed: threading.Event) -> None:
        """Set ready once listening, then call deliver for each payload received until
        closed is set (looking at least every CHECK_SECONDS); raise when it fails."""

    def close(self) -> None:
        """Release what sending holds (a socket, a connection)."""


class FollowedReply(LiveReply):
    """A mirror of a reply generated in another process, kept from the bus and the row.

    Text that arrives ahead of what the mirror holds (a message before it was lost, or
    came before this process listened) waits until the row fills the gap.
    """

    def __init__(self, message_id: int) -> None:
        super().__init__(message_id)
        self.known = {"content": 0, "reasoning": 0}  # lengths the bus has announced
        self._ahead: dict[str, dict[int, str]] = {"content": {}, "reasoning": {}}
        self.woken = False
        self._synced_at = float("-inf")

    @property
    def behind(self) -> bool:
        """True when the bus announced more than the mirror holds: read the row."""
        with self.changed:
            return self.woken or any(len(getattr(self, name)) < length
                                     for name, length in self.known.items())

    def apply(self, change: dict) -> None:
        """Take one change from the bus."""
        with self.changed:
            for name, offset, added in (("content", "o", "c"), ("reasoning", "ro", "r")):
                if added in change:
                    self._take(name, change[offset], change[added])
            self.status = change.get("s", self.status)
            self.notice = change.get("n", self.notice)
            self.woken = self.woken or bool(change.get("wake"))
            self.finished = self.finished or bool(change.get("end"))
            self._bump()

    def catch_up(self, status: str, content: str, reasoning: str) -> None:
        """Take the row's state where it holds more than the mirror."""
        with self.changed:
            self.woken = False
            if len(content) <= len(self.content) and len(reasoning) <= len(self.reasoning):
                return
            if not content.startswith(self.content):
                self._renderer = StreamingRenderer()  # not a continuation: render anew
            self.content = max(content, self.content, key=len)
            self.reasoning = max(reasoning, self.reasoning, key=len)
            self.status = status
            self._settle("content")
            self._settle("reasoning")
            self._bump()

    def wants_sync(self, now: float) -> bool:
        """True the first time, then when the mirror is behind the row as well, at most
        every SYNC_SECONDS."""
        first = self._synced_at == float("-inf")
        if not first and (now - self._synced_at < SYNC_SECONDS or not self.behind):
            return False
        self._synced_at = now
        return True

    def _take(self, name: str, offset: int, added: str) -> None:
        self.known[name] = max(self.known[name], offset + len(added))
        if len(self._ahead[name]) < MAX_AHEAD:
            self._ahead[name][offset] = added
        self._settle(name)

    def _settle(self, name: str) -> None:
        """Append the waiting pieces that now follow on; forget the ones already held."""
        text, ahead = getattr(self, name), self._ahead[name]
        for offset in sorted(ahead):
            if offset > len(text):
                break
            added = ahead.pop(offset)
            text += added[len(text) - offset:]
        setattr(self, name, text)


def encode_change(message_id: int, change: dict, max_payload: int) -> str:
    """A change as a payload, or a wake-up when it would exceed max_payload bytes."""
    payload = f"{message_id} {json.dumps(change, ensure_ascii=False, separators=(',', ':'))}"
    if len(payload.encode()) <= max_payload:
        return payload
    wake = {"wake": True} | {key: change[key] for key in ("s", "end") if key in change}
    return f"{message_id} {json.dumps(wake)}"


class ReplyBus:
    """Publishes this process's replies, follows other processes' ones, relays stops."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._lock = threading.Lock()
        self._followed: dict[int, tuple[FollowedReply, int]] = {}
        self._dirty: dict[int, LiveReply] = {}
        self._has_news = threading.Event()
        self._handlers: dict[str, Callable[[int], None]] = {}
        self._started = False
        self._closed = threading.Event()
        self._ready = threading.Event()

    def start(self, **handlers: Callable[[int], None]) -> None:
        """Start listening and publishing (once, waiting up to READY_SECONDS until this
        process listens); handlers (on_stop, on_sync) get those requests' message ids."""
        with self._lock:
            self._handlers.update(handlers)
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._listen_loop, daemon=True, name="reply-bus-in").start()
        threading.Thread(target=self._publish_loop, daemon=True, name="reply-bus-out").start()
        self._ready.wait(READY_SECONDS)

    def close(self) -> None:
        """Stop listening and publishing (the threads end within CHECK_SECONDS)."""
        self._closed.set()
        self._has_news.set()

    def publish(self, live: LiveReply) -> None:
        """Note that a reply generated here changed; sent soon, coalesced with later changes."""
        with self._lock:
            self._dirty[live.message_id] = live
        self._has_news.set()

    def request_stop(self, message_id: int) -> None:
        """Ask whichever process generates the reply to stop it now (the flusher reads
        the stop_requested column too, should this be lost)."""
        self._send(f"stop {message_id}")

    def request_sync(self, message_id: int) -> None:
        """Ask whichever process generates the reply to write its row now, then wake."""
        self._send(f"sync {message_id}")

    def wake(self, message_id: int, status: str, notice: str) -> None:
        """Tell the followers of a reply to read its row, and its status and notice."""
        self._send(encode_change(message_id, {"wake": True, "s": status, "n": notice},
                                 self.transport.max_payload))

    def _send(self, payload: str) -> None:
        self.start()
        try:
            self.transport.send([payload])
        except Exception:  # followers and the flusher fall back on the database
            log.exception("sending on the reply bus failed")

    @contextmanager
    def follow(self, message_id: int) -> Iterator[FollowedReply]:
        """A mirror of a reply generated elsewhere, updated from the bus while in use."""
        self.start()
        with self._lock:
            mirror, users = self._followed.get(message_id) or (FollowedReply(message_id), 0)
            self._followed[message_id] = (mirror, users + 1)
        try:
            yield mirror
        finally:
            with self._lock:
                mirror, users = self._followed[message_id]
                if users > 1:
                    self._followed[message_id] = (mirror, users - 1)
                else:
                    del self._followed[message_id]

    def deliver(self, payload: str) -> None:
        """Hand one received payload to the mirror it concerns, or to the stop handler."""
        head, _, body = payload.partition(" ")
        if head in ("stop", "sync"):
            if handler := self._handlers.get(f"on_{head}"):
                handler(int(body))
            return
        with self._lock:
            followed = self._followed.get(int(head))
        if followed is not None:
            followed[0].apply(json.loads(body))

    def _listen_loop(self) -> None:
        while not self._closed.is_set():
            try:
                self.transport.listen(self.deliver, self._ready, self._closed)
            except Exception as error:  # followers catch up from the database meanwhile
                if not self._closed.is_set():
                    log.warning("listening on the reply bus failed (%s); again in %s s",
                                error, RECONNECT_SECONDS)
            self._closed.wait(RECONNECT_SECONDS)

    def _publish_loop(self) -> None:
        while True:
            self._has_news.wait()
            self._has_news.clear()
            if self._closed.is_set():
                self.transport.close()
                return
            with self._lock:
                dirty, self._dirty = self._dirty, {}
            payloads = [encode_change(live.message_id, change, self.transport.max_payload)
                        for live in dirty.values() if (change := live.take_change())]
            if not payloads:
                continue
            try:
                self.transport.send(payloads)
            except Exception:  # followers catch up from the database
                log.exception("publishing on the reply bus failed")


def for_database(url: str) -> ReplyBus:
    """The bus that reaches every process using the database at this SQLAlchemy URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        from .postgres import NotifyTransport

        return ReplyBus(NotifyTransport(url))
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") \
            and hasattr(socket, "AF_UNIX"):
        from .unix import DatagramTransport

        return ReplyBus(DatagramTransport.for_database(database))
    from .local import LocalTransport

    return ReplyBus(LocalTransport())
