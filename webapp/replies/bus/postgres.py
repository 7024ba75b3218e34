"""The reply bus on PostgreSQL: NOTIFY to publish, one LISTEN connection per process.

Each process opens two connections of its own (autocommit, outside the app's pool): one
that listens, one that publishes. A NOTIFY payload must stay under 8000 bytes; larger
changes go as wake-ups (see bus/__init__.py). Notifications reach every instance that uses
the database, so several instances behind one load balancer follow each other's replies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from . import CHECK_SECONDS

CHANNEL = "reply_bus"


def libpq_url(sqlalchemy_url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL (no +driver), password included."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class NotifyTransport:
    """LISTEN/NOTIFY on one channel of the app's database."""

    max_payload = 7900  # NOTIFY refuses 8000 bytes and more

    def __init__(self, sqlalchemy_url: str) -> None:
        self._url = libpq_url(sqlalchemy_url)
        self._sender: psycopg.Connection | None = None
        self._sending = threading.Lock()

    def send(self, payloads: list[str]) -> None:
        """One round trip for all the payloads (a pipeline)."""
        with self._sending:
            if self._sender is None or self._sender.closed:
                self._sender = psycopg.connect(self._url, autocommit=True)
            try:
                with self._sender.cursor() as cursor:
                    cursor.executemany("SELECT pg_notify(%s, %s)",
                                       [(CHANNEL, payload) for payload in payloads])
            except psycopg.OperationalError:
                self._sender.close()  # reconnect on the next send
                raise

    def close(self) -> None:
        with self._sending:
            if self._sender is not None:
                self._sender.close()

    def listen(self, deliver: Callable[[str], None], ready: threading.Event,
               closed: threading.Event) -> None:
        with psycopg.connect(self._url, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            ready.set()
            while not closed.is_set():
                for notification in connection.notifies(timeout=CHECK_SECONDS):
                    deliver(notification.payload)
