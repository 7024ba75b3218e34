"""Stall check: does opening a conversation's page while its reply streams freeze the worker?

Runs the app as the Procfile does against harness/timed_upstream.py, starts a reply of 100 tokens
(20 ms apart), opens the conversation's page (GET /c/<id>) while it streams, and prints how
long the page took, the longest pause between two tokens of the reply at the SSE client,
whether the reply arrived whole, and how many "database is locked" errors the app logged.
With --models-cache 0 every page view fetches the upstream's model list, which is what
happens in production once MODELS_CACHE_SECONDS (default 300 s) has passed; the fake
upstream answers GET /models after --models-delay seconds (0.3: a distant API).

    .venv/bin/python bench/page_view_stall.py                  # cache expired (the stall)
    .venv/bin/python bench/page_view_stall.py --models-cache 300

A figure, not a test: it asserts nothing. See bench/README.md for what the stall is.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import _client as client  # noqa: E402
from harness import processes, procfs  # noqa: E402

TOKENS = 100


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-cache", default="0",
                        help="MODELS_CACHE_SECONDS for the app (0: every page view asks)")
    parser.add_argument("--models-delay", type=float, default=0.3,
                        help="seconds the upstream takes to answer GET /models")
    args = parser.parse_args(argv)
    processes.raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="stall-"))
    upstream = app = None
    try:
        upstream, base = processes.start_upstream(TOKENS, 0.02, 0.1, "k", False,
                                          workdir / "upstream.log", args.models_delay)
        port = processes.free_port()
        app = processes.start_app({"DATABASE_URL": f"sqlite:///{workdir}/stall.db",
                           "REGOLO_BASE_URL": base, "REGOLO_API_KEY": "k",
                           "SECRET_KEY": "bench", "ACCESS_LOG": "0",
                           "MODELS_CACHE_SECONDS": args.models_cache},
                          port, workdir / "app.log")
        user = client.create_user(port, "stall", 30)
        reply = gevent.spawn(client.relay_round, port, user, "bench stall", TOKENS, 60, client.Counter())
        gevent.sleep(0.5)  # the reply is streaming now
        t0 = time.monotonic()
        status, _, _ = client.simple_request(port, "GET", f"/c/{user['public_id']}",
                                        {"Cookie": user["cookie"]}, timeout=60)
        page = time.monotonic() - t0
        result = reply.get(timeout=120)
        times = [t for t in result.arrivals if t is not None]
        gap = max((b - a for a, b in zip(times, times[1:])), default=float("nan"))
        locked = sum("database is locked" in line and "OperationalError" in line
                     for line in open(workdir / "app.log", errors="replace"))
        print(f"MODELS_CACHE_SECONDS={args.models_cache}, GET /models takes "
              f"{args.models_delay:.2f} s: page view while a reply streams: "
              f"HTTP {status} in {page:.2f} s")
        print(f"  reply: {len(times)}/{TOKENS} tokens at the client ({result.error or 'whole'}), "
              f"longest pause between tokens {gap:.2f} s")
        print(f"  'database is locked' errors in the app log: {locked}")
    finally:
        processes.stop_process(app)
        processes.stop_process(upstream)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
