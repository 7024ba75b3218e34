"""The reply bus inside one process: for a database no other process can open."""

from __future__ import annotations

import queue
from collections.abc import Callable


class LocalTransport:
    """Payloads go from this process to itself (its followers use the live reply anyway)."""

    max_payload = 1 << 20

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()

    def send(self, payloads: list[str]) -> None:
        for payload in payloads:
            self._queue.put(payload)

    def listen(self, deliver: Callable[[str], None]) -> None:
        while True:
            deliver(self._queue.get())
