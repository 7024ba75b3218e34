"""How long some work holds the gevent event loop: a greenlet ticks every 10 ms meanwhile.

For the stall benchmarks (images, Markdown); the caller has already patched with gevent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent


def loop_pause(work: Callable[[], object]) -> tuple[float, float]:
    """(seconds `work` took, longest pause between two ticks of the ticker meanwhile)."""
    gaps: list[float] = []
    done = False

    def tick() -> None:
        last = time.perf_counter()
        while not done:
            gevent.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = gevent.spawn(tick)
    gevent.sleep(0.05)
    started = time.perf_counter()
    work()
    took = time.perf_counter() - started
    done = True
    ticker.join()
    return took, max(gaps)
