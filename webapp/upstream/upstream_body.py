"""The bytes of a streamed upstream response as they arrive, read in batches once a reply runs.

A model's reply comes as one small HTTP chunk per token, and a read that has to wait for
the next chunk wakes the reading greenlet once per token (about 39 us of worker CPU under
gevent, more than parsing the chunk). Once the first token is through, the browser gets
at most one update per 50 ms anyway, so after a read that had to wait the reader pauses
that long, and then takes every chunk that came meanwhile without waiting.

Everything goes through urllib3's public ``HTTPResponse.read1``, which decodes the chunked
framing (and any content encoding) and returns at most one chunk's data per call, from
what has already arrived when it can. Whether a read waited is told by its duration: a
read served from arrived data takes microseconds, one that waits takes until the next
packet. Getting that wrong costs only a wake-up or a pause, never data.

A server that leaves Nagle's algorithm on (most set TCP_NODELAY) holds each small write
until the previous one is acknowledged. A reader that pauses would leave those
acknowledgements to the kernel's delayed-ACK timer, and every token, the first one
included, would come about 40 ms late; so before each read the kernel is asked to
acknowledge at once (Linux's TCP_QUICKACK, which it turns off again by itself).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

from webapp.upstream.stall_watch import StallWatch

READ_SIZE = 65536
QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
# A read that took longer than this waited for the network: what had arrived is all read.
WAITED_SECONDS = 0.001


class BodyReader:
    """Iterates a urllib3 response's body: bytes as they arrive, and after pace() is called
    a pause of `pace` seconds after each read that had to wait. Reads are timed by a
    StallWatch under gevent."""

    def __init__(self, raw: Any, read_timeout: float | None, pace: float = 0.0) -> None:
        self._pace = pace
        self._paced = False
        connection = raw.connection
        self._sock = getattr(connection, "sock", None) if QUICKACK is not None else None
        reads = self._reads(raw)
        watch = StallWatch.take_over(raw, read_timeout)
        self._pieces = reads if watch is None else watch.guard(reads)

    def pace(self) -> None:
        """From now on, pause after each read that waited, so the next takes what came."""
        self._paced = self._pace > 0

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._pieces)

    def _reads(self, raw: Any) -> Iterator[bytes]:
        """What each read returns: data that has arrived, waiting only when none has.

        At the end of the body urllib3 gives the connection back to the pool by itself."""
        next_read = 0.0
        while True:
            if self._paced:
                pause = next_read - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            self._ack_at_once()
            started = time.monotonic()
            data = raw.read1(READ_SIZE)
            if not data:
                return
            finished = time.monotonic()
            if finished - started > WAITED_SECONDS:
                next_read = finished + self._pace
            yield data

    def _ack_at_once(self) -> None:
        """Have the kernel acknowledge what arrives next without waiting (see above)."""
        if self._sock is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            except OSError:  # not a TCP socket: nothing to acknowledge
                self._sock = None
