"""The reply bus inside one process: for a database no other process can open."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from . import CHECK_SECONDS


class LocalTransport:
    """Payloads go from this process to itself (its followers use the live reply anyway)."""

    max_payload = 1 << 20

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()

    def send(self, payloads: list[str]) -> None:
        for payload in payloads:
            self._queue.put(payload)

    def close(self) -> None:
        pass

    def listen(self, deliver: Callable[[str], None], ready: threading.Event,
               closed: threading.Event) -> None:
        ready.set()
        while not closed.is_set():
            try:
                deliver(self._queue.get(timeout=CHECK_SECONDS))
            except queue.Empty:
                pass
