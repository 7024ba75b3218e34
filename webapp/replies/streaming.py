"""Follows a reply from its current state to its end, for the server-sent event stream.

A follower in the process that generates the reply waits on its in-memory state. Any
other follower (another worker or instance) waits on a mirror of it kept by the reply
bus (webapp/bus), which it fills from the database row first, and again whenever the bus
lost something or stayed silent for STREAM_POLL_SECONDS. Either way a stream always
starts from the current state, so a reconnect or a reload picks up where the reply is,
never from the beginning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from flask import current_app
from sqlalchemy.orm import joinedload, lazyload

from ..conversations.models import Message
from ..extensions import db
from .live import LiveReply, Snapshot, heartbeat_missing, reap_stale

THROTTLE_SECONDS = 0.05  # at most 20 updates a second per stream, fewer under load
KEEPALIVE_SECONDS = 15.0
# How long the end of a first reply waits for the conversation's title, so that the final
# event carries it (titles.py); past this it goes with the title as it is.
TITLE_WAIT_SECONDS = 10.0


def follow(message_id: int) -> Iterator[Snapshot | Message | None]:
    """Snapshots while the reply is written, None as a keep-alive, the Message at the end
    (loaded with its conversation, which the final event shows; when this process writes
    the reply, once its title is written too)."""
    live = current_app.extensions["relay"].get(message_id)
    if live is not None:
        yield from _follow(live)
    else:
        with current_app.extensions["bus"].follow(message_id) as mirror:
            yield from _follow(mirror, lambda: _catch_up(mirror),
                               current_app.config["STREAM_POLL_SECONDS"])
    db.session.rollback()
    yield db.session.get(Message, message_id, populate_existing=True,
                         options=[lazyload(Message.attachments), lazyload(Message.documents),
                                  joinedload(Message.conversation)])


def _follow(reply: LiveReply, catch_up: Callable[[], bool] | None = None,
            poll_seconds: float = KEEPALIVE_SECONDS) -> Iterator[Snapshot | None]:
    """Snapshots of a reply as it changes, until it finishes.

    catch_up, when given, brings the reply up to date from the database and says whether
    it is still being written; it runs first, after poll_seconds without news, and every
    THROTTLE_SECONDS while the reply is behind (the row may lag behind the bus).
    """
    version, last_news, last_read = -1, float("-inf"), float("-inf")
    last_sent = time.monotonic()
    while True:
        behind = catch_up is not None and reply.behind
        now = time.monotonic()
        if catch_up is not None and (now - last_news >= poll_seconds
                                     or behind and now - last_read >= THROTTLE_SECONDS):
            if not catch_up():
                return
            last_news = last_read = now
        new_version = reply.wait_for_change(version,
                                            THROTTLE_SECONDS if behind else poll_seconds)
        if reply.finished:
            if catch_up is None:  # written here: the final event waits for its title
                reply.wait_until_settled(TITLE_WAIT_SECONDS)
            return
        if new_version == version:
            if catch_up is None or time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield None
            continue
        started, last_news = time.perf_counter(), time.monotonic()
        snapshot = reply.snapshot()
        version = snapshot.version
        yield snapshot
        last_sent = time.monotonic()
        if snapshot.content or snapshot.reasoning:  # the first token goes out at once
            # Under load, rendering and sending take longer: space updates out to match.
            time.sleep(max(THROTTLE_SECONDS, 2 * (time.perf_counter() - started)))


def _catch_up(mirror) -> bool:
    """Fill a mirror from the reply's row; False once the reply is no longer written."""
    stale_seconds = current_app.config["STREAM_STALE_SECONDS"]
    db.session.rollback()
    message = db.session.get(Message, mirror.message_id, populate_existing=True,
                             options=[lazyload(Message.attachments),
                                      lazyload(Message.documents)])
    if message is not None and message.is_active and heartbeat_missing(message,
                                                                       stale_seconds):
        if reap_stale(db.session, stale_seconds):
            db.session.commit()
            return False
    if message is None or not message.is_active:
        return False
    mirror.catch_up(message.status, message.content, message.reasoning)
    if mirror.wants_sync(time.monotonic()):
        current_app.extensions["bus"].request_sync(mirror.message_id)
    return True
