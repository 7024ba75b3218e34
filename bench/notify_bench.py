"""What one PostgreSQL notification costs: NOTIFY to LISTEN round trip through psycopg.

One connection LISTENs on a channel, another publishes ``NOTIFY channel, payload``
(autocommit, so each is delivered at once), one at a time; the listener waits with
psycopg's ``Connection.notifies()``. Printed: publish-to-receive latency (p50 / p99) and
the CPU this process spent per notification (both sides: the publisher and the listener,
which a reply bus spends in two processes), against the same figures for a plain
``SELECT 1`` round trip on one connection, the cheapest thing a follower polling the
database can do. The server's own CPU is printed too (the postgres processes of those
connections, from /proc, when they run on this machine).

    .venv/bin/python bench/notify_bench.py                   # scripts/postgres start's server
    .venv/bin/python bench/notify_bench.py --database-url postgresql://... --count 5000

Not a test: it asserts nothing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import procfs  # noqa: E402

CHANNEL = "notify_bench"
PAYLOAD = "1234:streaming"  # a reply's id and state: what a wake-up needs to carry


def process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def server_pid(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def server_cpu(pids: list[int]) -> float | None:
    """CPU seconds of these postgres backends, or None when they are not on this machine."""
    try:
        return sum(procfs.cpu_seconds(pid) for pid in pids)
    except OSError:
        return None


def notify_round_trips(url: str, count: int) -> dict:
    """Publish count notifications one at a time; each one's latency until received."""
    listener = psycopg.connect(url, autocommit=True)
    publisher = psycopg.connect(url, autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")
    backends = [server_pid(listener), server_pid(publisher)]
    received = threading.Event()
    arrived: list[float] = []

    def listen() -> None:
        for _ in listener.notifies(stop_after=count + 1):  # the last one says "stop"
            arrived.append(time.monotonic())
            received.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(0.2)  # the listener is waiting
    latencies = []
    cpu0, server0 = process_cpu(), server_cpu(backends)
    for _ in range(count):
        received.clear()
        sent = time.monotonic()
        publisher.execute(f"NOTIFY {CHANNEL}, '{PAYLOAD}'")
        received.wait(5)
        latencies.append((arrived[-1] - sent) * 1000)
    cpu1, server1 = process_cpu(), server_cpu(backends)
    publisher.execute(f"NOTIFY {CHANNEL}, 'stop'")
    thread.join(5)
    listener.close()
    publisher.close()
    return figures(latencies, cpu1 - cpu0, server0, server1, count)


def select_round_trips(url: str, count: int) -> dict:
    """count SELECT 1 round trips on one connection, one at a time."""
    with psycopg.connect(url, autocommit=True) as conn:
        backends = [server_pid(conn)]
        latencies = []
        cpu0, server0 = process_cpu(), server_cpu(backends)
        for _ in range(count):
            started = time.monotonic()
            conn.execute("SELECT 1").fetchone()
            latencies.append((time.monotonic() - started) * 1000)
        cpu1, server1 = process_cpu(), server_cpu(backends)
    return figures(latencies, cpu1 - cpu0, server0, server1, count)


def figures(latencies, cpu, server0, server1, count) -> dict:
    data = sorted(latencies)
    server = None if server0 is None or server1 is None else server1 - server0
    return {"p50_ms": data[len(data) // 2], "p99_ms": data[int(len(data) * 0.99)],
            "client_us": 1e6 * cpu / count,
            "server_us": None if server is None else 1e6 * server / count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (default: scripts/postgres start)")
    parser.add_argument("--count", type=int, default=2000, help="round trips of each kind")
    args = parser.parse_args()
    url = args.database_url or subprocess.run(
        [str(ROOT / "scripts" / "postgres"), "start"], check=True, capture_output=True,
        text=True).stdout.strip()
    select_round_trips(url, 100)  # warm-up
    rows = {"SELECT 1": select_round_trips(url, args.count),
            "NOTIFY -> LISTEN": notify_round_trips(url, args.count)}
    print(f"{args.count} round trips each, one at a time (psycopg {psycopg.__version__}, "
          f"{os.cpu_count()} cores shared with the server)")
    print(f"{'':>18} {'p50 ms':>8} {'p99 ms':>8} {'client us':>10} {'server us':>10}")
    for name, row in rows.items():
        server = "-" if row["server_us"] is None else f"{row['server_us']:.0f}"
        print(f"{name:>18} {row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} "
              f"{row['client_us']:>10.0f} {server:>10}")
    base, notify = rows["SELECT 1"], rows["NOTIFY -> LISTEN"]
    server = ("-" if not (notify["server_us"] and base["server_us"])
              else f"{notify['server_us'] / base['server_us']:.2f}")
    print(f"{'ratio':>18} {notify['p50_ms'] / base['p50_ms']:>8.2f} "
          f"{notify['p99_ms'] / base['p99_ms']:>8.2f} "
          f"{notify['client_us'] / base['client_us']:>10.2f} {server:>10}")


if __name__ == "__main__":
    main()
