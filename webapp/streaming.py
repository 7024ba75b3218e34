"""Follows a reply from its current state to its end, for the server-sent event stream.

A follower in the process that generates the reply waits on its in-memory state; any
other follower (another worker or instance) reads the database row every
STREAM_POLL_SECONDS. Either way a stream always starts from the current state, so a
reconnect or a reload picks up where the reply is, never from the beginning.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import current_app
from sqlalchemy.orm import joinedload, lazyload

from .extensions import db
from .live import Snapshot, heartbeat_missing, reap_stale
from .models import Message
from .rendering import render_markdown

THROTTLE_SECONDS = 0.05  # at most 20 updates a second per stream, fewer under load
KEEPALIVE_SECONDS = 15.0
# How long the end of a first reply waits for the conversation's title, so that the final
# event carries it (titles.py); past this it goes with the title as it is.
TITLE_WAIT_SECONDS = 10.0


def follow(message_id: int) -> Iterator[Snapshot | Message | None]:
    """Snapshots while the reply is written, None as a keep-alive, the Message at the end
    (loaded with its conversation, which the final event shows; when this process writes
    the reply, once its title is written too)."""
    relay = current_app.extensions["relay"]
    while True:
        live = relay.get(message_id)
        if live is not None:
            yield from _follow_live(live)
            break
        if not (yield from _poll_database(message_id)):
            break
    db.session.rollback()
    yield db.session.get(Message, message_id, populate_existing=True,
                         options=[lazyload(Message.attachments),
                                  joinedload(Message.conversation)])


def _follow_live(live) -> Iterator[Snapshot | None]:
    version = -1
    while True:
        new_version = live.wait_for_change(version, KEEPALIVE_SECONDS)
        if live.finished:
            live.wait_until_settled(TITLE_WAIT_SECONDS)
            return
        if new_version == version:
            yield None
            continue
        started = time.perf_counter()
        snapshot = live.snapshot()
        version = snapshot.version
        yield snapshot
        if snapshot.content or snapshot.reasoning:  # the first token goes out at once
            # Under load, rendering and sending take longer: space updates out to match.
            time.sleep(max(THROTTLE_SECONDS, 2 * (time.perf_counter() - started)))


def _poll_database(message_id: int):
    """Yield database snapshots until the reply ends (False) or turns up live here (True)."""
    config = current_app.config
    relay = current_app.extensions["relay"]
    last_seen = None
    idle_since = time.monotonic()
    while relay.get(message_id) is None:
        db.session.rollback()
        message = db.session.get(Message, message_id, populate_existing=True,
                                 options=[lazyload(Message.attachments)])
        if message is None or not message.is_active:
            return False
        stale_seconds = config["STREAM_STALE_SECONDS"]
        if heartbeat_missing(message, stale_seconds) and reap_stale(stale_seconds):
            db.session.commit()
            continue
        state = (message.status, message.content, message.reasoning)
        if state != last_seen:
            last_seen, idle_since = state, time.monotonic()
            yield Snapshot(message.id, message.status, message.content, message.reasoning,
                           notice="", version=0, tail_html=render_markdown(message.content))
        elif time.monotonic() - idle_since > KEEPALIVE_SECONDS:
            idle_since = time.monotonic()
            yield None
        time.sleep(config["STREAM_POLL_SECONDS"])
    return True
