"""Load and correctness under load: many simulated people send, stream and read for a while.

Starts the fake upstream (harness/timed_upstream.py) and the app as the Procfile does (gunicorn,
gevent workers; WEB_CONCURRENCY workers), then runs --users people for --duration seconds,
each in their own conversation: send a message as htmx does and follow the reply's event
stream to its end, open the conversation page, now and then the new-chat page, think, and
again. Then it checks the database: every message whose send was accepted is stored
exactly once, with one reply that finished (complete, with all its tokens) or failed
clearly (error or interrupted, with a sentence), and no response was a 5xx.

    .venv/bin/python bench/load.py                      # 50 people, 60 s, 2 workers, SQLite
    .venv/bin/python bench/load.py --database-url postgresql://...   # on PostgreSQL
    .venv/bin/python bench/load.py --quick --json out.json           # the CI version (~20 s)

Prints the figures (see bench/README.md) and exits 1 when a check fails.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import _client as client  # noqa: E402
from harness import processes, procfs  # noqa: E402

from webapp.config import normalise_database_url  # noqa: E402

API_KEY = "load-key"
FINISHED = {"complete", "error", "interrupted", "stopped"}
HTTP_STATUS = re.compile(r"HTTP (\d{3})")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--users", type=int, default=50, help="simulated people at once")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    p.add_argument("--tokens", type=int, default=40, help="tokens per reply")
    p.add_argument("--token-delay", type=float, default=0.02, help="upstream seconds per token")
    p.add_argument("--ttft", type=float, default=0.2, help="upstream time to first token (s)")
    p.add_argument("--think", type=float, default=1.0, help="most seconds between actions")
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout (s)")
    p.add_argument("--database-url", default=None,
                   help="an empty database to use (default: a new SQLite file)")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--quick", action="store_true", help="10 people for 15 s (CI)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.quick:
        args.users, args.duration, args.tokens = 10, 15.0, 20
    return args


class Recorder:
    """Latencies by kind of action, HTTP statuses, and errors."""

    def __init__(self):
        self.latencies: dict[str, list[float]] = {}
        self.statuses: Counter = Counter()
        self.errors: Counter = Counter()

    def timing(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds * 1000)

    def status(self, status: int) -> None:
        self.statuses[status] += 1

    def error(self, what: str) -> None:
        """A failed send or stream; its HTTP status, if it had one, is counted too."""
        self.errors[what] += 1
        if match := HTTP_STATUS.search(what):
            self.statuses[int(match.group(1))] += 1


def person(port: int, user: dict, index: int, args, deadline: float, record: Recorder,
           accepted: list[str], streams: client.Counter, rng: random.Random) -> None:
    """One simulated person: send and follow, read, think, until the deadline."""
    for turn in range(10_000):
        if time.monotonic() >= deadline:
            return
        tag = f"load u{index} m{turn}"
        result = client.relay_round(port, user, tag, args.tokens, args.timeout, streams)
        if result.t_stream_open is not None:  # the POST was accepted: a reply must exist
            accepted.append(tag)
            record.status(200)
        if result.ok:
            record.status(200)
            record.timing("first token", result.arrivals[0] - result.t_start)
            record.timing("whole reply", result.t_end - result.t_start)
        else:
            record.error(result.error)
        for path in [f"/c/{user['public_id']}"] + (["/"] if turn % 5 == 4 else []):
            started = time.monotonic()
            try:
                status, _, _ = client.simple_request(port, "GET", path, {"Cookie": user["cookie"]},
                                                timeout=args.timeout)
            except (OSError, client.ProtocolError) as exc:
                record.error(f"read {type(exc).__name__}")
                continue
            record.status(status)
            if status == 200:
                record.timing("page", time.monotonic() - started)
            else:
                record.errors[f"read HTTP {status}"] += 1
        gevent.sleep(rng.uniform(0, args.think))


def check_database(url: str, accepted: list[str], tokens: int) -> dict:
    """Every accepted message stored once with one finished or clearly failed reply."""
    full_reply = " ".join(f"tok{i}" for i in range(tokens))
    engine = create_engine(normalise_database_url(url))
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT u.content, r.status, r.content, r.error FROM messages u "
            "LEFT JOIN messages r ON r.parent_id = u.id AND r.role = 'assistant' "
            "WHERE u.role = 'user' AND u.content LIKE 'load %'")).all()
    engine.dispose()
    stored = Counter(content for content, *_ in rows)
    problems: Counter = Counter()
    statuses: Counter = Counter()
    for content, status, reply, error in rows:
        statuses[status] += 1
        if status not in FINISHED:
            problems[f"reply left {status}"] += 1
        elif status == "complete" and reply != full_reply:
            problems["complete reply missing text"] += 1
        elif status in ("error", "interrupted") and not error:
            problems["failed reply without a sentence"] += 1
    problems["accepted message not stored"] = sum(1 for tag in accepted if not stored[tag])
    problems["message stored twice"] = sum(1 for count in stored.values() if count > 1)
    problems["stored message never accepted"] = len(set(stored) - set(accepted))
    return {"stored": len(rows), "reply_statuses": dict(statuses),
            "problems": {k: v for k, v in problems.items() if v}}


def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="load-bench-"))
    url = args.database_url or f"sqlite:///{workdir}/load.db"
    processes.raise_nofile()
    upstream, base_url = processes.start_upstream(args.tokens, args.token_delay, args.ttft, API_KEY,
                                          False, workdir / "upstream.log")
    port = processes.free_port()
    app = None
    try:
        app = processes.start_app({"DATABASE_URL": url, "SECRET_KEY": "load", "ACCESS_LOG": "0",
                           "REGOLO_BASE_URL": base_url, "REGOLO_API_KEY": API_KEY,
                           "WEB_CONCURRENCY": str(args.workers)},
                          port, workdir / "app.log")
        pool = gevent.pool.Pool(20)
        users = pool.map(lambda i: client.create_user(port, f"u{i}", args.timeout),
                         range(args.users))
        record, accepted, streams = Recorder(), [], client.Counter()
        rng = random.Random(args.seed)
        started = time.monotonic()
        deadline = started + args.duration
        people = [gevent.spawn(person, port, user, i, args, deadline, record, accepted,
                               streams, random.Random(rng.random()))
                  for i, user in enumerate(users)]
        gevent.joinall(people, timeout=args.duration + 2 * args.timeout)
        unfinished = sum(1 for g in people if not g.dead)
        gevent.killall(people, timeout=10)
        elapsed = time.monotonic() - started
    finally:
        processes.stop_process(app)
        processes.stop_process(upstream)
    database = check_database(url, accepted, args.tokens)
    server_errors = sum(n for status, n in record.statuses.items() if status >= 500)
    return {
        "users": args.users, "workers": args.workers, "seconds": round(elapsed, 1),
        "database": url.split(":", 1)[0], "messages_accepted": len(accepted),
        "messages_stored": database["stored"], "reply_statuses": database["reply_statuses"],
        "peak_streams": streams.peak, "server_errors": server_errors,
        "statuses": dict(sorted(record.statuses.items())), "errors": dict(record.errors),
        "unfinished_people": unfinished, "problems": database["problems"],
        "latency_ms": {kind: {"count": len(values), "p50": round(client.pct(values, 50), 1),
                              "p99": round(client.pct(values, 99), 1)}
                       for kind, values in record.latencies.items()},
        "app_log": str(workdir / "app.log"),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    figures = run(args)
    print(f"{figures['users']} people, {figures['workers']} workers, {figures['database']}, "
          f"{figures['seconds']} s: {figures['messages_accepted']} messages accepted, "
          f"{figures['messages_stored']} stored, peak {figures['peak_streams']} open streams")
    for kind, stats in figures["latency_ms"].items():
        print(f"  {kind:12} n={stats['count']:5}  p50 {stats['p50']:8.1f} ms  "
              f"p99 {stats['p99']:8.1f} ms")
    print(f"  HTTP statuses {figures['statuses']}; replies {figures['reply_statuses']}")
    print(f"  5xx: {figures['server_errors']}; errors: {figures['errors'] or 'none'}; "
          f"database problems: {figures['problems'] or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    failed = figures["server_errors"] or figures["problems"] or figures["unfinished_people"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
