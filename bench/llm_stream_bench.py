"""CPU per streamed chunk spent reading the upstream's reply through LLMClient.stream.

Consumes streamed chat completions with ``webapp.upstream.llm.LLMClient.stream`` in this
process, under gevent monkey-patching as the production worker runs, over one pooled
keep-alive connection, and prints this process's CPU time (user + system) per chunk, in two modes:

- **burst**: a replay server (its own process) sends a recorded reply of the fake
  upstream, TOKENS one-token chunks, in one write, so the reader finds them waiting and
  the figure is the cost of reading and parsing alone;
- **paced**: the fake upstream (``harness/timed_upstream.py``, its own process) writes the chunks
  DELAY apart (default 1 ms), so almost every chunk is a network read of its own and a
  wake-up of the reading greenlet, as at a model's real pace;
- **batched**: the same paced upstream, read as the app reads it (``read_pace``: after
  the first token, a pause of READ_PACE seconds after each read that had to wait, and
  the chunks that came meanwhile read without waiting), so the ratio to **paced** is
  what batching the reads saves.

Each figure is the median of ROUNDS streams; it includes the request and the stream's end
(a few hundred microseconds per stream, under 0.2 us per chunk at 2,000 tokens).

    .venv/bin/python bench/llm_stream_bench.py [--tokens 2000] [--rounds 9] [--delay 0.001]
    .venv/bin/python bench/llm_stream_bench.py --tokens 200 --delay 0.02   # 50 tokens/s
    .venv/bin/python bench/llm_stream_bench.py --profile paced    # where the time goes
"""

from __future__ import annotations

import sys

if "--replay" not in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.replies.streaming import THROTTLE_SECONDS  # noqa: E402
from webapp.upstream import llm  # noqa: E402

API_KEY = "bench-key"
MESSAGES = [{"role": "user", "content": "bench"}]
END_OF_BODY = b"\r\n0\r\n\r\n"


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    """A server process (a script, or -m and a module), and the base URL it prints first."""
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True,
                               start_new_session=True, cwd=ROOT)
    return process, process.stdout.readline().strip()


def start_upstream(tokens: int, token_delay: float) -> tuple[subprocess.Popen, str]:
    return start_server("-m", "harness.timed_upstream", "--tokens", str(tokens),
                        "--token-delay", str(token_delay), "--delay", "0",
                        "--api-key", API_KEY)


def read_request(connection: socket.socket, buffer: bytes) -> bytes | None:
    """Read one HTTP request with a Content-Length body; what follows it, None at EOF."""
    while b"\r\n\r\n" not in buffer:
        data = connection.recv(65536)
        if not data:
            return None
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += connection.recv(65536)
    return rest[length:]


def record_reply(base_url: str) -> bytes:
    """The raw HTTP response (headers and chunked body) of one streamed completion."""
    host, port = base_url.split("//")[1].split("/")[0].split(":")
    body = json.dumps({"model": "bench-model", "messages": MESSAGES, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
               f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(request)
        response = b""
        while not response.endswith(END_OF_BODY):
            response += connection.recv(65536)
    return response


def serve_replay(path: str) -> None:
    """Answer every request on every connection with the response recorded in `path`."""
    response = Path(path).read_bytes()
    listener = socket.create_server(("127.0.0.1", 0))
    print(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", flush=True)

    def serve(connection: socket.socket) -> None:
        with connection:
            rest = b""
            while (rest := read_request(connection, rest)) is not None:
                connection.sendall(response)

    while True:
        threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()


def consume(client: llm.LLMClient) -> int:
    """Read one whole stream as the generation loop does; the number of chunks."""
    chunks = 0
    for delta in client.stream("bench-model", MESSAGES):
        chunks += 1
        if delta.content or delta.reasoning:
            pass
    return chunks


def measure(name: str, base_url: str, rounds: int, profile: bool, read_pace: float) -> None:
    client = llm.LLMClient(base_url, API_KEY, read_pace=read_pace,
                           session=llm.pooled_session(base_url))
    consume(client)  # warm up: connection open, code paths taken once
    if profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(rounds):
            consume(client)
        profiler.disable()
        print(f"--- {name}: cProfile (CPU time) of {rounds} streams")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        return
    figures, chunks = [], 0
    for _ in range(rounds):
        started = time.process_time()
        chunks = consume(client)
        figures.append((time.process_time() - started) / chunks * 1e6)
    print(f"{name:6} {chunks:6d} chunks/stream  {statistics.median(figures):6.1f} us CPU "
          f"per chunk (median of {rounds}, min {min(figures):.1f})", flush=True)


def run(name: str, tokens: int, delay: float, rounds: int, profile: bool,
        read_pace: float) -> None:
    upstream, base_url = start_upstream(tokens, 0.0 if name == "burst" else delay)
    replay = None
    try:
        if name == "burst":
            with tempfile.NamedTemporaryFile(suffix=".http") as recording:
                recording.write(record_reply(base_url))
                recording.flush()
                replay, base_url = start_server(__file__, "--replay", recording.name)
        measure(name, base_url, rounds, profile, read_pace if name == "batched" else 0.0)
    finally:
        for process in (upstream, replay):
            if process is not None:
                process.terminate()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000, help="content chunks per stream")
    parser.add_argument("--rounds", type=int, default=9, help="streams measured per mode")
    parser.add_argument("--delay", type=float, default=0.001,
                        help="seconds between chunks in the paced mode")
    parser.add_argument("--read-pace", type=float, default=THROTTLE_SECONDS,
                        help="seconds between reads in the batched mode")
    parser.add_argument("--profile", choices=["burst", "paced", "batched"],
                        help="print a cProfile of this mode instead of figures")
    parser.add_argument("--replay", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay:
        serve_replay(args.replay)
        return
    for name in ("burst", "paced", "batched"):
        if args.profile in (None, name):
            run(name, args.tokens, args.delay, args.rounds, args.profile is not None,
                args.read_pace)


if __name__ == "__main__":
    main()
