"""Refused heavy requests: what they cost the worker and how they stall another person's stream.

Runs the app as the Procfile does (one gevent worker, the default message limits: 20 a
minute per browser, 60 per address) against bench/_upstream.py. One person follows a
reply of --tokens tokens (--token-delay apart) while /healthz is polled every 100 ms;
meanwhile another browser, whose conversation always has a reply being written, sends
--attempts messages of --chars characters of dense Markdown (emphasis on every word), four
at a time. Every one of them is refused (409: a reply is still being written; 429 once
the limit is reached). The same is measured without those requests first: the baseline.

It prints, per phase: the refusals' statuses, the worker's CPU seconds, the median and
longest pause between two events of the followed reply (from the stream's opening), and
the median and longest /healthz answer time (how long the event loop kept other requests
waiting).

    .venv/bin/python bench/refused_load.py
    .venv/bin/python bench/refused_load.py --compare e8dea18   # also the code of that commit

With --compare REV the same phases run a second time against the code of git revision
REV (exported with git archive into a temporary directory, same virtualenv), e.g. the
commit before refused attempts were counted and checked first. A figure, not a test: it
asserts nothing.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import io  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter as Tally  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import _client as client  # noqa: E402
from harness import processes, procfs  # noqa: E402

PRODUCTION_LIMITS = {"MESSAGES_PER_MINUTE_PER_OWNER": "20", "MESSAGES_PER_MINUTE_PER_IP": "60"}


def dense_markdown(chars: int) -> str:
    """Text that markdown-it-py finds expensive: emphasis on every word."""
    return ("*a* " * (chars // 4 + 1))[:chars]


def heavy_send(port: int, user: dict, content: bytes) -> int:
    """One message to the busy conversation, as htmx posts it; the HTTP status."""
    status, _, _ = client.simple_request(
        port, "POST", f"/c/{user['public_id']}/messages",
        {"Cookie": user["cookie"], "HX-Request": "true", "X-CSRFToken": user["csrf"],
         "Content-Type": "application/x-www-form-urlencoded"}, content, timeout=300)
    return status


def probe_health(port: int, stop: list[bool], times: list[float]) -> None:
    """GET /healthz every 100 ms until stop[0]; each answer's time into times."""
    while not stop[0]:
        started = time.monotonic()
        client.simple_request(port, "GET", "/healthz", timeout=120)
        times.append(time.monotonic() - started)
        gevent.sleep(0.1)


def keep_busy(port: int, user: dict, tokens: int, stop: list[bool]) -> None:
    """Keep a reply being written in the user's conversation until stop[0]: when one
    ends, send the next (a refused send, 409 or 429, is tried again shortly)."""
    sent = 0
    while not stop[0]:
        sent += 1
        result = client.relay_round(port, user, f"keeps busy {sent}", tokens, 300, client.Counter())
        if result.error:
            gevent.sleep(0.1)


def phase(port: int, worker: int, tokens: int, attempts: int, content: bytes | None,
          busy_user: dict, follower: dict, round_no: int) -> str:
    """Follow a reply (and poll /healthz) while refused heavy requests arrive, or none."""
    stop, health = [False], []
    busy = gevent.spawn(keep_busy, port, busy_user, tokens, stop)
    gevent.sleep(0.5)  # its reply is being written: further sends are refused
    prober = gevent.spawn(probe_health, port, stop, health)
    cpu_before = procfs.cpu_seconds(worker)
    followed = gevent.spawn(client.relay_round, port, follower, f"followed {round_no}", tokens,
                            300, client.Counter())
    statuses: Tally[int] = Tally()
    if content is not None:
        pool = Pool(4)
        for status in pool.imap_unordered(lambda _: heavy_send(port, busy_user, content),
                                          range(attempts)):
            statuses[status] += 1
    result = followed.get(timeout=600)
    cpu = procfs.cpu_seconds(worker) - cpu_before
    stop[0] = True
    prober.join(timeout=120)
    busy.join(timeout=600)
    times = sorted({t for t in result.arrivals if t is not None})
    moments = [result.t_stream_open or result.t_start, *times]
    gaps = [b - a for a, b in zip(moments, moments[1:])] or [float("nan")]
    refusals = ", ".join(f"{count}x HTTP {status}" for status, count in sorted(statuses.items()))
    return (f"    refused requests: {refusals or 'none'}; worker CPU {cpu:.1f} s\n"
            f"    followed reply: {tokens - result.arrivals.count(None)}/{tokens} tokens "
            f"({result.error or 'whole'}) in {len(times)} events, pause between events "
            f"median {statistics.median(gaps) * 1000:.0f} ms, "
            f"longest {max(gaps) * 1000:.0f} ms\n"
            f"    /healthz: {len(health)} answers, median {statistics.median(health) * 1000:.0f}"
            f" ms, longest {max(health) * 1000:.0f} ms")


def measure(root: Path, label: str, args: argparse.Namespace) -> None:
    """Both phases against the code under root."""
    workdir = Path(tempfile.mkdtemp(prefix="refused-"))
    upstream = app = None
    try:
        upstream, base = processes.start_upstream(args.tokens, args.token_delay, 0.1, "k",
                                                  False, workdir / "upstream.log")
        port = processes.free_port()
        settings = {"DATABASE_URL": f"sqlite:///{workdir}/refused.db", "REGOLO_BASE_URL": base,
                    "REGOLO_API_KEY": "k", "SECRET_KEY": "bench", "ACCESS_LOG": "0",
                    **PRODUCTION_LIMITS}
        app = processes.start_app(settings, port, workdir / "app.log", root=root)
        worker = procfs.children(app.pid)[0]
        busy_user, follower = (client.create_user(port, name, 60) for name in ("busy", "follower"))
        content = client.form({"content": dense_markdown(args.chars)})
        print(f"{label}:")
        for round_no, (name, body) in enumerate((("baseline, no refused requests", None),
                                                 (f"{args.attempts} refused requests of "
                                                  f"{args.chars:,} characters", content))):
            print(f"  {name}")
            print(phase(port, worker, args.tokens, args.attempts, body, busy_user, follower,
                        round_no))
    finally:
        processes.stop_process(app)
        processes.stop_process(upstream)
        shutil.rmtree(workdir, ignore_errors=True)


def exported(revision: str, into: Path) -> Path:
    """The files of a git revision of this repository, written under into."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=processes.ROOT,
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=40,
                        help="refused heavy requests sent by one browser")
    parser.add_argument("--chars", type=int, default=100_000,
                        help="characters in each (the default MAX_MESSAGE_CHARS)")
    parser.add_argument("--tokens", type=int, default=150,
                        help="tokens of the followed reply")
    parser.add_argument("--token-delay", type=float, default=0.02,
                        help="seconds between two tokens from the upstream")
    parser.add_argument("--compare", metavar="REV",
                        help="also measure the code of this git revision")
    args = parser.parse_args(argv)
    processes.raise_nofile()
    measure(processes.ROOT, "this code", args)
    if args.compare:
        with tempfile.TemporaryDirectory(prefix="refused-code-") as old:
            measure(exported(args.compare, Path(old)), f"the code of {args.compare}", args)


if __name__ == "__main__":
    main()
