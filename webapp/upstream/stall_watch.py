"""Under gevent, one timer per streamed response catches a stalled read, instead of one per read.

A gevent socket with a timeout starts and stops a fresh timer every time a read has to wait,
which for a streamed reply is once per chunk (about 12 us of worker CPU each, a sixth of
what reading a chunk costs). StallWatch takes the response's socket off its timeout for
the body and keeps one timer that is re-armed about once per timeout: when a single read
has waited that long, it raises socket.timeout in the reading greenlet, which urllib3 turns
into the same ReadTimeoutError the socket's own timeout gives. The socket gets its timeout
back from urllib3 on the connection's next request.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from typing import Any


class StallWatch:
    """Raises socket.timeout in the greenlet reading a response once one read waits `seconds`."""

    def __init__(self, sock: Any, seconds: float) -> None:
        self.waiting_since: float | None = None
        self._sock = sock
        self._seconds = seconds
        self._reader: Any = None
        self._loop: Any = None
        self._timer: Any = None

    @classmethod
    def take_over(cls, raw: Any, seconds: float | None) -> StallWatch | None:
        """A watch for a urllib3 response's body; None unless its socket is gevent's."""
        gevent_socket = sys.modules.get("gevent.socket")
        sock = getattr(raw.connection, "sock", None)
        if not seconds or gevent_socket is None or not isinstance(sock, gevent_socket.socket):
            return None
        return cls(sock, seconds)

    def guard(self, reads: Iterator[bytes]) -> Iterator[bytes]:
        """The chunks of `reads`, each read timed, by the greenlet that iterates them."""
        from gevent import get_hub, getcurrent

        self._reader, self._loop = getcurrent(), get_hub().loop
        self._timer = self._start_timer(self._seconds)
        self._sock.settimeout(None)
        try:
            while True:
                self.waiting_since = time.monotonic()
                chunk = next(reads, None)
                self.waiting_since = None
                if chunk is None:
                    return
                yield chunk
        finally:
            self._timer.close()

    def _start_timer(self, seconds: float) -> Any:
        timer = self._loop.timer(seconds, ref=False)
        timer.start(self._check, update=True)  # from now, not from the loop's last wake-up
        return timer

    def _check(self) -> None:
        """In the hub: raise in the reader if its current read is too old, else look again later."""
        since = self.waiting_since
        left = self._seconds if since is None else since + self._seconds - time.monotonic()
        self._timer.close()
        if left > 0:
            self._timer = self._start_timer(left)
        else:
            self._reader.throw(socket.timeout("timed out"))
