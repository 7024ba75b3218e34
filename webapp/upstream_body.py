"""The bytes of a streamed upstream response as they arrive, in batches once a reply runs.

A model's reply comes as one small HTTP chunk per token, and reading each one on its own
wakes the reading greenlet once per token (about 39 us of worker CPU under gevent, more
than parsing the chunk). Once the first token is through, the browser gets at most one
update per 50 ms anyway, so the reader may pause that long between reads and take every
chunk that came meanwhile in one read. That needs the chunked framing decoded here:
urllib3's read_chunked waits for each next chunk, so after a pause it would still wake the
reader for the first chunk that had not yet arrived.

A server that leaves Nagle's algorithm on (most set TCP_NODELAY) holds each small write
until the previous one is acknowledged. A reader that pauses would leave those
acknowledgements to the kernel's delayed-ACK timer, and every token, the first one
included, would come about 40 ms late; so before each read the kernel is asked to
acknowledge at once (Linux's TCP_QUICKACK, which it turns off again by itself).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from webapp.stall_watch import StallWatch

READ_SIZE = 65536
QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
MAX_LINE = 4096  # a chunk-size line or a trailer line longer than this is not HTTP
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")


class BodyReader:
    """Iterates a urllib3 response's body: bytes as they arrive, read at most once per
    `pace` seconds after pace() is called. Reads are timed by a StallWatch under gevent."""

    def __init__(self, raw: Any, read_timeout: float | None, pace: float = 0.0) -> None:
        self._pace = pace
        self._paced = False
        self._sock = getattr(raw.connection, "sock", None) if QUICKACK is not None else None
        http_response = getattr(raw, "_fp", None)  # http.client's response, as urllib3 keeps it
        encoded = raw.headers.get("Content-Encoding", "identity").lower() != "identity"
        if raw.chunked and not encoded and getattr(http_response, "fp", None) is not None:
            reads = _dechunked(self._reads(http_response.fp.read1))
            self._finish = lambda: (http_response.close(), raw.release_conn())
        elif raw.chunked and raw.supports_chunked_reads():  # compressed: urllib3 decodes it
            reads = raw.read_chunked(decode_content=True)
            self._finish = lambda: None
        else:
            reads = self._reads(raw.read1)
            self._finish = lambda: None
        watch = StallWatch.take_over(raw, read_timeout)
        self._pieces = reads if watch is None else watch.guard(reads)

    def pace(self) -> None:
        """From now on, pause between reads so that each takes what came during the pause."""
        self._paced = self._pace > 0

    def __iter__(self) -> Iterator[bytes]:
        yield from self._pieces
        self._finish()  # the whole body is read: the connection can serve the next request

    def _reads(self, read1: Callable[[int], bytes]) -> Iterator[bytes]:
        """What each read returns: whatever has arrived, waiting only when nothing has."""
        next_read = 0.0
        while True:
            if self._paced:
                pause = next_read - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                next_read = time.monotonic() + self._pace
            self._ack_at_once()
            data = read1(READ_SIZE)
            if not data:
                return
            yield data

    def _ack_at_once(self) -> None:
        """Have the kernel acknowledge what arrives next without waiting (see above)."""
        if self._sock is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            except OSError:  # not a TCP socket: nothing to acknowledge
                self._sock = None


def _dechunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """The data of an HTTP/1.1 chunked body, given its bytes in pieces of any size.

    Yields the data each piece completes or continues, joined, and stops after the last
    chunk's trailers without reading further (a kept-alive connection sends nothing
    more). Raises ValueError on framing that is not chunked encoding, ConnectionError
    when the pieces end before the last chunk.
    """
    pending = b""
    left: int | None = None  # data bytes still to come in this chunk; None: a size line is next
    for piece in pieces:
        pending = pending + piece if pending else piece
        data = []
        while pending:
            if left is None:
                end = pending.find(b"\n")
                if end < 0:
                    if len(pending) > MAX_LINE:
                        raise ValueError("a chunk-size line is too long")
                    break
                size_text = pending[:end].split(b";", 1)[0].strip()
                if not _CHUNK_SIZE.fullmatch(size_text):
                    raise ValueError(f"not a chunk size: {size_text[:40]!r}")
                pending, left = pending[end + 1:], int(size_text, 16)
                if left == 0:
                    if _past_trailers(pending, pieces):
                        if data:
                            yield b"".join(data)
                        return
                    raise ConnectionError("the response ended in its trailers")
            elif left:
                taken = pending[:left]
                data.append(taken)
                pending, left = pending[len(taken):], left - len(taken)
                if left:
                    break
            elif len(pending) < 2:
                break
            elif pending.startswith(b"\r\n"):
                pending, left = pending[2:], None
            else:
                raise ValueError("a chunk's data is longer than its size")
        if data:
            yield b"".join(data)
    raise ConnectionError("the response ended before its last chunk")


def _past_trailers(pending: bytes, pieces: Iterator[bytes]) -> bool:
    """Reads the trailer lines after the last chunk up to the empty line that ends them."""
    while True:
        while (end := pending.find(b"\n")) >= 0:
            if not pending[:end].strip():
                return True
            pending = pending[end + 1:]
        if len(pending) > MAX_LINE:
            raise ValueError("a trailer line is too long")
        more = next(pieces, b"")
        if not more:
            return False
        pending += more
