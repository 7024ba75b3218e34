"""The fake upstream as a process of its own, for benchmarks: cheap greenlets, send timestamps, fast setup.

Runs ``harness.fake_upstream.FakeUpstream`` (the same wire format, pacing and code) with three
additions that only a benchmark needs, none of which changes what a stream looks like:

* By default under gevent (``monkey.patch_all``), so its thread-per-connection server holds
  a thousand paced streams as greenlets instead of OS threads; ``--threads`` runs it as
  the tests do.
* It records, per request, when the request arrived and when each content chunk was
  written (``time.monotonic()``, the system-wide CLOCK_MONOTONIC that the benchmark client
  reads too), keyed by the text of the last user message (the benchmark's tag).
  ``GET /bench/sends`` returns and clears those records as JSON.
* A request whose last user message starts with ``setup`` gets a one-word reply at once,
  so the benchmark can create conversations quickly.
* ``--models-delay S`` makes ``GET /models`` take S seconds, like a distant API.

    python -m harness.timed_upstream --tokens 60 --token-delay 0.02 --delay 0.1 --api-key K

prints its base URL on the first stdout line and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import sys

if "--threads" not in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import fake_upstream as fu  # noqa: E402

SENDS_PATH = "/bench/sends"

_records: dict[str, dict] = {}
_records_lock = threading.Lock()


def _last_user_text(body) -> str:
    texts = [fu.message_text(m) for m in fu.request_messages(body)
             if isinstance(m, dict) and m.get("role") == "user"]
    return texts[-1] if texts else ""


def _install_probes(models_delay: float) -> None:
    original_chat = fu._Handler._chat
    original_send_models = fu._Handler._send_models
    original_send_event = fu._Handler._send_event
    original_dispatch = fu._Handler._dispatch

    def _chat(self, body):
        tag = _last_user_text(body) if isinstance(body, dict) else ""
        self._bench_tag = None
        if tag and not tag.startswith("setup"):
            self._bench_tag = tag
            with _records_lock:
                _records[tag] = {"recv": time.monotonic(), "sends": []}
        original_chat(self, body)

    def _send_event(self, payload):
        tag = getattr(self, "_bench_tag", None)
        if tag is not None:
            choices = payload.get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                record = _records.get(tag)
                if record is not None:
                    record["sends"].append(time.monotonic())
        original_send_event(self, payload)

    def _dispatch(self):
        if self.command == "GET" and self.path == SENDS_PATH:
            with _records_lock:
                payload = json.dumps(_records).encode()
                _records.clear()
            self._send_body(200, payload, "application/json", None)
            return
        original_dispatch(self)

    def _send_models(self):
        if models_delay > 0:
            time.sleep(models_delay)
        original_send_models(self)

    fu._Handler._chat = _chat
    fu._Handler._send_models = _send_models
    fu._Handler._send_event = _send_event
    fu._Handler._dispatch = _dispatch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--models-delay", type=float, default=0.0,
                        help="seconds before answering GET /models (a distant API)")
    parser.add_argument("--threads", action="store_true",
                        help="OS threads per connection, as the tests run it")
    parser.add_argument("--nagle", action="store_true",
                        help="leave Nagle's algorithm on (no TCP_NODELAY), as a few servers do")
    args = parser.parse_args(argv)
    fu._Handler.disable_nagle_algorithm = not args.nagle
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    _install_probes(args.models_delay)
    content = " ".join(f"tok{i}" for i in range(args.tokens))
    bench_reply = fu.Reply(content=content, delay=args.delay, token_delay=args.token_delay)
    setup_reply = fu.Reply(content="ok")

    def reply_for(body) -> fu.Reply:
        return setup_reply if _last_user_text(body).startswith("setup") else bench_reply

    upstream = fu.FakeUpstream(api_key=args.api_key, host=args.host, port=args.port)
    upstream.default_reply = reply_for
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with upstream:
        print(upstream.base_url, flush=True)
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
