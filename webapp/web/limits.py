"""Rate limits (Flask-Limiter): messages per owner and per IP address, documents read
before sending, password tries, device link tries.

Counters live in RATELIMIT_STORAGE_URI: this process's memory by default, Redis
(redis://...) when several workers or instances must share them. Every attempt to send
counts, and is counted before anything else is done with it: a message refused for its
input (empty, too long, not an image, a reply still being written) or by the limit itself
uses up the budget as an accepted one does, so refusals cannot be repeated for free, and a
request over the limit is answered before its form, images or text are looked at.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, current_app
from flask_limiter.util import get_remote_address

from ..extensions import limiter
from .owner import current_owner_id


def _per_minute(setting: str) -> Callable[[], str]:
    return lambda: f"{current_app.config[setting]}/minute"


def sends_messages(view=None, *, replies: Callable[[], int] | int = 1):
    """Decorate a view that starts replies: each attempt counts against the owner's and the
    IP's per-minute budgets, shared by every such view, before the view runs; it counts
    as many times as it asks for replies (`replies`, or what it returns for the request:
    a comparison asks one per model). Used bare or as sends_messages(replies=...)."""
    def decorate(view):
        per_ip = limiter.shared_limit(_per_minute("MESSAGES_PER_MINUTE_PER_IP"),
                                      scope="messages-per-ip", key_func=get_remote_address,
                                      cost=replies)
        per_owner = limiter.shared_limit(_per_minute("MESSAGES_PER_MINUTE_PER_OWNER"),
                                         scope="messages-per-owner",
                                         key_func=current_owner_id, cost=replies)
        return per_owner(per_ip(view))
    return decorate if view is None else decorate(view)


def checks_documents(view):
    """Decorate the view that reads a chosen document before it is sent: per browser and
    per IP, as many reads a minute as the messages each may send could carry
    (MAX_DOCUMENTS each); the IP's budget holds for a client that drops its cookie."""
    per_ip = limiter.limit(_documents_per_minute("MESSAGES_PER_MINUTE_PER_IP"),
                           key_func=get_remote_address, scope="document-checks-per-ip")
    per_owner = limiter.limit(_documents_per_minute("MESSAGES_PER_MINUTE_PER_OWNER"),
                              key_func=current_owner_id, scope="document-checks")
    return per_owner(per_ip(view))


def _documents_per_minute(messages_setting: str) -> Callable[[], str]:
    def per_minute() -> str:
        config = current_app.config
        return f"{config[messages_setting] * max(1, config['MAX_DOCUMENTS'])}/minute"
    return per_minute


def tries_password(view):
    """Decorate the access password form: wrong tries per IP address are limited."""
    return limiter.limit(_per_minute("PASSWORD_TRIES_PER_MINUTE"), key_func=get_remote_address,
                         methods=["POST"],
                         deduct_when=lambda response: response.status_code != 303)(view)


def tries_device_links(view):
    """Decorate the page that uses a device link: links that do not work (unknown, used,
    expired, revoked) are limited per IP address."""
    return limiter.limit(_per_minute("DEVICE_LINK_TRIES_PER_MINUTE"),
                         key_func=get_remote_address,
                         deduct_when=lambda response: response.status_code in (404, 410))(view)


def retry_after_seconds() -> int:
    """Whole seconds until the limit this request ran into lets it through again."""
    limit = limiter.current_limit
    if limit is None:
        return 60
    reset_at = limit.window[0]  # when the window lets the next request through
    return max(1, math.ceil(reset_at - time.time()))


def slow_down_sentence(what: str) -> str:
    """What to tell someone who ran into a limit, e.g. what="too many messages"."""
    return f"Slow down: {what} in a minute. Try again in {retry_after_seconds()} s."


def init_app(app: Flask) -> None:
    """Bind the limiter; a storage outage lets requests through rather than failing them."""
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
